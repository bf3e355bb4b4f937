package almacen_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/integracion"
)

func TestPurgarSQLite(t *testing.T) { probarPurgar(t, configSQLite(t)) }

func TestPurgarMySQL(t *testing.T) {
	integracion.MySQLDSN(t)
	probarPurgar(t, configMySQL(t))
}

// probarPurgar: only finished sagas that ended before the cut go, with their
// steps; a saga waiting for an operator, one in flight and a recent one stay.
func probarPurgar(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ahora := time.Now().UTC()
	viejo, corte := ahora.Add(-2*time.Hour), ahora.Add(-time.Hour)
	terminada := func(id string, e saga.Estado, fin time.Time) saga.Saga {
		s := sagaMinima(id, fin.Add(-time.Minute))
		s.Estado, s.Fin = e, fin
		return s
	}
	quedan := []saga.Saga{
		terminada("reciente", saga.Completada, ahora),
		terminada("espera-operador", saga.CompensacionFallida, viejo),
		sagaMinima("en-curso", viejo),
	}
	van := []saga.Saga{terminada("completada-vieja", saga.Completada, viejo), terminada("compensada-vieja", saga.Compensada, viejo), terminada("cancelada-vieja", saga.Cancelada, viejo)}
	for i := range almacen.LotePurga + 3 { // more than one batch
		van = append(van, terminada(fmt.Sprintf("lote-%03d", i), saga.Completada, viejo))
	}
	for _, s := range append(append([]saga.Saga{}, quedan...), van...) {
		crear(t, db, s, "")
	}
	if err := db.RegistrarInbox(t.Context(), "respuesta-vieja"); err != nil {
		t.Fatal(err)
	}

	p, err := db.Purgar(t.Context(), corte)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sagas != len(van) {
		t.Errorf("purged %d sagas, want %d", p.Sagas, len(van))
	}
	for _, s := range van {
		if _, err := db.Saga(t.Context(), s.ID); !errors.Is(err, almacen.ErrNoEncontrada) {
			t.Errorf("%s: %v, want gone", s.ID, err)
		}
	}
	for _, s := range quedan {
		if got := leer(t, db, s.ID); len(got.Pasos) != len(s.Pasos) {
			t.Errorf("%s kept without its steps: %+v", s.ID, got.Pasos)
		}
	}
	var pasos int
	if err := crudo(t, c).QueryRow("SELECT COUNT(*) FROM pasos_saga").Scan(&pasos); err != nil {
		t.Fatal(err)
	}
	if want := 2 * len(quedan); pasos != want {
		t.Errorf("%d step rows left, want %d (the purged sagas' steps must go too)", pasos, want)
	}
	// The inbox key was recorded now: newer than the cut, it stays.
	if p.Inbox != 0 {
		t.Errorf("purged %d inbox keys recorded after the cut", p.Inbox)
	}
	if p, err := db.Purgar(t.Context(), ahora.Add(time.Minute)); err != nil || p.Inbox != 1 {
		t.Errorf("purge after the key's time: %+v, %v; want its inbox key gone", p, err)
	}
}
