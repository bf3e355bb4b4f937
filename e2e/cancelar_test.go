package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/sistema"
	"github.com/apache/pulsar-client-go/pulsar"
)

// detalleCancelacion is what the cancel test reads of GET /api/v1/sagas/{id}.
type detalleCancelacion struct {
	Estado         string            `json:"estado"`
	Cancelacion    time.Time         `json:"cancelacion"`
	PasoFallido    string            `json:"paso_fallido"`
	Compensaciones []string          `json:"compensaciones"`
	Error          string            `json:"error"`
	Pasos          []pasoCancelacion `json:"pasos"`
}

type pasoCancelacion struct {
	Paso   string `json:"paso"`
	Estado string `json:"estado"`
}

func leerCancelacion(t *testing.T, s *sistema.Sistema, id string) detalleCancelacion {
	t.Helper()
	code, b, err := s.Get(context.Background(), "/api/v1/sagas/"+id)
	if err != nil || code != http.StatusOK {
		t.Fatalf("detail of %s: %d %v %s", id, code, err, b)
	}
	var d detalleCancelacion
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// esperarDetalle polls the saga's detail until cumple holds.
func esperarCancelacion(t *testing.T, s *sistema.Sistema, id, que string, plazo time.Duration, cumple func(detalleCancelacion) bool) detalleCancelacion {
	t.Helper()
	fin := time.Now().Add(plazo)
	for {
		d := leerCancelacion(t, s, id)
		if cumple(d) {
			return d
		}
		if time.Now().After(fin) {
			t.Fatalf("saga %s: %s did not happen within %v: %+v", id, que, plazo, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cancelar posts the cancel to one coordinator replica's API.
func cancelar(t *testing.T, api, id string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(api+"/api/v1/sagas/"+id+"/cancelar", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("cancel of %s: %d, body is not JSON: %s", id, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// lectorEventos reads the system's eventos-saga from its start.
func lectorEventos(t *testing.T, s *sistema.Sistema) func(id string, plazo time.Duration) eventos.Evento {
	t.Helper()
	c, err := bus.Conectar(s.Env["SAGAS_PULSAR_URL"], slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	topico := eventos.Topologia{Tenant: eventos.TopologiaPorDefecto.Tenant, Namespace: s.Namespace}.Eventos()
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topico, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatalf("reader of %s: %v", topico, err)
	}
	t.Cleanup(r.Close)
	codec, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		t.Fatal(err)
	}
	return func(id string, plazo time.Duration) eventos.Evento {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), plazo)
		defer cancel()
		for {
			m, err := r.Next(ctx)
			if err != nil {
				t.Fatalf("no outcome event of saga %s on %s: %v", id, topico, err)
			}
			ev, err := codec.Decodificar(m.Payload())
			if err != nil {
				t.Fatalf("event on %s: %v", topico, err)
			}
			if ev.SagaID == id {
				return ev
			}
		}
	}
}

// TestCancelarEnVueloCompensaCadaPasoIniciado cancels sagas of both flows
// while a step (campana) or a whole parallel group (lanzar-campania-completa)
// is in flight, slowed by the participants' latency: every started step's
// effect is undone in the participants' stores, the steps never started stay
// so, the saga ends CANCELADA with SagaCancelada on eventos-saga, and a saga
// that already ended answers 409. On MySQL two coordinator replicas run and
// the cancel goes to the one that did not start the saga.
func TestCancelarEnVueloCompensaCadaPasoIniciado(t *testing.T) {
	for _, c := range []struct {
		almacen  string
		replicas int
	}{{"sqlite", 1}, {"mysql", 2}} {
		t.Run(c.almacen, func(t *testing.T) {
			s := sistema.Arrancar(t, sistema.Opciones{Almacen: c.almacen, Replicas: c.replicas,
				Extra: map[string]string{"SAGAS_LATENCIA": "1500ms"}})
			api := s.API
			if len(s.APIs) > 0 {
				api = s.APIs[0]
			}
			evento := lectorEventos(t, s)
			ctx := context.Background()
			flujos := []struct {
				ruta, cuerpo string
				// hechos completed and enVuelo are in flight when the cancel goes
				hechos, enVuelo []string
				servicios       []string // participants holding an effect of a step seen started
				grupo           int      // first step of the flow's parallel group (-1: none)
			}{
				{"/campana-saga", strings.Replace(cuerpoCampana, "%s", "", 1),
					[]string{"influencer"}, []string{"marca"}, []string{"influencer", "marca"}, -1},
				{"/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento(""),
					[]string{"solicitar_afiliados_elegibles"},
					[]string{"configurar_comisiones_campania", "inicializar_tracking_conversiones", "preparar_notificaciones_campania"},
					[]string{"afiliados", "comisiones", "tracking", "notificaciones"}, 1},
			}
			for _, f := range flujos {
				code, b, err := s.Post(ctx, f.ruta, f.cuerpo)
				if err != nil || code != http.StatusAccepted {
					t.Fatalf("%s: %d %v %s", f.ruta, code, err, b)
				}
				id := decodificar(t, b).ID
				esperarCancelacion(t, s, id, "steps "+strings.Join(f.enVuelo, ", ")+" in flight", 30*time.Second, func(d detalleCancelacion) bool {
					for _, p := range d.Pasos {
						if slices.Contains(f.hechos, p.Paso) && p.Estado != "COMPLETADO" || slices.Contains(f.enVuelo, p.Paso) && p.Estado != "EJECUTANDO" {
							return false
						}
					}
					return true
				})
				// paso_actual of a cancelled saga is the newest step whose
				// reply it awaits.
				var actual string
				for i := range 2 { // a repeated cancel is the same success
					code, r := cancelar(t, api, id)
					if code != http.StatusAccepted || r["estado"] != "COMPENSANDO" || r["cancelacion"] == nil {
						t.Fatalf("%s: cancel %d of %s: %d %v", f.ruta, i+1, id, code, r)
					}
					if i == 0 {
						actual, _ = r["paso_actual"].(string)
					}
				}
				d := esperarCancelacion(t, s, id, "CANCELADA", 60*time.Second, func(d detalleCancelacion) bool { return d.Estado == "CANCELADA" })
				// Every started step is compensated and the others never ran.
				// The cancel may have raced with a reply and come a step
				// later than seen above: what started is read from the end
				// state, and must include what was seen.
				var iniciados []string
				for _, p := range d.Pasos {
					switch {
					case p.Estado == "COMPENSADO":
						iniciados = append(iniciados, p.Paso)
					case p.Estado != "PENDIENTE" || slices.Contains(f.hechos, p.Paso) || slices.Contains(f.enVuelo, p.Paso):
						t.Fatalf("%s: saga %s step %s ended %s: %+v", f.ruta, id, p.Paso, p.Estado, d)
					}
				}
				// Newest first; a parallel group (the last steps of
				// lanzar-campania-completa) in the order its members
				// answered, so compared as a set.
				want := slices.Clone(iniciados)
				slices.Reverse(want)
				got := slices.Clone(d.Compensaciones)
				if f.grupo > 0 && len(got) == len(want) && len(iniciados) > f.grupo {
					n := len(iniciados) - f.grupo
					slices.Sort(got[:n])
					slices.Sort(want[:n])
				}
				if !slices.Equal(got, want) || d.PasoFallido != "" || d.Error != "cancelada por el operador" || d.Cancelacion.IsZero() {
					t.Fatalf("%s: saga %s ended %+v; want compensaciones %v", f.ruta, id, d, want)
				}
				// Nothing after the newest step in flight at the cancel ran.
				for i, p := range d.Pasos {
					if i > slices.IndexFunc(d.Pasos, func(p pasoCancelacion) bool { return p.Paso == actual }) && p.Estado != "PENDIENTE" {
						t.Fatalf("%s: saga %s ran %s after the cancel, which found %s in flight", f.ruta, id, p.Paso, actual)
					}
				}
				// The participants' own stores: each started step left an
				// effect, and each is undone.
				for _, svc := range f.servicios {
					code, b, err := s.Get(ctx, s.Metricas[svc]+"/efectos/"+id)
					var e struct {
						Activos int               `json:"activos"`
						Efectos []json.RawMessage `json:"efectos"`
					}
					if err != nil || code != http.StatusOK || json.Unmarshal(b, &e) != nil || len(e.Efectos) == 0 || e.Activos != 0 {
						t.Fatalf("%s: effects of %s in %s: %d %v %s; want some, none active", f.ruta, id, svc, code, err, b)
					}
				}
				if activos := efectosActivos(t, s, id); len(activos) != 0 {
					t.Fatalf("%s: cancelled saga %s left effects %v", f.ruta, id, activos)
				}
				ev := evento(id, 30*time.Second)
				if ev.Type != eventos.Tipo(eventos.SagaCancelada) || ev.Estado != "CANCELADA" || !slices.Equal(ev.Compensaciones, d.Compensaciones) {
					t.Fatalf("%s: outcome event of %s: %+v", f.ruta, id, ev)
				}
				if code, r := cancelar(t, api, id); code != http.StatusAccepted || r["estado"] != "CANCELADA" {
					t.Fatalf("%s: cancel of the CANCELADA saga %s: %d %v, want the same success", f.ruta, id, code, r)
				}
			}

			// A saga that already ended cannot be cancelled: 409 with its state.
			code, b, err := s.Post(ctx, "/campana-saga?esperar=60s", strings.Replace(cuerpoCampana, "%s", "", 1))
			if err != nil || code != http.StatusOK {
				t.Fatalf("completed saga: %d %v %s", code, err, b)
			}
			id := decodificar(t, b).ID
			if code, r := cancelar(t, api, id); code != http.StatusConflict || r["estado"] != "COMPLETADA" {
				t.Fatalf("cancel of the COMPLETADA saga %s: %d %v, want 409 with its state", id, code, r)
			}
			if d := leerCancelacion(t, s, id); d.Estado != "COMPLETADA" || !d.Cancelacion.IsZero() {
				t.Fatalf("a refused cancel changed saga %s: %+v", id, d)
			}
			if code, r := cancelar(t, api, "no-existe-"+s.Namespace); code != http.StatusNotFound {
				t.Fatalf("cancel of an unknown saga: %d %v", code, r)
			}
		})
	}
}
