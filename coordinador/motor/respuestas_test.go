package motor_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
)

// TestRespuestaRepetidaNoCambiaNadaNiEscribeInbox: a reply redelivered (the
// same message again, alone or twice in one batch) is refused by the saga's
// state, not by the inbox: it changes nothing, sends nothing and no inbox
// row is written for it. A reply without an attempt still goes through the
// inbox. After an operator's retry, the failure of the new round's first
// attempt counts (its id is new), while the earlier round's does not.
func TestRespuestaRepetidaNoCambiaNadaNiEscribeInbox(t *testing.T) {
	enCadaAlmacen(t, "sagas_respuestas_", func(t *testing.T, db *almacen.DB) {
		ctx := t.Context()
		def := saga.Campana()
		def.IntentosCompensacion = 1
		cc, ec := codecs()
		m := motor.Nuevo(motor.Opciones{Store: db, Catalogo: saga.Catalogo{def.Tipo: def}, Topologia: eventos.TopologiaPorDefecto,
			Comandos: cc, Eventos: ec})
		id, _, err := m.Iniciar(ctx, motor.Solicitud{Tipo: def.Tipo, Datos: json.RawMessage(`{"nombre":"repetida"}`)})
		if err != nil {
			t.Fatal(err)
		}
		respuesta := func(paso, accion string, intento int, exito bool) eventos.Respuesta {
			r := eventos.Respuesta{ID: id + ":" + paso + ":" + accion, SagaID: id, Paso: paso, Accion: accion,
				Intento: intento, Exito: exito, Datos: `{}`}
			r.ID += ":" + map[bool]string{true: "ok", false: "fallo"}[exito]
			if !exito {
				motivo := "no"
				r.Error = &motivo
			}
			return r
		}
		version := func() int64 {
			t.Helper()
			s, err := db.Saga(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return s.Version
		}
		inbox := func() int {
			t.Helper()
			n, err := db.PurgarInbox(ctx, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// influencer answers, then the same reply comes again, alone and
		// twice in one batch.
		r := respuesta("influencer", eventos.Ejecutar, 1, true)
		if err := m.AplicarRespuesta(ctx, r); err != nil {
			t.Fatal(err)
		}
		v := version()
		if err := m.AplicarRespuesta(ctx, r); err != nil {
			t.Fatalf("redelivery: %v", err)
		}
		for i, err := range m.AplicarRespuestas(ctx, []eventos.Respuesta{r, r}, nil) {
			if err != nil {
				t.Fatalf("redelivery %d in a batch: %v", i, err)
			}
		}
		if got := version(); got != v {
			t.Fatalf("a redelivered reply changed the saga: version %d -> %d", v, got)
		}
		if n := inbox(); n != 0 {
			t.Fatalf("%d inbox rows for replies with an attempt, want 0", n)
		}
		// marca fails; its compensation fails (one attempt): COMPENSACION_FALLIDA.
		for _, r := range []eventos.Respuesta{respuesta("marca", eventos.Ejecutar, 1, false), respuesta("marca", eventos.Compensar, 1, false)} {
			if err := m.AplicarRespuesta(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if s, _ := db.Saga(ctx, id); s.Estado != saga.CompensacionFallida {
			t.Fatalf("estado %s, want COMPENSACION_FALLIDA", s.Estado)
		}
		if err := m.Reintentar(ctx, id); err != nil {
			t.Fatal(err)
		}
		// Round 1's failure again: nothing. Round 2's (attempt 2): counted.
		v = version()
		if err := m.AplicarRespuesta(ctx, respuesta("marca", eventos.Compensar, 1, false)); err != nil || version() != v {
			t.Fatalf("round 1's failure after the retry: %v, version %d -> %d", err, v, version())
		}
		if err := m.AplicarRespuesta(ctx, respuesta("marca", eventos.Compensar, 2, false)); err != nil {
			t.Fatal(err)
		}
		if s, _ := db.Saga(ctx, id); s.Estado != saga.CompensacionFallida || s.Pasos[1].IntentoCompensacion != 2 {
			t.Fatalf("after round 2's failure: %s, attempt %d", s.Estado, s.Pasos[1].IntentoCompensacion)
		}
		// A reply without an attempt is keyed in the inbox: its
		// redelivery is dropped there.
		if err := m.Reintentar(ctx, id); err != nil {
			t.Fatal(err)
		}
		sin := respuesta("marca", eventos.Compensar, 0, false)
		for range 2 {
			if err := m.AplicarRespuesta(ctx, sin); err != nil {
				t.Fatal(err)
			}
		}
		if n := inbox(); n != 1 {
			t.Fatalf("%d inbox rows after a reply without an attempt (twice), want 1", n)
		}
		if s, _ := db.Saga(ctx, id); s.Estado != saga.CompensacionFallida || s.Pasos[1].IntentoCompensacion != 3 {
			t.Fatalf("after round 3's failure: %s, attempt %d", s.Estado, s.Pasos[1].IntentoCompensacion)
		}
	})
}
