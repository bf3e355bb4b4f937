package main

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
)

// historiaCompensada is a valid campana saga whose third step failed:
// tracking, marca and influencer compensated, newest first.
func historiaCompensada() (*sagaHistoria, []eventos.Evento) {
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	en := func(s float64) sql.NullTime {
		return sql.NullTime{Time: t0.Add(time.Duration(s * float64(time.Second))), Valid: true}
	}
	s := &sagaHistoria{ID: "s1", Tipo: saga.TipoCampana, VersionDef: 1, Estado: string(saga.Compensada), Version: 8,
		Compensaciones: []string{"tracking", "marca", "influencer"},
		Pasos: []pasoHistoria{
			{Orden: 0, Nombre: "influencer", Estado: "COMPENSADO", Inicio: en(0), Fin: en(1), InicioComp: en(5), FinComp: en(6)},
			{Orden: 1, Nombre: "marca", Estado: "COMPENSADO", Inicio: en(1), Fin: en(2), InicioComp: en(4), FinComp: en(5)},
			{Orden: 2, Nombre: "tracking", Estado: "COMPENSADO", Inicio: en(2), Fin: en(3), InicioComp: en(3), FinComp: en(4)},
		}}
	return s, []eventos.Evento{{ID: "e1", SagaID: "s1", Estado: s.Estado, Compensaciones: []string{"tracking", "marca", "influencer"}}}
}

func TestHistoriaValidaPasaYCadaDesvioSeNombra(t *testing.T) {
	cat := saga.CatalogoPorDefecto()
	if s, evs := historiaCompensada(); validarHistoria(s, cat, evs) != "" {
		t.Fatalf("a valid history refused: %s", validarHistoria(s, cat, evs))
	}
	// A compensation that gave up and later resumed (a late reply or an
	// operator's retry) announced COMPENSACION_FALLIDA before its outcome.
	{
		s, evs := historiaCompensada()
		evs = append([]eventos.Evento{{ID: "e0", SagaID: "s1", Estado: string(saga.CompensacionFallida)}}, evs...)
		if got := validarHistoria(s, cat, evs); got != "" {
			t.Errorf("COMPENSACION_FALLIDA then COMPENSADA refused: %s", got)
		}
	}
	casos := []struct {
		nombre string
		romper func(*sagaHistoria, *[]eventos.Evento)
		quiere string
	}{
		{"compensations oldest first", func(s *sagaHistoria, evs *[]eventos.Evento) {
			s.Compensaciones = []string{"influencer", "marca", "tracking"}
			(*evs)[0].Compensaciones = s.Compensaciones
		}, "de la más nueva a la más antigua"},
		{"a compensation started before a newer one", func(s *sagaHistoria, _ *[]eventos.Evento) {
			s.Pasos[0].InicioComp = s.Pasos[2].InicioComp
			s.Pasos[2].InicioComp = s.Pasos[1].FinComp
		}, "empezó antes que la de"},
		{"a version that went back", func(s *sagaHistoria, _ *[]eventos.Evento) { s.Version = 5 }, "versión 5 menor"},
		{"two outcome events", func(s *sagaHistoria, evs *[]eventos.Evento) { *evs = append(*evs, (*evs)[0]) }, "2 eventos en eventos-saga"},
		{"a second outcome after the final one", func(s *sagaHistoria, evs *[]eventos.Evento) {
			*evs = append(*evs, eventos.Evento{ID: "e2", SagaID: "s1", Estado: string(saga.CompensacionFallida)})
		}, "2 eventos en eventos-saga: [COMPENSADA COMPENSACION_FALLIDA]"},
		{"no outcome event", func(s *sagaHistoria, evs *[]eventos.Evento) { *evs = nil }, "ningún evento"},
		{"an event that disagrees", func(s *sagaHistoria, evs *[]eventos.Evento) { (*evs)[0].Estado = "COMPLETADA" }, "el evento dice COMPLETADA"},
		{"a step started before the previous ended", func(s *sagaHistoria, _ *[]eventos.Evento) {
			s.Pasos[2].Inicio = s.Pasos[0].Fin
		}, "antes de que terminara marca"},
		{"a compensated saga with an active step", func(s *sagaHistoria, evs *[]eventos.Evento) {
			s.Pasos[0].Estado = "COMPLETADO"
			s.Compensaciones = s.Compensaciones[:2]
			(*evs)[0].Compensaciones = s.Compensaciones
		}, "COMPENSADA con influencer en COMPLETADO"},
		{"a recorded compensation of a step not compensated", func(s *sagaHistoria, evs *[]eventos.Evento) {
			s.Compensaciones = s.Compensaciones[:2]
			(*evs)[0].Compensaciones = s.Compensaciones
		}, "compensaciones registradas"},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			s, evs := historiaCompensada()
			c.romper(s, &evs)
			if got := validarHistoria(s, cat, evs); !strings.Contains(got, c.quiere) {
				t.Errorf("validarHistoria = %q, want it to say %q", got, c.quiere)
			}
		})
	}
}

// In the parallel group of lanzar-campania-completa v2 the compensations of
// its members may come in any order; the group still goes before afiliados.
func TestCompensacionesDeUnGrupoEnCualquierOrden(t *testing.T) {
	cat := saga.CatalogoPorDefecto()
	d, err := cat.Buscar(saga.TipoLanzarCampaniaCompleta)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	en := func(s float64) sql.NullTime {
		return sql.NullTime{Time: t0.Add(time.Duration(s * float64(time.Second))), Valid: true}
	}
	s := &sagaHistoria{ID: "l1", Tipo: d.Tipo, VersionDef: d.Version, Estado: string(saga.Compensada), Version: 4}
	for i, p := range d.Pasos {
		ph := pasoHistoria{Orden: i, Nombre: p.Nombre, Estado: "COMPENSADO", Inicio: en(1), Fin: en(2), InicioComp: en(3), FinComp: en(4)}
		if i == 0 {
			ph.Inicio, ph.Fin, ph.InicioComp, ph.FinComp = en(0), en(1), en(5), en(6)
		}
		s.Pasos = append(s.Pasos, ph)
	}
	for i := len(d.Pasos) - 1; i >= 0; i-- {
		s.Compensaciones = append(s.Compensaciones, d.Pasos[i].Nombre)
	}
	// Swap two members of the group: still valid.
	s.Compensaciones[0], s.Compensaciones[1] = s.Compensaciones[1], s.Compensaciones[0]
	evs := []eventos.Evento{{SagaID: "l1", Estado: s.Estado, Compensaciones: s.Compensaciones}}
	if got := validarHistoria(s, cat, evs); got != "" {
		t.Fatalf("group members compensated in another order refused: %s", got)
	}
	// The first step before the group: not valid.
	c := s.Compensaciones
	s.Compensaciones = append([]string{c[len(c)-1]}, c[:len(c)-1]...)
	evs[0].Compensaciones = s.Compensaciones
	if got := validarHistoria(s, cat, evs); !strings.Contains(got, "más nueva a la más antigua") {
		t.Fatalf("afiliados compensated before the group: %q", got)
	}
}

// A re-send of one event after a replica takeover folds into one; two
// different events stay two.
func TestUnicosPliegaLosReenviosDeUnEvento(t *testing.T) {
	e1 := eventos.Evento{ID: "e1", Estado: string(saga.Compensada)}
	e0 := eventos.Evento{ID: "e0", Estado: string(saga.CompensacionFallida)}
	got, n := unicos([]eventos.Evento{e0, e1, e1, e0})
	if n != 2 || len(got) != 2 || got[0].ID != "e0" || got[1].ID != "e1" {
		t.Fatalf("unicos = %v, %d re-sends; want [e0 e1], 2", got, n)
	}
	if got, n := unicos([]eventos.Evento{e1, {ID: "e2", Estado: string(saga.Completada)}}); n != 0 || len(got) != 2 {
		t.Fatalf("two different events folded: %v, %d", got, n)
	}
}
