package fallos

import (
	"strings"
	"testing"
)

func sorteos(i *Inyector, n int) []bool {
	r := make([]bool, n)
	for k := range r {
		_, r[k] = i.FallaAccion("marca", Simulacion{})
	}
	return r
}

func TestInyectorConLaMismaSemillaFallaEnLosMismosComandos(t *testing.T) {
	a := sorteos(NuevoInyector("marca", 0.1, "Error de notificación", 42), 2000)
	b := sorteos(NuevoInyector("marca", 0.1, "Error de notificación", 42), 2000)
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
	c := sorteos(NuevoInyector("marca", 0.1, "", 43), 2000)
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

func TestInyectorConTasaUnoFallaSiempreConSuMensaje(t *testing.T) {
	i := NuevoInyector("influencer", 1, "Error de red", 7)
	for range 100 {
		if msg, ok := i.FallaAccion("influencer", Simulacion{}); !ok || msg != "Error de red" {
			t.Fatalf("FallaAccion = %q, %v", msg, ok)
		}
	}
	if _, ok := i.FallaCompensacion("influencer", Simulacion{}); ok {
		t.Fatal("random injection must never fail a compensation")
	}
}

func TestSimularFalloNombraElPasoOElServicio(t *testing.T) {
	i := NuevoInyector("tracking", 0, "", 1)
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
		msg, ok := i.FallaAccion(c.paso, Simulacion{SimularFallo: c.valor})
		if ok != c.falla || (ok && !strings.Contains(msg, c.paso)) {
			t.Errorf("accion paso %q simular_fallo %q: %q %v, want %v", c.paso, c.valor, msg, ok, c.falla)
		}
		msg, ok = i.FallaCompensacion(c.paso, Simulacion{SimularFalloCompensacion: c.valor})
		if ok != c.falla || (ok && !strings.Contains(msg, "compensación")) {
			t.Errorf("compensacion paso %q simular_fallo_compensacion %q: %q %v, want %v", c.paso, c.valor, msg, ok, c.falla)
		}
		if _, ok := i.FallaCompensacion(c.paso, Simulacion{SimularFallo: c.valor}); ok {
			t.Errorf("simular_fallo %q failed a compensation", c.valor)
		}
	}
}
