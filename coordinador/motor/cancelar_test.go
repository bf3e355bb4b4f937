package motor_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCancelarCompiteConUnaRespuestaYTerminaCancelada: two engines (two
// replicas) share one database; one cancels while the other applies the
// in-flight step's reply, many times over. Both always land, one after the
// other (the reply is then compensated, never continued), the saga ends
// CANCELADA, its outcome event SagaCancelada is in the outbox and the
// metrics count it by that estado.
func TestCancelarCompiteConUnaRespuestaYTerminaCancelada(t *testing.T) {
	enCadaAlmacen(t, "sagas_cancelar_", func(t *testing.T, db *almacen.DB) {
		ctx := t.Context()
		def := saga.Campana()
		registro := prometheus.NewRegistry()
		metricas := motor.NuevasMetricas(registro, nil)
		cc, ec := codecs()
		nuevo := func() *motor.Motor {
			return motor.Nuevo(motor.Opciones{Store: db, Catalogo: saga.Catalogo{def.Tipo: def}, Topologia: eventos.TopologiaPorDefecto,
				Comandos: cc, Eventos: ec, Observador: metricas})
		}
		a, b := nuevo(), nuevo()
		responder := func(m *motor.Motor, id, paso string, accion string) error {
			return m.AplicarRespuesta(context.Background(), eventos.Respuesta{ID: uuid.NewString(), SagaID: id, Paso: paso,
				Accion: accion, Intento: 1, Exito: true, Datos: `{}`})
		}
		const n = 8
		ordenes := map[string]int{}
		defer func() { t.Logf("orders seen: %v", ordenes) }()
		for range n {
			id, _, err := a.Iniciar(ctx, motor.Solicitud{Tipo: def.Tipo, Datos: json.RawMessage(`{"nombre":"carrera"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if err := responder(a, id, "influencer", eventos.Ejecutar); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var errCancelar, errRespuesta error
			wg.Go(func() { errCancelar = b.Cancelar(context.Background(), id) })
			wg.Go(func() { errRespuesta = responder(a, id, "marca", eventos.Ejecutar) })
			wg.Wait()
			if errCancelar != nil || errRespuesta != nil {
				t.Fatalf("cancel %v, reply %v", errCancelar, errRespuesta)
			}
			s, err := db.Saga(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			// Both landed, in either order: the cancel stands and marca's
			// reply was not lost. Cancel first: marca is compensated and
			// tracking never starts. Reply first: tracking started and
			// is awaited, then compensated too.
			want := []string{"marca", "influencer"}
			switch {
			case s.Estado != saga.Compensando || s.Cancelacion.IsZero() || s.Pasos[1].Estado == saga.PasoEjecutando:
				t.Fatalf("after the race: %s cancelacion %v, marca %s", s.Estado, s.Cancelacion, s.Pasos[1].Estado)
			case s.Pasos[2].Estado == saga.PasoEjecutando:
				ordenes["respuesta primero"]++
				want = append([]string{"tracking"}, want...)
				if err := responder(a, id, "tracking", eventos.Ejecutar); err != nil {
					t.Fatal(err)
				}
			case s.Pasos[2].Estado == saga.PasoPendiente && s.Pasos[1].Estado == saga.PasoCompensando:
				ordenes["cancelación primero"]++
			default:
				t.Fatalf("after the race: pasos %s %s %s", s.Pasos[0].Estado, s.Pasos[1].Estado, s.Pasos[2].Estado)
			}
			for _, p := range want {
				if err := responder(a, id, p, eventos.Compensar); err != nil {
					t.Fatal(err)
				}
			}
			if s, _ = db.Saga(ctx, id); s.Estado != saga.Cancelada || !slices.Equal(s.Compensaciones, want) {
				t.Fatalf("end: %s %v, want CANCELADA %v", s.Estado, s.Compensaciones, want)
			}
			if err := b.Cancelar(ctx, id); err != nil {
				t.Fatalf("a repeated cancel of a CANCELADA saga: %v, want nil", err)
			}
		}
		if err := b.Cancelar(ctx, uuid.NewString()); !errors.Is(err, almacen.ErrNoEncontrada) {
			t.Fatalf("cancel of an unknown saga: %v", err)
		}
		// A completed saga is not cancelled: the error names its state.
		id, _, err := a.Iniciar(ctx, motor.Solicitud{Tipo: def.Tipo, Datos: json.RawMessage(`{"nombre":"completa"}`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range def.Pasos {
			if err := responder(a, id, p.Nombre, eventos.Ejecutar); err != nil {
				t.Fatal(err)
			}
		}
		var nc *saga.NoCancelableError
		if err := b.Cancelar(ctx, id); !errors.As(err, &nc) || nc.Estado != saga.Completada {
			t.Fatalf("cancel of a COMPLETADA saga: %v, want *saga.NoCancelableError naming COMPLETADA", err)
		}
		var canceladas int
		if _, err := db.DrenarOutbox(ctx, 1000, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
			var ids []int64
			for _, m := range ms {
				ids = append(ids, m.ID)
				if m.Topico == eventos.TopologiaPorDefecto.Eventos() && m.Clave != id { // not the completed saga's
					ev, err := ec.Decodificar(m.Carga)
					if err != nil || ev.Type != eventos.Tipo(eventos.SagaCancelada) || ev.Estado != "CANCELADA" || ev.Error == nil || !strings.Contains(*ev.Error, "operador") {
						t.Errorf("outcome event %+v, %v", ev, err)
					}
					canceladas++
				}
			}
			return ids, nil
		}); err != nil {
			t.Fatal(err)
		}
		if canceladas != n {
			t.Fatalf("%d SagaCancelada events in the outbox, want %d", canceladas, n)
		}
		if got := terminadas(t, registro, "CANCELADA"); got != n {
			t.Fatalf("sagas_terminadas_total{estado=CANCELADA} = %v, want %d", got, n)
		}
	})
}

// terminadas reads sagas_terminadas_total{tipo="campana",estado=estado}.
func terminadas(t *testing.T, reg *prometheus.Registry, estado string) float64 {
	t.Helper()
	familias, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range familias {
		if f.GetName() != "sagas_terminadas_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			etiquetas := map[string]string{}
			for _, l := range m.GetLabel() {
				etiquetas[l.GetName()] = l.GetValue()
			}
			if etiquetas["estado"] == estado && etiquetas["tipo"] == "campana" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
