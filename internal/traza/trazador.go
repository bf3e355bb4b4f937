package traza

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/version"
)

// PlazoCierre bounds Trazador.Cerrar when the caller's context has no
// deadline: the spans still queued are given this long to reach the
// collector.
const PlazoCierre = 5 * time.Second

// Config says where spans go. Endpoint empty: no spans, only propagation.
type Config struct {
	// Endpoint is the full URL spans are posted to (OTLP over HTTP,
	// protobuf): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or
	// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended.
	Endpoint string
}

// LeerConfig reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_TRACES_EXPORTER through l.
func LeerConfig(l *configuracion.Lector) Config {
	if l.Texto("OTEL_TRACES_EXPORTER") == "none" {
		return Config{}
	}
	if e := l.Texto("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return Config{Endpoint: e}
	}
	if e := l.Texto("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		return Config{Endpoint: strings.TrimSuffix(e, "/") + "/v1/traces"}
	}
	return Config{}
}

// Trazador starts the spans of one process. The zero value and a Trazador
// built without an endpoint start none: their Iniciar only passes the span
// context on.
type Trazador struct {
	proveedor *sdktrace.TracerProvider
	tracer    trace.Tracer
}

// Nuevo builds the Trazador of servicio (the resource's service.name). With
// an empty cfg.Endpoint it exports nothing and costs nothing.
func Nuevo(cfg Config, servicio string) (*Trazador, error) {
	if cfg.Endpoint == "" {
		return &Trazador{}, nil
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("exportador OTLP de trazas hacia %s: %w", cfg.Endpoint, err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(servicio), semconv.ServiceNamespace("alpespartner-sagas"), semconv.ServiceVersion(version.Cadena()))
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	return &Trazador{proveedor: p, tracer: p.Tracer("github.com/alpespartner/sagas")}, nil
}

// Activo reports whether spans are exported.
func (t *Trazador) Activo() bool { return t != nil && t.tracer != nil }

// Opcion configures a span started by Iniciar.
type Opcion = trace.SpanStartOption

// Atributos, Tipo and Desde are the span options this module uses.
var (
	Atributos = trace.WithAttributes
	Desde     = trace.WithTimestamp
)

// Kinds of span.
var (
	Servidor   = trace.WithSpanKind(trace.SpanKindServer)
	Productor  = trace.WithSpanKind(trace.SpanKindProducer)
	Consumidor = trace.WithSpanKind(trace.SpanKindConsumer)
	Interno    = trace.WithSpanKind(trace.SpanKindInternal)
)

// Iniciar starts a span named nombre as a child of the span context in ctx
// and returns ctx holding it. Without an exporter it starts nothing: ctx is
// returned as is and the span is the one ctx already holds (End on it does
// nothing).
func (t *Trazador) Iniciar(ctx context.Context, nombre string, opts ...Opcion) (context.Context, trace.Span) {
	if !t.Activo() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.tracer.Start(ctx, nombre, opts...)
}

// IniciarEn starts a span named nombre in the trace of traceparent tp (as
// its child), or in a new trace when tp is empty or invalid: the entry point
// of a saga (an API request, a legacy message). The ctx it returns always
// holds a valid span context, exporter or not.
func (t *Trazador) IniciarEn(ctx context.Context, tp, nombre string, opts ...Opcion) (context.Context, trace.Span) {
	ctx = Contexto(ctx, tp)
	if t.Activo() {
		return t.tracer.Start(ctx, nombre, opts...)
	}
	ctx = AsegurarContexto(ctx, "")
	return ctx, trace.SpanFromContext(ctx)
}

// Fallo records err on span (when it is recording) and marks it failed.
func Fallo(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	span.RecordError(err)
	span.SetStatus(2, err.Error()) // codes.Error
}

// Saga is the span attributes that name a saga step.
func Saga(sagaID, paso string) []attribute.KeyValue {
	as := []attribute.KeyValue{attribute.String("saga.id", sagaID)}
	if paso != "" {
		as = append(as, attribute.String("saga.paso", paso))
	}
	return as
}

// Cerrar flushes the spans still queued and stops the exporter, within
// ctx's deadline (PlazoCierre when it has none). It does nothing without an
// exporter.
func (t *Trazador) Cerrar(ctx context.Context) error {
	if t == nil || t.proveedor == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, PlazoCierre)
		defer cancel()
	}
	if err := t.proveedor.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("cerrar exportador de trazas: %w", err)
	}
	return nil
}
