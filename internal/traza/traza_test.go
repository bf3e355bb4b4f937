package traza

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/alpespartner/sagas/internal/configuracion"
)

const tpEjemplo = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestTraceparentDeIdaYVuelta(t *testing.T) {
	ctx := Contexto(context.Background(), tpEjemplo)
	if got := Traceparent(ctx); got != tpEjemplo {
		t.Fatalf("Traceparent = %q, quería %q", got, tpEjemplo)
	}
	if got := TraceID(tpEjemplo); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("TraceID = %q", got)
	}
	if got := TraceIDDe(ctx); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("TraceIDDe = %q", got)
	}
}

func TestTraceparentInvalidoNoSePropaga(t *testing.T) {
	for _, tp := range []string{
		"", "basura", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if _, ok := Analizar(tp); ok {
			t.Errorf("Analizar(%q) aceptó un traceparent inválido", tp)
		}
		if got := Traceparent(Contexto(context.Background(), tp)); got != "" {
			t.Errorf("Contexto(%q) dejó %q", tp, got)
		}
		if TraceID(tp) != "" {
			t.Errorf("TraceID(%q) no vacío", tp)
		}
	}
}

func TestNuevaEmpiezaTrazasDistintasYValidas(t *testing.T) {
	a, b := Nueva(), Nueva()
	if _, ok := Analizar(a); !ok || len(a) != 55 || !strings.HasSuffix(a, "-01") {
		t.Fatalf("Nueva = %q", a)
	}
	if TraceID(a) == TraceID(b) {
		t.Fatalf("dos trazas nuevas con el mismo trace id %s", TraceID(a))
	}
}

func TestSinExportadorIniciarEnContinuaOEmpiezaLaTraza(t *testing.T) {
	var tz *Trazador // nil: no exporter
	ctx, span := tz.IniciarEn(context.Background(), tpEjemplo, "x")
	if Traceparent(ctx) != tpEjemplo || span.IsRecording() {
		t.Fatalf("con traceparent válido: %q (grabando %v)", Traceparent(ctx), span.IsRecording())
	}
	ctx, _ = tz.IniciarEn(context.Background(), "inválido", "x")
	if !trace.SpanContextFromContext(ctx).IsValid() || TraceIDDe(ctx) == TraceID(tpEjemplo) {
		t.Fatalf("sin traceparent válido no empezó una traza: %q", Traceparent(ctx))
	}
	// Iniciar without an exporter passes the context on untouched.
	ctx2, _ := tz.Iniciar(ctx, "y")
	if Traceparent(ctx2) != Traceparent(ctx) {
		t.Fatalf("Iniciar sin exportador cambió el contexto: %q → %q", Traceparent(ctx), Traceparent(ctx2))
	}
}

func TestConExportadorCadaSpanEsHijoDelAnterior(t *testing.T) {
	tz, err := Nuevo(Config{Endpoint: "http://127.0.0.1:1/v1/traces"}, "prueba")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		_ = tz.Cerrar(ctx) // nothing listens there: only the bound matters
	}()
	ctx, span := tz.IniciarEn(context.Background(), tpEjemplo, "raiz")
	defer span.End()
	if !span.IsRecording() || TraceIDDe(ctx) != TraceID(tpEjemplo) || Traceparent(ctx) == tpEjemplo {
		t.Fatalf("span hijo de %s: %q (grabando %v)", tpEjemplo, Traceparent(ctx), span.IsRecording())
	}
	ctx2, hijo := tz.Iniciar(ctx, "hijo")
	defer hijo.End()
	if TraceIDDe(ctx2) != TraceIDDe(ctx) || Traceparent(ctx2) == Traceparent(ctx) {
		t.Fatalf("hijo %q de %q", Traceparent(ctx2), Traceparent(ctx))
	}
	// No traceparent: a root span of a new trace.
	ctx3, raiz := tz.IniciarEn(context.Background(), "", "nueva")
	defer raiz.End()
	if !trace.SpanContextFromContext(ctx3).IsValid() || TraceIDDe(ctx3) == TraceID(tpEjemplo) {
		t.Fatalf("sin traceparent: %q", Traceparent(ctx3))
	}
}

func TestLeerConfigDeLasVariablesEstandar(t *testing.T) {
	casos := []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"}, "http://127.0.0.1:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:9/x"}, "http://b:9/x"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"}, ""},
	}
	for _, c := range casos {
		l := configuracionDe(c.env)
		if got := LeerConfig(l).Endpoint; got != c.want || l.Err() != nil {
			t.Errorf("%v: Endpoint = %q, quería %q (err %v)", c.env, got, c.want, l.Err())
		}
	}
}

func configuracionDe(env map[string]string) *configuracion.Lector {
	return configuracion.Leer(func(k string) string { return env[k] })
}
