package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// Suelo is a saga's latency floor on this machine (-suelo): the hops on the
// flow's path, each a one-row durable commit through the store's code path
// followed by a keyed broker delivery (send → a Key_Shared consumer has it),
// run back to back by one process with nothing else in between: no
// coordinator, no participants, no decoding. Every hop of a saga does at
// least that, so no build can be faster than this floor on the same machine,
// broker and database. Chains run one at a time at the run's pacing (-tasa:
// one starts every 1/tasa s; otherwise back to back), since how long the
// machine was idle before a hop changes what the hop costs.
type Suelo struct {
	Saltos       int     `json:"saltos"`
	Cadenas      int     `json:"cadenas"`
	PausaMs      float64 `json:"pausa_ms"`
	CommitP50Ms  float64 `json:"commit_p50_ms,omitempty"` // 0: no store given (-almacen)
	EntregaP50Ms float64 `json:"entrega_p50_ms"`
	SagaP50Ms    float64 `json:"saga_p50_ms"`
	SagaP99Ms    float64 `json:"saga_p99_ms"`
	// RatioP50 is the run's p50 over the floor's: what the coordinator,
	// the participants and their handoffs add, as a multiple.
	RatioP50 float64 `json:"ratio_p50"`
}

// cadenasSuelo bounds the chains measured: at 2 sagas/s, 100 take 50 s.
const cadenasSuelo = 100

// saltosDe is the number of hops on the path of a saga of flujo, per the
// definition new sagas start on: the create and each stage's command and
// reply (steps of one parallel group are one stage), then the outcome.
func saltosDe(flujo string) int {
	var d *saga.Definicion
	switch flujo {
	case saga.TipoCampana:
		d = saga.Campana()
	case saga.TipoLanzarCampaniaCompleta:
		d = saga.LanzarCampaniaCompleta()
	default:
		return 0
	}
	etapas := 0
	for i, p := range d.Pasos {
		if i == 0 || p.Grupo == "" || p.Grupo != d.Pasos[i-1].Grupo {
			etapas++
		}
	}
	return 2*etapas + 1
}

// medirSuelo measures the floor with the run's pacing and store and sets
// its ratio to r's p50.
func medirSuelo(ctx context.Context, o opciones, client pulsar.Client, admin *bus.Admin, topo eventos.Topologia, r *Resultado) (*Suelo, error) {
	s := &Suelo{Saltos: saltosDe(o.flujo), Cadenas: min(o.n, cadenasSuelo)}
	var db *almacen.DB
	if o.almacen != "" {
		var cerrar func()
		var err error
		if db, cerrar, err = baseDePrueba(ctx, o, 1); err != nil {
			return nil, err
		}
		defer cerrar()
	}
	topico := fmt.Sprintf("persistent://%s/suelo-%s", topo.NS(), aleatorio())
	defer borrarTopico(ctx, admin, topico) // deferred first: runs after the closes
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topico, SubscriptionName: "suelo", Type: pulsar.KeyShared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		return nil, fmt.Errorf("suscribir suelo: %w", bus.Causa(client, "consumir", topico, err))
	}
	defer cons.Close()
	// As the relay sends commands: one entry per message, flushed at once.
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topico, DisableBatching: true})
	if err != nil {
		return nil, fmt.Errorf("productor suelo: %w", bus.Causa(client, "producir", topico, err))
	}
	defer prod.Close()

	var pausa time.Duration
	if o.tasa > 0 {
		pausa = time.Duration(float64(time.Second) / o.tasa)
	}
	s.PausaMs = ms(pausa)
	prefijo := "suelo-" + aleatorio()
	var commits, entregas, sagas []float64
	// One unmeasured chain first: the topic and the connections are new.
	for c := -1; c < s.Cadenas; c++ {
		inicio := time.Now()
		for h := range s.Saltos {
			id := fmt.Sprintf("%s-%d-%d", prefijo, c, h) // the inbox key and the message
			t := time.Now()
			if db != nil {
				if err := db.RegistrarInbox(ctx, id); err != nil {
					return nil, fmt.Errorf("suelo: commit: %w", err)
				}
				if c >= 0 {
					commits = append(commits, ms(time.Since(t)))
				}
			}
			t = time.Now()
			fallo := make(chan error, 1)
			prod.SendAsync(ctx, &pulsar.ProducerMessage{Key: id, Payload: []byte(id)},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { fallo <- err })
			if err := prod.FlushWithCtx(ctx); err != nil {
				return nil, fmt.Errorf("suelo: envío: %w", err)
			}
			if err := recibir(ctx, cons, id, fallo); err != nil {
				return nil, err
			}
			if c >= 0 {
				entregas = append(entregas, ms(time.Since(t)))
			}
		}
		if c >= 0 {
			sagas = append(sagas, ms(time.Since(inicio)))
		}
		if resto := pausa - time.Since(inicio); resto > 0 {
			select {
			case <-time.After(resto):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	slices.Sort(commits)
	slices.Sort(entregas)
	slices.Sort(sagas)
	if len(commits) > 0 {
		s.CommitP50Ms = percentil(commits, 0.5)
	}
	s.EntregaP50Ms = percentil(entregas, 0.5)
	s.SagaP50Ms, s.SagaP99Ms = percentil(sagas, 0.5), percentil(sagas, 0.99)
	if s.SagaP50Ms > 0 {
		s.RatioP50 = r.LatenciaMs.P50 / s.SagaP50Ms
	}
	return s, nil
}

// recibir waits until cons has the message id (acking it), failing if its
// send failed or it does not come within 30 s.
func recibir(ctx context.Context, cons pulsar.Consumer, id string, fallo <-chan error) error {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		select {
		case err := <-fallo:
			if err != nil {
				return fmt.Errorf("suelo: envío: %w", err)
			}
			fallo = nil
		case m, ok := <-cons.Chan():
			if !ok {
				return fmt.Errorf("suelo: el consumidor se cerró")
			}
			cons.Ack(m)
			if string(m.Payload()) == id {
				return nil
			}
		case <-rctx.Done():
			return fmt.Errorf("suelo: mensaje %s no recibido: %w", id, rctx.Err())
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func imprimirSuelo(w io.Writer, s *Suelo) {
	ritmo := "back to back"
	if s.PausaMs > 0 {
		ritmo = fmt.Sprintf("one every %.0f ms", s.PausaMs)
	}
	commit := "no store (-almacen)"
	if s.CommitP50Ms > 0 {
		commit = fmt.Sprintf("commit %.2f", s.CommitP50Ms)
	}
	fmt.Fprintf(w, "  floor           %d hops of a durable commit and a broker delivery, %d chains %s: p50 %.1f  p99 %.1f ms (per hop: %s, delivery %.2f ms)\n",
		s.Saltos, s.Cadenas, ritmo, s.SagaP50Ms, s.SagaP99Ms, commit, s.EntregaP50Ms)
	fmt.Fprintf(w, "                  the run's p50 is %.2f× the floor's\n", s.RatioP50)
}
