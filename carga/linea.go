package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/eventos"
)

// Tramo is one hop of a saga's timeline: from one point to the next, over
// the sagas of the run (-linea). Ms is the hop's median and P99 its 99th
// percentile; Lentas is its median over the slowest 1 % of those sagas (by
// their whole time, at least one saga), which says where a tail is spent.
type Tramo struct {
	Desde  string  `json:"desde"`
	Hasta  string  `json:"hasta"`
	Ms     float64 `json:"ms"`
	P99    float64 `json:"p99_ms"`
	Lentas float64 `json:"lentas_ms"`
}

// linea records when each message of a saga was published, as its producer
// stamped it (PublishTime, millisecond resolution), on the command topics of
// the flow's services, the reply topic and the outcome topic. With the load
// tool's own clock at the POST and at the outcome's arrival it gives the
// saga's hops: POST sent → command published (the coordinator: HTTP, the
// creation commit, the relay) → reply published (the broker's delivery, the
// participant's receive and commit) → next command published (delivery, the
// coordinator's receive, commit and relay) ... → outcome received.
type linea struct {
	mu     sync.Mutex
	marcas map[string][]marcaLinea
}

type marcaLinea struct {
	t   time.Time
	que string
}

// seguirLinea starts a reader (at the latest message) on each of topicos
// until ctx ends.
func seguirLinea(ctx context.Context, client pulsar.Client, topicos []string) (*linea, func(), error) {
	l := &linea{marcas: map[string][]marcaLinea{}}
	var readers []pulsar.Reader
	cerrar := func() {
		for _, r := range readers {
			r.Close()
		}
	}
	for _, t := range topicos {
		r, err := client.CreateReader(pulsar.ReaderOptions{Topic: t, StartMessageID: pulsar.LatestMessageID(), ReceiverQueueSize: 1000})
		if err != nil {
			cerrar()
			return nil, nil, fmt.Errorf("-linea: leer %s: %w", t, err)
		}
		readers = append(readers, r)
		go func() {
			for {
				msg, err := r.Next(ctx)
				if err != nil {
					return
				}
				p := msg.Properties()
				que := p[eventos.PropTipo]
				if paso := p[eventos.PropPaso]; paso != "" {
					que += " " + paso
				}
				l.mu.Lock()
				l.marcas[msg.Key()] = append(l.marcas[msg.Key()], marcaLinea{msg.PublishTime(), que})
				l.mu.Unlock()
			}
		}()
	}
	return l, cerrar, nil
}

// tramos returns the median of each hop over the sagas whose messages came
// in the same sequence as most sagas' (enviado and terminado: the load
// tool's clock at the POST and at the outcome's arrival).
func (l *linea) tramos(enviado, terminado map[string]time.Time) []Tramo {
	l.mu.Lock()
	defer l.mu.Unlock()
	secuencias := map[string][][]marcaLinea{}
	for id, ms := range l.marcas {
		ini, ok1 := enviado[id]
		fin, ok2 := terminado[id]
		if !ok1 || !ok2 {
			continue
		}
		ms = slices.Clone(ms)
		slices.SortStableFunc(ms, func(a, b marcaLinea) int { return a.t.Compare(b.t) })
		puntos := append([]marcaLinea{{ini, "POST sent"}}, ms...)
		puntos = append(puntos, marcaLinea{fin, "outcome received"})
		clave := ""
		for _, p := range puntos {
			clave += p.que + "|"
		}
		secuencias[clave] = append(secuencias[clave], puntos)
	}
	var mayor [][]marcaLinea
	for _, s := range secuencias {
		if len(s) > len(mayor) {
			mayor = s
		}
	}
	if len(mayor) == 0 {
		return nil
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	total := func(p []marcaLinea) time.Duration { return p[len(p)-1].t.Sub(p[0].t) }
	lentas := slices.Clone(mayor)
	slices.SortFunc(lentas, func(a, b []marcaLinea) int { return cmp.Compare(total(b), total(a)) })
	lentas = lentas[:max(1, len(lentas)/100)]
	var out []Tramo
	for i := 1; i < len(mayor[0]); i++ {
		var ds, dl []float64
		for _, p := range mayor {
			ds = append(ds, ms(p[i].t.Sub(p[i-1].t)))
		}
		for _, p := range lentas {
			dl = append(dl, ms(p[i].t.Sub(p[i-1].t)))
		}
		slices.Sort(ds)
		slices.Sort(dl)
		out = append(out, Tramo{Desde: mayor[0][i-1].que, Hasta: mayor[0][i].que,
			Ms: percentil(ds, 0.5), P99: percentil(ds, 0.99), Lentas: percentil(dl, 0.5)})
	}
	return out
}

func imprimirLinea(w io.Writer, ts []Tramo) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(w, "  timeline of a saga (per hop: median, p99, and median over the slowest 1 % of sagas; message times are their producers' publish stamps, 1 ms resolution):")
	var total, lentas float64
	for _, t := range ts {
		total += t.Ms
		lentas += t.Lentas
		fmt.Fprintf(w, "    %7.1f %7.1f %7.1f ms  %-45s -> %s\n", t.Ms, t.P99, t.Lentas, t.Desde, t.Hasta)
	}
	fmt.Fprintf(w, "    %7.1f %7s %7.1f ms  sum\n", total, "", lentas)
}
