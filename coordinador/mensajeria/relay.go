// Package mensajeria is the coordinator's Pulsar adapter: the outbox relay,
// the reply consumer, the deadline sweeper, the outcome listener and the
// legacy-event bridge, plus the topology set-up (namespace, policies,
// schemas) at start-up.
package mensajeria

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
)

// Relay publishes outbox rows and deletes them once the broker acknowledged
// them.
//
// De-duplication: each replica publishes to a topic through a producer with a
// stable name (<replica>-<topic>) and the outbox row id as sequence id, so a
// row re-sent after a crash of this replica is dropped by the broker. The
// broker drops any sequence id not above the producer's last one, which would
// silently lose a row this producer skipped earlier (another replica held it,
// or a publish failed and a later row went out). Such rows are published by an
// unnamed producer instead; every consumer is idempotent, so at worst they
// arrive twice and are de-duplicated downstream, never lost.
type Relay struct {
	store    almacen.Store
	client   pulsar.Client
	replica  string
	esquemas func(topico string) string
	logger   *slog.Logger
	lote     int
	espera   time.Duration
	aviso    chan struct{}

	mu          sync.Mutex
	productores map[string]pulsar.Producer
	rescate     map[string]pulsar.Producer

	publicados prometheus.Counter
	rescatados prometheus.Counter
	lag        prometheus.Histogram
	fallos     prometheus.Counter
}

// OpcionesRelay configure NuevoRelay.
type OpcionesRelay struct {
	Store   almacen.Store
	Client  pulsar.Client
	Replica string // stable replica id: producer names derive from it
	// Esquema returns the Avro schema text registered for a topic.
	Esquema  func(topico string) string
	Logger   *slog.Logger
	Registro prometheus.Registerer
	Lote     int           // rows per claim, default 500
	Sondeo   time.Duration // poll interval when idle, default 200ms
}

// NuevoRelay builds a relay; Correr runs it.
func NuevoRelay(o OpcionesRelay) *Relay {
	r := &Relay{
		store: o.Store, client: o.Client, replica: o.Replica, esquemas: o.Esquema, logger: o.Logger,
		lote: o.Lote, espera: o.Sondeo, aviso: make(chan struct{}, 1),
		productores: map[string]pulsar.Producer{}, rescate: map[string]pulsar.Producer{},
		publicados: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sagas_outbox_publicados_total", Help: "Outbox messages acknowledged by the broker.",
		}),
		rescatados: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sagas_outbox_rescatados_total", Help: "Outbox messages published without de-duplication because their id was not above the producer's last sequence id.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sagas_outbox_lag_segundos", Help: "Time from the outbox insert to the broker's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		fallos: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sagas_outbox_fallos_publicacion_total", Help: "Outbox publish attempts that failed (the row stays and is retried).",
		}),
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if r.lote <= 0 {
		r.lote = 500
	}
	if r.espera <= 0 {
		r.espera = 200 * time.Millisecond
	}
	if o.Registro != nil {
		o.Registro.MustRegister(r.publicados, r.rescatados, r.lag, r.fallos)
	}
	return r
}

// Avisar wakes the relay: a transaction just wrote outbox rows.
func (r *Relay) Avisar() {
	select {
	case r.aviso <- struct{}{}:
	default:
	}
}

// Correr drains the outbox until ctx ends. It never returns early on errors:
// a broker or database outage is logged and retried with backoff.
func (r *Relay) Correr(ctx context.Context) {
	pausa := r.espera
	for ctx.Err() == nil {
		n, err := r.store.DrenarOutbox(ctx, r.lote, r.publicar)
		switch {
		case err != nil && ctx.Err() == nil:
			r.logger.Warn("drenar outbox", "err", err)
			pausa = min(max(pausa*2, 100*time.Millisecond), 5*time.Second)
		case n == r.lote:
			continue // more rows are waiting
		default:
			pausa = r.espera
		}
		if err == nil && n > 0 {
			continue // drain until empty before sleeping
		}
		select {
		case <-ctx.Done():
		case <-r.aviso:
		case <-time.After(pausa):
		}
	}
}

func (r *Relay) productor(topico string, rescate bool) (pulsar.Producer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, nombre := r.productores, r.replica+"-"+topicoCorto(topico)
	if rescate {
		m, nombre = r.rescate, ""
	}
	if p, ok := m[topico]; ok {
		return p, nil
	}
	opts := pulsar.ProducerOptions{
		Topic: topico, Name: nombre, SendTimeout: 30 * time.Second,
		BatcherBuilderType: pulsar.KeyBasedBatchBuilder, BatchingMaxPublishDelay: time.Millisecond,
		MaxPendingMessages: 4000,
	}
	if s := r.esquemas(topico); s != "" {
		opts.Schema = pulsar.NewAvroSchema(s, nil)
	}
	p, err := r.client.CreateProducer(opts)
	if err != nil {
		return nil, fmt.Errorf("productor de %s: %w", topico, err)
	}
	m[topico] = p
	return p, nil
}

func topicoCorto(t string) string { return t[strings.LastIndex(t, "/")+1:] }

// publicar sends a claimed batch and returns the ids the broker acknowledged.
func (r *Relay) publicar(ctx context.Context, msgs []almacen.Mensaje) ([]int64, error) {
	type envio struct {
		id  int64
		err error
	}
	resultados := make(chan envio, len(msgs))
	var errs []error
	enviados := 0
	ultimo := map[string]int64{}
	for _, m := range msgs {
		p, err := r.productor(m.Topico, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		last, ok := ultimo[m.Topico]
		if !ok {
			last = p.LastSequenceID()
		}
		seq := m.ID
		var seqp *int64
		if m.ID > last {
			seqp = &seq
			ultimo[m.Topico] = m.ID
		} else {
			if p, err = r.productor(m.Topico, true); err != nil {
				errs = append(errs, err)
				continue
			}
			r.rescatados.Inc()
		}
		creado := m.Creado
		enviados++
		p.SendAsync(ctx, &pulsar.ProducerMessage{
			Payload: m.Carga, Key: m.Clave, Properties: m.Propiedades, SequenceID: seqp,
		}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err == nil && !creado.IsZero() {
				r.lag.Observe(time.Since(creado).Seconds())
			}
			resultados <- envio{seq, err}
		})
	}
	var ok []int64
	for range enviados {
		e := <-resultados
		if e.err != nil {
			errs = append(errs, e.err)
			continue
		}
		ok = append(ok, e.id)
	}
	r.publicados.Add(float64(len(ok)))
	if len(errs) > 0 {
		r.fallos.Add(float64(len(errs)))
		return ok, fmt.Errorf("publicar %d de %d mensajes: %w", len(errs), len(msgs), errors.Join(errs...))
	}
	return ok, nil
}

// Cerrar flushes and closes the producers.
func (r *Relay) Cerrar() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]pulsar.Producer{r.productores, r.rescate} {
		for t, p := range m {
			if err := p.FlushWithCtx(context.Background()); err != nil {
				r.logger.Warn("flush productor", "topico", t, "err", err)
			}
			p.Close()
		}
	}
}
