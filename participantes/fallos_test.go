package participantes

import (
	"testing"

	"github.com/alpespartner/sagas/participantes/fallos"
)

func TestInyectorApagadoPorDefectoNuncaFalla(t *testing.T) {
	i := inyectorDe(Servicio{Nombre: "tracking", FalloSemilla: FalloSemilla{Tasa: 0.15, Mensaje: "x"}}, ConfigFallos{Semilla: 1})
	for k := range 1000 {
		if motivo, falla := i.FallaAccion("tracking", fallos.Simulacion{}); falla {
			t.Fatalf("draw %d failed with injection off: %q", k, motivo)
		}
	}
}

func TestInyectorConTasaUnoFallaSiempreConElMensajeDeLasSemillas(t *testing.T) {
	uno := 1.0
	i := inyectorDe(Servicio{Nombre: "influencer", FalloSemilla: FalloSemilla{Tasa: 0.05, Mensaje: "Error de red"}}, ConfigFallos{Tasa: &uno, Semilla: 7})
	for range 100 {
		if msg, ok := i.FallaAccion("influencer", fallos.Simulacion{}); !ok || msg != "Error de red" {
			t.Fatalf("FallaAccion = %q, %v", msg, ok)
		}
	}
	if _, ok := i.FallaCompensacion("influencer", fallos.Simulacion{}); ok {
		t.Fatal("random injection must never fail a compensation")
	}
}
