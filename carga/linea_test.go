package main

import (
	"fmt"
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
		{Desde: "POST sent", Hasta: "comando marca", Ms: 4, P99: 6, Lentas: 6},
		{Desde: "comando marca", Hasta: "respuesta marca", Ms: 6, P99: 9, Lentas: 9},
		{Desde: "respuesta marca", Hasta: "SagaCompletada", Ms: 2, P99: 3, Lentas: 3},
		{Desde: "SagaCompletada", Hasta: "outcome received", Ms: 2, P99: 3, Lentas: 3},
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

// The slowest 1 % of sagas (at least one) say where a tail is spent, which
// the per-hop p99 cannot: each hop's p99 may come from another saga.
func TestLineaTramosDeLasMasLentas(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	l := &linea{marcas: map[string][]marcaLinea{}}
	enviado, terminado := map[string]time.Time{}, map[string]time.Time{}
	// 150 sagas; each hop in [1, 3] ms, except one slow hop in some sagas.
	for i := range 150 {
		id := fmt.Sprint("s", i)
		h := []float64{1 + float64(i%3), 1 + float64(i%2), 1, 1}
		switch {
		case i == 7, i == 8: // the slowest two: 20 ms in the reply's hop
			h[2] = 20
		case i < 5: // slow on the command's hop, yet not the slowest in all
			h[1] = 15
		}
		base := float64(i) * 100
		enviado[id] = ms(base)
		l.marcas[id] = []marcaLinea{{ms(base + h[0]), "comando marca"}, {ms(base + h[0] + h[1]), "respuesta marca"},
			{ms(base + h[0] + h[1] + h[2]), "SagaCompletada"}}
		terminado[id] = ms(base + h[0] + h[1] + h[2] + h[3])
	}
	got := l.tramos(enviado, terminado)
	if len(got) != 4 {
		t.Fatalf("tramos = %+v; want 4 hops", got)
	}
	// 1 % of 150 is one saga: s7 or s8, both 20 ms in the reply's hop.
	if got[2].Lentas != 20 || got[1].Lentas > 2 {
		t.Errorf("slowest sagas' hops: %+v; want the 20 ms in respuesta -> SagaCompletada only", got)
	}
	// p99 of 150 is the 149th value: 15 ms in the command's hop (5 sagas).
	if got[1].P99 != 15 || got[1].Ms != 1 && got[1].Ms != 2 {
		t.Errorf("command hop %+v; want p99 15 ms, median 1-2 ms", got[1])
	}
}
