package participantes

import (
	"strings"
	"testing"
)

func sorteos(i *inyector, n int) []bool {
	r := make([]bool, n)
	for k := range r {
		_, r[k] = i.fallaAccion("marca", simulacion{})
	}
	return r
}

func TestInyectorConLaMismaSemillaFallaEnLosMismosComandos(t *testing.T) {
	cfg := ConfigFallos{Semillas: true, Semilla: 42}
	a := sorteos(nuevoInyector("marca", FalloSemilla{Tasa: 0.1, Mensaje: "Error de notificación"}, cfg), 2000)
	b := sorteos(nuevoInyector("marca", FalloSemilla{Tasa: 0.1, Mensaje: "Error de notificación"}, cfg), 2000)
	fallos := 0
	for k := range a {
		if a[k] != b[k] {
			t.Fatalf("draw %d differs with the same seed", k)
		}
		if a[k] {
			fallos++
		}
	}
	// 10% of 2000 draws: the binomial standard deviation is about 13.
	if fallos < 140 || fallos > 260 {
		t.Errorf("%d failures in 2000 draws at 10%%", fallos)
	}
	c := sorteos(nuevoInyector("marca", FalloSemilla{Tasa: 0.1}, ConfigFallos{Semillas: true, Semilla: 43}), 2000)
	if equal(a, c) {
		t.Error("a different seed gave the same draws")
	}
}

func equal(a, b []bool) bool {
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

func TestInyectorApagadoPorDefectoNuncaFalla(t *testing.T) {
	i := nuevoInyector("tracking", FalloSemilla{Tasa: 0.15, Mensaje: "x"}, ConfigFallos{Semilla: 1})
	for k, f := range sorteos(i, 1000) {
		if f {
			t.Fatalf("draw %d failed with injection off", k)
		}
	}
}

func TestInyectorConTasaUnoFallaSiempreConElMensajeDeLasSemillas(t *testing.T) {
	uno := 1.0
	i := nuevoInyector("influencer", FalloSemilla{Tasa: 0.05, Mensaje: "Error de red"}, ConfigFallos{Tasa: &uno, Semilla: 7})
	for range 100 {
		if msg, ok := i.fallaAccion("influencer", simulacion{}); !ok || msg != "Error de red" {
			t.Fatalf("fallaAccion = %q, %v", msg, ok)
		}
	}
	if _, ok := i.fallaCompensacion("influencer", simulacion{}); ok {
		t.Fatal("random injection must never fail a compensation")
	}
}

func TestSimularFalloNombraElPasoOElServicio(t *testing.T) {
	i := nuevoInyector("tracking", FalloSemilla{}, ConfigFallos{Semilla: 1})
	for _, c := range []struct {
		paso, valor string
		falla       bool
	}{
		{"tracking", "tracking", true},
		{"inicializar_tracking_conversiones", "tracking", true},
		{"inicializar_tracking_conversiones", "inicializar_tracking_conversiones", true},
		{"inicializar_tracking_conversiones", "marca", false},
		{"tracking", "", false},
	} {
		msg, ok := i.fallaAccion(c.paso, simulacion{SimularFallo: c.valor})
		if ok != c.falla || (ok && !strings.Contains(msg, c.paso)) {
			t.Errorf("accion paso %q simular_fallo %q: %q %v, want %v", c.paso, c.valor, msg, ok, c.falla)
		}
		msg, ok = i.fallaCompensacion(c.paso, simulacion{SimularFalloCompensacion: c.valor})
		if ok != c.falla || (ok && !strings.Contains(msg, "compensación")) {
			t.Errorf("compensacion paso %q simular_fallo_compensacion %q: %q %v, want %v", c.paso, c.valor, msg, ok, c.falla)
		}
		if _, ok := i.fallaCompensacion(c.paso, simulacion{SimularFallo: c.valor}); ok {
			t.Errorf("simular_fallo %q failed a compensation", c.valor)
		}
	}
}
