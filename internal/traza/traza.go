// Package traza carries a saga's W3C trace context (traceparent) across the
// HTTP API, the broker and the outbox, and exports spans through OTLP when an
// endpoint is configured.
//
// Propagation always happens: a context holds the span context of the work in
// hand (trace.SpanContextFromContext), and Traceparent/Contexto convert it to
// and from the message property eventos.PropTraceparent. Spans are only
// created when a Trazador was built with an exporter; a Trazador without one
// starts nothing and only passes the context on.
package traza

import (
	"context"
	"crypto/rand"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Traceparent is the W3C traceparent of the span context in ctx ("" when
// ctx holds none).
func Traceparent(ctx context.Context) string {
	return Formatear(trace.SpanContextFromContext(ctx))
}

// Formatear is sc as a W3C traceparent ("" when sc is not valid).
func Formatear(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	flags := "00"
	if sc.IsSampled() {
		flags = "01"
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + flags
}

// Analizar reads a W3C traceparent; ok is false when tp is empty or invalid.
func Analizar(tp string) (sc trace.SpanContext, ok bool) {
	if tp == "" {
		return trace.SpanContext{}, false
	}
	sc = trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": tp}))
	return sc, sc.IsValid()
}

// Contexto returns ctx holding the remote span context of tp; ctx unchanged
// when tp is empty or invalid.
func Contexto(ctx context.Context, tp string) context.Context {
	if sc, ok := Analizar(tp); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// Nueva returns a traceparent that starts a new trace (random trace and span
// ids, sampled).
func Nueva() string {
	var b [24]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		var tid trace.TraceID
		var sid trace.SpanID
		copy(tid[:], b[:16])
		copy(sid[:], b[16:])
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		if sc.IsValid() {
			return Formatear(sc)
		}
	}
}

// AsegurarContexto returns ctx with a span context: its own, or that of tp,
// or a new trace.
func AsegurarContexto(ctx context.Context, tp string) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if sc, ok := Analizar(tp); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	sc, _ := Analizar(Nueva())
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// TraceID is the trace id (32 hex digits) of traceparent tp, "" when tp is
// invalid. It is what logs and the API show as trace_id.
func TraceID(tp string) string {
	// A fast path for what every log line about a saga needs: the
	// traceparents this module writes are version 00, lower-case hex.
	if len(tp) == 55 && tp[:3] == "00-" && tp[35] == '-' && tp[52] == '-' && hexMinuscula(tp[3:35]) && hexMinuscula(tp[36:52]) &&
		tp[3:35] != "00000000000000000000000000000000" && tp[36:52] != "0000000000000000" {
		return tp[3:35]
	}
	sc, ok := Analizar(tp)
	if !ok {
		return ""
	}
	return sc.TraceID().String()
}

func hexMinuscula(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// TraceIDDe is the trace id of the span context in ctx ("" when none).
func TraceIDDe(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
