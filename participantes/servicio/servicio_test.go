package servicio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
)

func nada(context.Context, Ejecutor, Peticion) (any, error) { return nil, nil }

func TestValidarInformaDeTodosLosProblemasALaVez(t *testing.T) {
	bien := Operacion{Comando: "A", Compensacion: "DeshacerA", Ejecutar: nada, Compensar: nada}
	for _, c := range []struct {
		nombre string
		s      Servicio
		want   []string // fragments of the error, all of them
	}{
		{"un servicio completo es válido", Servicio{Nombre: "x", Operaciones: []Operacion{bien}}, nil},
		{"sin nombre ni operaciones", Servicio{}, []string{"servicio sin nombre", "sin operaciones"}},
		{"operación incompleta y comando repetido", Servicio{Nombre: "x", Operaciones: []Operacion{bien, {Comando: "A"}}},
			[]string{"operación 1 necesita", `comando "A" repetido`}},
		{"tabla de efectos sin estados activos y tasa fuera de rango",
			Servicio{Nombre: "x", Operaciones: []Operacion{bien}, Efectos: []TablaEfectos{{Tabla: "t", Clave: "k"}}, FalloSemilla: FalloSemilla{Tasa: 2}},
			[]string{`tabla de efectos "t"`, "fuera de [0,1]"}},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			err := c.s.Validar()
			if (err == nil) != (len(c.want) == 0) {
				t.Fatalf("Validar = %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestOperacionDiceQueAccionNombraElComando(t *testing.T) {
	s := Servicio{Operaciones: []Operacion{{Comando: "A", Compensacion: "DeshacerA"}, {Comando: "B", Compensacion: "DeshacerB"}}}
	for _, c := range []struct {
		nombre, comando, accion string
		ok                      bool
	}{
		{"B", "B", eventos.Ejecutar, true},
		{"DeshacerA", "A", eventos.Compensar, true},
		{"C", "", "", false},
	} {
		op, accion, ok := s.Operacion(c.nombre)
		if ok != c.ok || accion != c.accion || (ok && op.Comando != c.comando) {
			t.Errorf("Operacion(%q) = %+v, %q, %v", c.nombre, op, accion, ok)
		}
	}
}

func TestBuscarPrevioTomaElPrimerPasoQueTieneElCampo(t *testing.T) {
	p := Peticion{Previos: map[string]json.RawMessage{
		"b": json.RawMessage(`{"n":2}`), "a": json.RawMessage(`{"n":1}`), "c": json.RawMessage(`no es json`),
	}}
	var n int
	if ok, err := p.BuscarPrevio("n", &n); !ok || err != nil || n != 1 {
		t.Fatalf("BuscarPrevio = %v, %v, n=%d; want the field of step a", ok, err, n)
	}
	if ok, err := p.BuscarPrevio("falta", &n); ok || err != nil {
		t.Fatalf("a missing field: %v, %v", ok, err)
	}
	var s string
	if _, err := p.BuscarPrevio("n", &s); !errors.As(err, new(*ErrorNegocio)) {
		t.Fatalf("a field of another type must be a business failure: %v", err)
	}
}

func TestComoNegocioEncuentraElRechazoEnvuelto(t *testing.T) {
	if neg, ok := ComoNegocio(fmt.Errorf("paso: %w", Rechazar("sin saldo"))); !ok || neg.Motivo != "sin saldo" {
		t.Fatalf("ComoNegocio = %v, %v", neg, ok)
	}
	if _, ok := ComoNegocio(errors.New("técnico")); ok {
		t.Fatal("a technical error is not a business failure")
	}
}

func TestActivosCuentaLosEfectosEnVigor(t *testing.T) {
	if n := Activos([]Efecto{{Activo: true}, {}, {Activo: true}}); n != 2 {
		t.Fatalf("Activos = %d", n)
	}
}
