package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/sistema"
)

// jaeger is a Jaeger all-in-one (v2) on free loopback ports, keeping spans in
// memory.
type jaeger struct {
	otlp  string // OTLP/HTTP base URL
	query string // query API base URL
}

// arrancarJaeger starts Jaeger for the test and stops it when the test ends.
func arrancarJaeger(t *testing.T) jaeger {
	t.Helper()
	bin := integracion.Jaeger(t)
	otlp, query, grpcQuery := sistema.PuertoLibre(t), sistema.PuertoLibre(t), sistema.PuertoLibre(t)
	cfg := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memoria
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      memoria:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memoria
`, query, grpcQuery, otlp)
	dir := t.TempDir()
	ruta := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(ruta, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "jaeger.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", ruta)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		hecho := make(chan struct{})
		go func() { cmd.Wait(); close(hecho) }()
		select {
		case <-hecho:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-hecho
		}
		log.Close()
	})
	j := jaeger{otlp: fmt.Sprintf("http://127.0.0.1:%d", otlp), query: fmt.Sprintf("http://127.0.0.1:%d", query)}
	fin := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(j.query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		if cmd.ProcessState != nil || time.Now().After(fin) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("jaeger not ready at %s: %v\n%s", j.query, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// trazaJaeger is one trace as Jaeger's query API (v1 JSON) returns it.
type trazaJaeger struct {
	TraceID   string       `json:"traceID"`
	Spans     []spanJaeger `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type spanJaeger struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	StartTime     int64  `json:"startTime"` // µs since the epoch
	Duration      int64  `json:"duration"`  // µs
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
}

func (j jaeger) trazas(t *testing.T, ruta string) []trazaJaeger {
	t.Helper()
	resp, err := http.Get(j.query + ruta)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data []trazaJaeger `json:"data"`
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", ruta, resp.StatusCode, err)
	}
	return r.Data
}

// servicios maps each service of a trace to its span names.
func (tr trazaJaeger) servicios() map[string][]string {
	out := map[string][]string{}
	for _, s := range tr.Spans {
		svc := tr.Processes[s.ProcessID].ServiceName
		out[svc] = append(out[svc], s.OperationName)
	}
	return out
}

// TestCadaSagaEsUnaTrazaConSpansDeCadaProceso runs one saga of each flow with
// every process exporting spans to Jaeger (OTLP/HTTP), and checks through
// Jaeger's query API that each saga is one trace, connected, with spans of
// the coordinator and of every participant of its flow; that the
// traceparent of the request is continued, and that trace_id is in the
// saga's detail and in every log line of every process about the saga.
func TestCadaSagaEsUnaTrazaConSpansDeCadaProceso(t *testing.T) {
	for _, a := range []string{"sqlite", "mysql"} {
		t.Run(a, func(t *testing.T) {
			j := arrancarJaeger(t)
			s := sistema.Arrancar(t, sistema.Opciones{Almacen: a, Extra: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlp, "SAGAS_LOG_LEVEL": "info",
			}})
			// campana continues the caller's trace; lanzar starts a new one.
			const traceIDCliente, spanCliente = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
			flujos := []struct {
				ruta, cuerpo, traceparent string
				pasos                     map[string]string // participant → its command
			}{
				{"/campana-saga", fmt.Sprintf(cuerpoCampana, ""), "00-" + traceIDCliente + "-" + spanCliente + "-01",
					map[string]string{"influencer": "NotificarInfluencer", "marca": "NotificarMarca", "tracking": "InicializarTracking"}},
				{"/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento(""), "",
					map[string]string{"afiliados": "SolicitarAfiliadosElegibles", "comisiones": "ConfigurarComisionesCampania",
						"tracking": "InicializarTrackingConversiones", "notificaciones": "PrepararNotificacionesCampania"}},
			}
			for _, f := range flujos {
				var cab []string
				if f.traceparent != "" {
					cab = []string{"traceparent", f.traceparent}
				}
				code, b, err := s.Post(context.Background(), f.ruta+"?esperar=60s", f.cuerpo, cab...)
				if err != nil || code != 200 {
					t.Fatalf("%s: %d %v %s", f.ruta, code, err, b)
				}
				r := decodificar(t, b)
				if r.Estado != "COMPLETADA" {
					t.Fatalf("%s: %s", f.ruta, b)
				}
				code, b, err = s.Get(context.Background(), "/api/v1/sagas/"+r.ID)
				var d struct {
					TraceID string `json:"trace_id"`
				}
				if err != nil || code != 200 || json.Unmarshal(b, &d) != nil || len(d.TraceID) != 32 {
					t.Fatalf("detail of %s: %d %v %s", r.ID, code, err, b)
				}
				if f.traceparent != "" && d.TraceID != traceIDCliente {
					t.Fatalf("%s: trace_id %s, want the request's %s", f.ruta, d.TraceID, traceIDCliente)
				}
				verTraza(t, j, r.ID, d.TraceID, f.pasos, f.traceparent != "", spanCliente)
				verLogs(t, s, r.ID, d.TraceID, f.pasos)
			}
		})
	}
}

// verTraza waits for the saga's trace in Jaeger and checks it.
func verTraza(t *testing.T, j jaeger, sagaID, traceID string, pasos map[string]string, conPadre bool, spanPadre string) {
	t.Helper()
	var tr trazaJaeger
	var svcs map[string][]string
	fin := time.Now().Add(30 * time.Second)
	for {
		ts := j.trazas(t, "/api/traces/"+traceID)
		if len(ts) == 1 {
			tr, svcs = ts[0], ts[0].servicios()
			completa := len(svcs["coordinador"]) > 0
			for p, comando := range pasos {
				completa = completa && slices.Contains(svcs[p], comando)
				completa = completa && slices.Contains(svcs["coordinador"], "enviar "+comando) &&
					slices.Contains(svcs["coordinador"], "respuesta "+comando+"Respondido")
			}
			if completa {
				break
			}
		}
		if time.Now().After(fin) {
			t.Fatalf("saga %s: trace %s in jaeger lacks spans; services and spans: %v", sagaID, traceID, svcs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// One trace: no span of another trace names the saga, in any service.
	tags := url.QueryEscape(fmt.Sprintf(`{"saga.id":%q}`, sagaID))
	for _, svc := range append(mapsKeys(pasos), "coordinador") {
		for _, otra := range j.trazas(t, "/api/traces?service="+svc+"&tags="+tags+"&limit=100&lookback=1h") {
			if otra.TraceID != traceID {
				t.Fatalf("saga %s: service %s has spans in trace %s besides the saga's %s", sagaID, svc, otra.TraceID, traceID)
			}
		}
	}
	// Connected: every span's parent is in the trace, but the root's, which
	// is the caller's span when the request carried a traceparent.
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	var raices []string
	for _, s := range tr.Spans {
		padre := ""
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				padre = r.SpanID
			}
		}
		if padre == "" || !ids[padre] {
			raices = append(raices, s.OperationName+"←"+padre)
			if conPadre && padre != spanPadre {
				t.Fatalf("saga %s: span %s has parent %q, want the request's span %s", sagaID, s.OperationName, padre, spanPadre)
			}
		}
	}
	if len(raices) != 1 || !strings.HasPrefix(raices[0], "POST ") {
		t.Fatalf("saga %s: the trace must have one root, the API request's span; roots: %v (services %v)", sagaID, raices, svcs)
	}
	t.Logf("saga %s: trace %s, %d spans: %v", sagaID, traceID, len(tr.Spans), svcs)
	if os.Getenv("SAGAS_CAPTURAS") == "1" && len(pasos) == 4 {
		capturarTraza(t, tr)
	}
}

func mapsKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// verLogs checks that every log line of every process about the saga
// carries its trace_id, and that each participant of the flow logged one.
func verLogs(t *testing.T, s *sistema.Sistema, sagaID, traceID string, pasos map[string]string) {
	t.Helper()
	for _, proceso := range append(mapsKeys(pasos), "coordinador") {
		f, err := os.Open(filepath.Join(s.Dir, proceso+".log"))
		if err != nil {
			t.Fatal(err)
		}
		lineas := 0
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) != nil || l["saga_id"] != sagaID {
				continue
			}
			lineas++
			if l["trace_id"] != traceID {
				f.Close()
				t.Fatalf("%s logged about saga %s without its trace_id %s: %s", proceso, sagaID, traceID, sc.Bytes())
			}
		}
		f.Close()
		if lineas == 0 {
			t.Fatalf("%s logged no line about saga %s", proceso, sagaID)
		}
	}
}
