package motor

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/traza"
)

// drenar takes every outbox row out of db.
func drenar(t *testing.T, db *almacen.DB) []almacen.Mensaje {
	t.Helper()
	var out []almacen.Mensaje
	_, err := db.DrenarOutbox(t.Context(), 100, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		ids := make([]int64, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		out = append(out, ms...)
		return ids, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The saga keeps the trace context it started in; each command goes out in
// the context that caused it (the request, a reply's handling) or, when
// nothing in flight caused it (a deadline), in the saga's own.
func TestLosComandosSalenEnElContextoDeTrazaQueLosCausa(t *testing.T) {
	db, err := almacen.Abrir(t.Context(), almacen.Config{Tipo: almacen.TipoSQLite, Ruta: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	comandos, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		t.Fatal(err)
	}
	ahora := time.Now()
	m := Nuevo(Opciones{Store: db, Catalogo: saga.CatalogoPorDefecto(), Comandos: comandos, Eventos: evs,
		Logger: slog.New(slog.DiscardHandler), Reloj: func() time.Time { return ahora }})
	const peticion = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const respuesta = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
	entrada := json.RawMessage(`{"nombre":"x"}`)

	id, _, err := m.Iniciar(traza.Contexto(t.Context(), peticion), Solicitud{Tipo: saga.TipoCampana, Datos: entrada})
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Saga(t.Context(), id)
	if err != nil || s.Traceparent != peticion {
		t.Fatalf("saga traceparent %q, want the request's %q (%v)", s.Traceparent, peticion, err)
	}
	msgs := drenar(t, db)
	if len(msgs) != 1 || msgs[0].Propiedades[eventos.PropTraceparent] != peticion {
		t.Fatalf("first command: %+v", msgs)
	}

	// A reply handled in its own span: the next command goes out in it.
	primero := s.Pasos[0]
	errs := m.AplicarRespuestas(t.Context(), []eventos.Respuesta{{ID: "r1", SagaID: id, Paso: primero.Nombre,
		Accion: eventos.Ejecutar, Intento: 1, Exito: true, Datos: "{}"}}, []string{respuesta})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	msgs = drenar(t, db)
	if len(msgs) != 1 || msgs[0].Propiedades[eventos.PropTraceparent] != respuesta {
		t.Fatalf("command after the reply: %+v", msgs)
	}

	// Its deadline passes: the retry goes out in the saga's context.
	ahora = ahora.Add(24 * time.Hour)
	if n, err := m.VencerPlazos(t.Context(), 10); err != nil || n != 1 {
		t.Fatalf("VencerPlazos = %d, %v", n, err)
	}
	msgs = drenar(t, db)
	if len(msgs) != 1 || msgs[0].Propiedades[eventos.PropTraceparent] != peticion {
		t.Fatalf("retry after the deadline: %+v", msgs)
	}

	// No trace context at all: a new trace, kept with the saga.
	id2, _, err := m.Iniciar(t.Context(), Solicitud{Tipo: saga.TipoCampana, Datos: entrada})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := db.Saga(t.Context(), id2)
	msgs = drenar(t, db)
	if traza.TraceID(s2.Traceparent) == "" || traza.TraceID(s2.Traceparent) == traza.TraceID(peticion) ||
		len(msgs) != 1 || msgs[0].Propiedades[eventos.PropTraceparent] != s2.Traceparent {
		t.Fatalf("saga without a context: traceparent %q, rows %+v", s2.Traceparent, msgs)
	}
}
