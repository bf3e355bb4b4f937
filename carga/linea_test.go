package main

import (
	"testing"
	"time"
)

// The timeline takes the sagas whose messages came in the most common
// sequence and gives the median of each hop between consecutive points.
func TestLineaTramosMedianaPorSalto(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	l := &linea{marcas: map[string][]marcaLinea{}}
	enviado, terminado := map[string]time.Time{}, map[string]time.Time{}
	for i, d := range []float64{1, 2, 3} { // a, b, c: hops grow with d
		id := string(rune('a' + i))
		base := float64(i) * 1000
		enviado[id] = ms(base)
		// Out of order on purpose: the reply was read before the command.
		l.marcas[id] = []marcaLinea{{ms(base + 5*d), "respuesta marca"}, {ms(base + 2*d), "comando marca"}, {ms(base + 6*d), "SagaCompletada"}}
		terminado[id] = ms(base + 7*d)
	}
	// d: another sequence (no reply seen), left out.
	enviado["d"], terminado["d"] = ms(5000), ms(5100)
	l.marcas["d"] = []marcaLinea{{ms(5050), "comando marca"}}
	// e: never finished, left out.
	enviado["e"] = ms(6000)
	l.marcas["e"] = []marcaLinea{{ms(6001), "comando marca"}}

	got := l.tramos(enviado, terminado)
	want := []Tramo{
		{"POST sent", "comando marca", 4},
		{"comando marca", "respuesta marca", 6},
		{"respuesta marca", "SagaCompletada", 2},
		{"SagaCompletada", "outcome received", 2},
	}
	if len(got) != len(want) {
		t.Fatalf("tramos = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("tramo %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
