package motor

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
)

func salidaDe(n int) json.RawMessage {
	return json.RawMessage(`{"x":"` + strings.Repeat("a", n-8) + `"}`)
}

func TestUnaSalidaQueExcedeLosLimitesFallaSuPasoConUnErrorQueLosNombra(t *testing.T) {
	s := saga.Saga{Datos: json.RawMessage(`{}`), Pasos: []saga.EstadoDePaso{
		{Nombre: "a", Salida: salidaDe(eventos.MaximoSalida)},
		{Nombre: "b", Salida: salidaDe(eventos.MaximoSalida)},
		{Nombre: "c", Salida: salidaDe(eventos.MaximoSalida)},
		{Nombre: "d"},
	}}
	ok := saga.Respuesta{Paso: "d", Accion: saga.Ejecutar, Exito: true, Datos: salidaDe(100)}
	if r := acotar(s, ok); !r.Exito || len(r.Datos) != 100 {
		t.Fatalf("a small output within the load must pass: %+v", r.Error)
	}
	grande := saga.Respuesta{Paso: "d", Accion: saga.Ejecutar, Exito: true, Datos: salidaDe(eventos.MaximoSalida + 1)}
	if r := acotar(s, grande); r.Exito || r.Datos != nil || !strings.Contains(r.Error, "eventos.MaximoSalida") {
		t.Fatalf("an output past MaximoSalida must fail its step: %+v", r)
	}
	s.Datos = salidaDe(eventos.MaximoEntrada)
	lleno := saga.Respuesta{Paso: "d", Accion: saga.Ejecutar, Exito: true, Datos: salidaDe(eventos.MaximoSalida)}
	if r := acotar(s, lleno); r.Exito || !strings.Contains(r.Error, "eventos.MaximoCarga") {
		t.Fatalf("an output that takes the saga past MaximoCarga must fail its step: %+v", r.Error)
	}
	comp := saga.Respuesta{Paso: "d", Accion: saga.Compensar, Exito: true, Datos: salidaDe(eventos.MaximoSalida + 1)}
	if r := acotar(s, comp); !r.Exito || r.Datos != nil {
		t.Fatalf("an oversized compensation output is dropped, not failed: %+v", r)
	}
	if r := acotar(s, saga.Respuesta{Paso: "d", Error: strings.Repeat("é", 5000)}); len(r.Error) > largoErrorMaximo {
		t.Fatalf("error text kept at %d bytes", len(r.Error))
	}
}
