// Package mensajeria is the coordinator's Pulsar adapter: the outbox relay,
// the reply consumer and the outcome listener, plus the topology set-up
// (namespace, policies, schemas) at start-up. The legacy bridge is package
// puente.
package mensajeria

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
)

// Relay publishes outbox rows and deletes them once the broker acknowledged
// them.
//
// Two paths lead a row to the broker. The hot one: the store hands the relay
// the rows of each transaction once it has committed (Confirmados, wired to
// almacen.DB.AlConfirmar), and the relay publishes them from memory at once,
// then deletes them by id, gathered (DemoraBorrado): no wake-up of a poller, no claiming query, no
// transaction held while the broker answers. The row in the outbox is then
// only the record recovery reads: the drain (DrenarOutboxHasta) claims the
// rows that outlived a grace period (Gracia): those of a replica that died or
// restarted, those the hot path failed to send (a broker outage, a refusal),
// and those whose ids the store could not know. The grace period keeps one
// replica's drain off another's fresh rows, which it would publish a second
// time (harmless, as below, but wasted). Both paths run on Correr's goroutine,
// one after the other.
//
// De-duplication: each replica publishes to a topic through an unbatched
// producer with a stable name (<replica>-<topic>) and the outbox row id as
// sequence id, so the broker recognises a row sent again (after a crash, or
// a reconnect of the client). The broker answers such a re-send as a duplicate, but it cannot
// tell a true re-send from an id it merely remembers as "not above the last
// one": a row another replica skipped, or ids a fresh database hands out
// again. Dropping those would lose commands silently, so every row the broker
// calls a duplicate, and every row whose id is not above what this process's
// producer already sent, is published again through an unnamed producer. At
// worst a consumer sees a message twice, which every consumer de-duplicates
// (inbox); a command is never lost.
//
// On a partitioned topic the client opens one producer per partition, each
// under the same name, and the broker keeps the last sequence id per
// partition and name. The ids the relay sends to a topic only grow, so the
// ids each partition sees grow too, and a row's partition depends only on
// its key (bus.HashingScheme): a re-send goes to the partition that holds
// the first copy and is recognised there.
//
// Refusals: a row the broker refuses for a reason that sending again cannot
// cure by itself (bus.RechazoDefinitivo: incompatible schema, missing topic,
// no permission) counts an attempt and waits Reintentos.Espera before it is
// claimed again; after MaxIntentos attempts it is parked (kept, never
// claimed again, counted in sagas_outbox_aparcados_total). The other rows,
// on that topic or any other, go on meanwhile. A timeout or a lost
// connection is not a refusal: the row waits for the broker without limit.
type Relay struct {
	store    Outbox
	client   pulsar.Client
	replica  string
	esquemas func(topico string) string
	logger   *slog.Logger
	lote     int
	espera   time.Duration
	gracia   time.Duration
	ahora    func() time.Time
	aviso    chan struct{}
	// listos signals that cola holds committed rows to publish.
	listos chan struct{}
	muCola sync.Mutex
	cola   []almacen.Mensaje
	// porBorrar are rows the broker acknowledged that are still in the
	// outbox; borrado runs while it is not empty and fires DemoraBorrado
	// after its first row, and one DELETE (one commit) removes them all.
	// Correr's goroutine only.
	porBorrar []int64
	borrado   *time.Timer
	// drenados are the rows younger than half the grace period that a
	// drain published (the first one, an Avisar): a row committed just
	// before a drain claims it is handed to Confirmados too, and its memory
	// copy must not go out a second time. An entry is dropped when its copy
	// comes, or once frescas would drop the copy anyway. Correr's goroutine
	// only.
	drenados map[int64]time.Time

	maxIntentos int
	reintentos  bus.Reintentos
	// rechazos are the refusals of the publicar call in progress (the
	// drain runs on Correr's goroutine only).
	rechazos []almacen.Rechazo

	mu          sync.Mutex
	productores map[string]pulsar.Producer
	rescate     map[string]pulsar.Producer
	// enviado is the highest sequence id each named producer has sent.
	enviado map[string]int64

	publicados prometheus.Counter
	rescatados prometheus.Counter
	lag        prometheus.Histogram
	fallos     prometheus.Counter
	aparcados  *prometheus.CounterVec

	trazador *traza.Trazador
}

// Outbox is what the relay needs from the store: claiming rows and deleting
// the ones the broker acknowledged. *almacen.DB is one (see
// almacen.Store.DrenarOutbox for the contract).
type Outbox interface {
	DrenarOutboxHasta(ctx context.Context, hasta time.Time, limite int, publicar func(context.Context, []almacen.Mensaje) ([]int64, error)) (int, error)
	BorrarPublicados(ctx context.Context, ids []int64) (int, error)
	RegistrarRechazos(ctx context.Context, rs []almacen.Rechazo, maxIntentos int) ([]almacen.Aparcado, error)
}

// OpcionesRelay configure NuevoRelay.
type OpcionesRelay struct {
	Store   Outbox
	Client  pulsar.Client
	Replica string // stable replica id: producer names derive from it
	// Esquema returns the Avro schema text registered for a topic.
	Esquema  func(topico string) string
	Logger   *slog.Logger
	Registro prometheus.Registerer
	Lote     int           // rows per claim, default 500
	Sondeo   time.Duration // poll interval when idle, default 200ms
	// Gracia is how old a row must be before the poll claims it, default
	// GraciaPorDefecto: younger rows are the hot path's (Confirmados) of
	// whichever replica wrote them. Avisar drains every row at once.
	Gracia time.Duration
	// Ahora is the clock the rows' creation times were written with (the
	// database's, almacen.Reloj.Ahora), against which the grace period is
	// measured; nil: time.Now. With another clock, a replica whose clock is
	// behind would take the others' fresh rows for old ones, and one whose
	// clock is ahead would leave a dead replica's rows alone for longer.
	Ahora func() time.Time
	// MaxIntentos is how many times the broker may refuse a row before it
	// is parked (SAGAS_OUTBOX_MAX_ATTEMPTS); default 10.
	MaxIntentos int
	// Reintentos spaces the attempts of a refused row (its Maximo is not
	// used); zero: bus.ReintentosPorDefecto.
	Reintentos bus.Reintentos
	// Topicos are the topics the relay publishes to, known in advance: their
	// sagas_outbox_aparcados_total series start at 0, so an alert on its
	// increase sees the first parked row.
	Topicos []string
	// Trazador makes a span per published row (nil: none; the row's
	// traceparent is published as it is).
	Trazador *traza.Trazador
}

// NuevoRelay builds a relay; Correr runs it.
func NuevoRelay(o OpcionesRelay) *Relay {
	r := &Relay{
		store: o.Store, client: o.Client, replica: o.Replica, esquemas: o.Esquema, logger: o.Logger, trazador: o.Trazador,
		lote: o.Lote, espera: o.Sondeo, gracia: o.Gracia, aviso: make(chan struct{}, 1), listos: make(chan struct{}, 1), maxIntentos: o.MaxIntentos, reintentos: o.Reintentos,
		productores: map[string]pulsar.Producer{}, rescate: map[string]pulsar.Producer{}, enviado: map[string]int64{},
		drenados: map[int64]time.Time{},
		publicados: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sagas_outbox_publicados_total", Help: "Outbox messages acknowledged by the broker.",
		}),
		rescatados: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sagas_outbox_rescatados_total", Help: "Outbox messages published again without a sequence id: the broker called them duplicates, or their id was not above what the named producer had sent.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sagas_outbox_lag_seconds", Help: "Time from the outbox insert to the broker's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		fallos: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sagas_outbox_fallos_publicacion_total", Help: "Outbox publish attempts that failed (the row stays and is retried).",
		}),
		aparcados: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_outbox_aparcados_total",
			Help: "Outbox rows parked because the broker refused them SAGAS_OUTBOX_MAX_ATTEMPTS times (schema, topic, permission), by topic; they stay in the outbox for an operator.",
		}, []string{"topic"}),
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
	if r.gracia <= 0 {
		r.gracia = GraciaPorDefecto
	}
	r.ahora = o.Ahora
	if r.ahora == nil {
		r.ahora = time.Now
	}
	r.borrado = time.NewTimer(time.Hour)
	r.borrado.Stop()
	if r.maxIntentos <= 0 {
		r.maxIntentos = MaxIntentosPorDefecto
	}
	for _, t := range o.Topicos {
		r.aparcados.WithLabelValues(bus.NombreTopico(t))
	}
	if o.Registro != nil {
		o.Registro.MustRegister(r.publicados, r.rescatados, r.lag, r.fallos, r.aparcados)
	}
	return r
}

// MaxIntentosPorDefecto is OpcionesRelay.MaxIntentos's default.
const MaxIntentosPorDefecto = 10

// MaxCola bounds the committed rows waiting in memory to be published; the
// rest wait in the outbox for the poll.
const MaxCola = 10000

// DemoraBorrado is how long the relay gathers acknowledged rows before it
// deletes them in one statement. Deleting a row is bookkeeping, not
// delivery: the broker already has it, and a row whose DELETE a crash lost
// is sent again by the next drain (the broker calls it a duplicate, the
// rescue producer sends it anyway, as for any row the broker may wrongly
// call one) and dropped by its consumer's inbox, as any at-least-once copy
// is. Gathering them turns one commit (an fsync on a durable database) per
// transition into one per DemoraBorrado under load, at the price of up to
// DemoraBorrado's worth of copies after a crash; it must stay far below the
// grace period, or another replica's poll would publish them again.
const DemoraBorrado = 50 * time.Millisecond

// GraciaPorDefecto is OpcionesRelay.Gracia's default: far above the
// milliseconds the hot path takes, so the poll of a replica meets another's
// rows only when that one could not send them.
const GraciaPorDefecto = 2 * time.Second

// Avisar wakes the relay to drain every row in the outbox now, the young
// ones included: rows written without Confirmados.
func (r *Relay) Avisar() {
	select {
	case r.aviso <- struct{}{}:
	default:
	}
}

// Confirmados takes the outbox rows of a transaction that has just committed
// (almacen.DB.AlConfirmar) and has Correr publish them from memory. Rows
// without an id (the store could not know it) are left to a drain, which
// this wakes. Rows beyond MaxCola waiting (the broker slow or away) are left
// to the poll too: they are in the outbox, and memory stays bounded however
// long the outage. It never blocks.
func (r *Relay) Confirmados(msgs []almacen.Mensaje) {
	sinID := false
	r.muCola.Lock()
	for _, m := range msgs {
		if m.ID <= 0 {
			sinID = true
			continue
		}
		if len(r.cola) >= MaxCola {
			continue
		}
		r.cola = append(r.cola, m)
	}
	r.muCola.Unlock()
	select {
	case r.listos <- struct{}{}:
	default:
	}
	if sinID {
		r.Avisar()
	}
}

// Correr publishes the rows handed to Confirmados as they come and drains
// the outbox on every Avisar and every poll, until ctx ends; then it flushes
// and closes its producers. It never returns early on errors: a broker or
// database outage is logged and retried with backoff.
func (r *Relay) Correr(ctx context.Context) error {
	defer r.cerrarProductores()
	// Once the loop ends, before the producers close: the rows already
	// acknowledged leave the outbox.
	defer r.borrarPublicados(ctx)
	pausa := r.espera
	// The first drain at once: rows a previous run left, of any age.
	sondeo := time.NewTimer(0)
	defer sondeo.Stop()
	primero := true
	for ctx.Err() == nil {
		var hasta time.Time
		select {
		case <-ctx.Done():
			continue
		case <-r.listos:
			r.publicarCola(ctx)
			continue
		case <-r.borrado.C:
			r.borrarPublicados(ctx)
			continue
		case <-r.aviso:
			// Zero: every row.
		case <-sondeo.C:
			if !primero {
				hasta = r.ahora().Add(-r.gracia)
			}
		}
		primero = false
		// Queued rows first, and acknowledged ones out of the outbox: the
		// drain would otherwise claim and publish them too.
		r.publicarCola(ctx)
		r.borrarPublicados(ctx)
		r.rechazos = r.rechazos[:0]
		n, err := r.store.DrenarOutboxHasta(ctx, hasta, r.lote, r.publicarDrenados)
		r.registrarRechazos(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.logger.Warn("drenar outbox", "err", err)
			pausa = min(max(pausa*2, 100*time.Millisecond), 5*time.Second)
		case n == r.lote:
			pausa = 0 // more rows are waiting
		default:
			pausa = r.espera
		}
		sondeo.Reset(pausa)
	}
	return nil
}

// frescas keeps the rows younger than half the grace period and leaves the
// others in the outbox for the poll. Once older than the grace period a row
// may be claimed by any replica's poll; published from memory as well, it
// would reach its consumer twice. With two replicas under load (CI, 1,000
// sagas at once) the memory path fell that far behind and tens of commands
// were delivered twice. It drops the memory copies of rows a drain already
// published (drenados) as well.
func (r *Relay) frescas(msgs []almacen.Mensaje) []almacen.Mensaje {
	limite := r.ahora().Add(-r.gracia / 2)
	out := msgs[:0]
	for _, m := range msgs {
		if _, ok := r.drenados[m.ID]; ok {
			delete(r.drenados, m.ID) // a drain published it
			continue
		}
		if m.Creado.IsZero() || !m.Creado.Before(limite) {
			out = append(out, m)
		}
	}
	return out
}

// publicarDrenados publishes a drain's rows and remembers the fresh ones it
// published in drenados.
func (r *Relay) publicarDrenados(ctx context.Context, msgs []almacen.Mensaje) ([]int64, error) {
	ids, err := r.publicar(ctx, msgs)
	limite := r.ahora().Add(-r.gracia / 2)
	for id, creado := range r.drenados {
		if creado.Before(limite) {
			delete(r.drenados, id)
		}
	}
	if len(ids) == 0 {
		return ids, err
	}
	publicado := make(map[int64]bool, len(ids))
	for _, id := range ids {
		publicado[id] = true
	}
	for _, m := range msgs {
		if publicado[m.ID] && !m.Creado.Before(limite) {
			r.drenados[m.ID] = m.Creado
		}
	}
	return ids, err
}

// publicarCola publishes the rows Confirmados queued and has those the
// broker acknowledged deleted (borrarPublicados). A row it could not send
// stays in the outbox for the drain: a refusal counts an attempt there as in the drain's path
// (registrarRechazos); any other failure leaves it to the poll once it is
// older than the grace period.
func (r *Relay) publicarCola(ctx context.Context) {
	for ctx.Err() == nil {
		r.muCola.Lock()
		msgs := r.cola
		r.cola = nil
		r.muCola.Unlock()
		if len(msgs) == 0 {
			return
		}
		if msgs = r.frescas(msgs); len(msgs) == 0 {
			continue
		}
		// Concurrent transactions commit in any order; in id order, fewer
		// rows fall below what the named producer already sent.
		slices.SortFunc(msgs, func(a, b almacen.Mensaje) int { return cmp.Compare(a.ID, b.ID) })
		r.rechazos = r.rechazos[:0]
		ids, err := r.publicar(ctx, msgs)
		if err != nil && ctx.Err() == nil {
			r.logger.Warn("publicar mensajes confirmados; quedan en el outbox", "err", err, "mensajes", len(msgs)-len(ids))
		}
		if len(ids) > 0 {
			primeros := len(r.porBorrar) == 0
			r.porBorrar = append(r.porBorrar, ids...)
			if len(r.porBorrar) >= r.lote {
				r.borrarPublicados(ctx)
			} else if primeros {
				r.borrado.Reset(DemoraBorrado)
			}
		}
		r.registrarRechazos(ctx)
	}
}

// borrarPublicados deletes the acknowledged rows gathered in porBorrar, even
// while stopping: the broker has them.
func (r *Relay) borrarPublicados(ctx context.Context) {
	r.borrado.Stop()
	if len(r.porBorrar) == 0 {
		return
	}
	ids := r.porBorrar
	r.porBorrar = nil
	if _, err := r.store.BorrarPublicados(context.WithoutCancel(ctx), ids); err != nil {
		// They stay and are published again by the drain; the consumers'
		// inboxes drop the copies.
		r.logger.Warn("borrar mensajes publicados", "err", err, "mensajes", len(ids))
	}
}

// registrarRechazos records the refusals of the last drain in the outbox and
// reports the rows it parked.
func (r *Relay) registrarRechazos(ctx context.Context) {
	if len(r.rechazos) == 0 {
		return
	}
	aparcados, err := r.store.RegistrarRechazos(context.WithoutCancel(ctx), r.rechazos, r.maxIntentos)
	if err != nil {
		// The rows stay as they were and are tried again: nothing is lost.
		r.logger.Warn("registrar mensajes rechazados por el broker", "err", err, "mensajes", len(r.rechazos))
		return
	}
	for _, a := range aparcados {
		r.aparcados.WithLabelValues(bus.NombreTopico(a.Topico)).Inc()
		r.logger.Error("mensaje aparcado: el broker lo rechazó en cada intento", "saga_id", a.Clave, "topico", a.Topico,
			"tipo", a.Tipo, "id", a.ID, "intentos", a.Intentos, "err", a.UltimoError,
			"trace_id", traza.TraceID(a.Propiedades[eventos.PropTraceparent]))
	}
}

// rechazar records that the broker refused m for good (bus.RechazoDefinitivo);
// it is tried again after a wait that grows with its attempts.
func (r *Relay) rechazar(m *almacen.Mensaje, err error) {
	r.rechazos = append(r.rechazos, almacen.Rechazo{ID: m.ID, Error: err.Error(), Espera: r.reintentos.Espera(m.Intentos + 1)})
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
		BatcherBuilderType: pulsar.KeyBasedBatchBuilder, BatchingMaxPublishDelay: bus.DemoraLote,
		MaxPendingMessages: 4000, HashingScheme: bus.HashingScheme, BackOffPolicyFunc: bus.Reconexion,
		// A batch carries one sequence id to the broker, its first
		// message's (pulsar-client-go sends no highest_sequence_id), so the
		// broker would recognise only the first row of each batch when it
		// comes again. Unbatched, each row is its own entry with its own id.
		// Key-based batching only ever joined rows of one saga claimed
		// together, which is rare: 5,000 rows in claims of 250 leave as
		// fast unbatched (157-169 ms against 165-186 ms batched, standalone).
		DisableBatching: !rescate,
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

// envio is one message in flight and its outcome.
type envio struct {
	msg     *almacen.Mensaje
	err     error
	rescate bool // published again through the unnamed producer
}

// publicar sends a claimed batch and returns the ids the broker acknowledged.
func (r *Relay) publicar(ctx context.Context, msgs []almacen.Mensaje) ([]int64, error) {
	var errs []error
	var ok []int64
	rechazosAntes := len(r.rechazos)
	// A topic whose producer the broker refused is not asked again for
	// every row of the batch.
	sinProductor := map[string]error{}
	pendientes := make([]*almacen.Mensaje, 0, len(msgs))
	for i := range msgs {
		pendientes = append(pendientes, &msgs[i])
	}
	// First round: named producers (sequence id = row id) where the id is
	// above what was sent; the unnamed producer otherwise. Second round: the
	// rows the broker called duplicates, through the unnamed producer.
	for ronda := 0; ronda < 2 && len(pendientes) > 0; ronda++ {
		resultados := make(chan envio, len(pendientes))
		enviados := 0
		usados := map[pulsar.Producer]bool{}
		for _, m := range pendientes {
			rescate := ronda == 1 || !r.reservar(m.Topico, m.ID)
			err, refusado := sinProductor[m.Topico]
			var p pulsar.Producer
			if !refusado {
				p, err = r.productor(m.Topico, rescate)
			}
			if err != nil {
				sinProductor[m.Topico] = err
				if bus.RechazoDefinitivo(err) {
					r.rechazar(m, err)
					continue
				}
				errs = append(errs, err)
				continue
			}
			pm := &pulsar.ProducerMessage{Payload: m.Carga, Key: m.Clave, Properties: m.Propiedades}
			trazado := r.trazar(m, pm)
			if !rescate {
				seq := m.ID
				pm.SequenceID = &seq
			} else {
				r.rescatados.Inc()
			}
			enviados++
			usados[p] = true
			p.SendAsync(ctx, pm, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				// The broker acknowledges a duplicate with no position (-1:-1).
				dup := err == nil && !rescate && id != nil && id.LedgerID() < 0 && id.EntryID() < 0
				if dup {
					err = errDuplicado
				}
				trazado(err)
				resultados <- envio{msg: m, err: err, rescate: rescate}
			})
		}
		// Send the batches now rather than on the producers' timer (see
		// bus.DemoraLote); each Flush returns once its producer's messages
		// were answered, as the callbacks below are.
		var vaciados sync.WaitGroup
		for p := range usados {
			vaciados.Go(func() { p.FlushWithCtx(ctx) })
		}
		pendientes = pendientes[:0]
		for range enviados {
			e := <-resultados
			switch {
			case e.err == nil:
				ok = append(ok, e.msg.ID)
				if !e.msg.Creado.IsZero() {
					r.lag.Observe(time.Since(e.msg.Creado).Seconds())
				}
			case errors.Is(e.err, errDuplicado):
				pendientes = append(pendientes, e.msg)
			case bus.RechazoDefinitivo(e.err):
				r.rechazar(e.msg, fmt.Errorf("publicar en %s: %w", e.msg.Topico, e.err))
			default:
				errs = append(errs, e.err)
			}
		}
		vaciados.Wait()
	}
	r.publicados.Add(float64(len(ok)))
	r.fallos.Add(float64(len(r.rechazos) - rechazosAntes))
	if len(errs) > 0 {
		r.fallos.Add(float64(len(errs)))
		return ok, fmt.Errorf("publicar %d de %d mensajes: %w", len(errs), len(msgs), errors.Join(errs...))
	}
	return ok, nil
}

var errDuplicado = errors.New("el broker lo tomó por duplicado")

// trazar starts the span of row m's trip (from its outbox insert to the
// broker's answer) as a child of the row's traceparent and puts the span's
// context on pm; the function it returns ends the span with the broker's
// answer. Without spans, or for a row without traceparent, it does nothing.
func (r *Relay) trazar(m *almacen.Mensaje, pm *pulsar.ProducerMessage) func(error) {
	tp := m.Propiedades[eventos.PropTraceparent]
	if !r.trazador.Activo() || tp == "" {
		return func(error) {}
	}
	opts := []traza.Opcion{traza.Productor, traza.Atributos(traza.Saga(m.Clave, m.Propiedades[eventos.PropPaso])...),
		traza.Atributos(attribute.String("messaging.destination.name", m.Topico), attribute.Int64("outbox.id", m.ID))}
	if !m.Creado.IsZero() {
		opts = append(opts, traza.Desde(m.Creado))
	}
	ctx, span := r.trazador.Iniciar(traza.Contexto(context.Background(), tp), "enviar "+eventos.NombreDeTipo(m.Tipo), opts...)
	props := maps.Clone(m.Propiedades)
	props[eventos.PropTraceparent] = traza.Traceparent(ctx)
	pm.Properties = props
	return func(err error) {
		traza.Fallo(span, err)
		span.End()
	}
}

// reservar records that the named producer of topico sends id, if id is above
// everything it sent; otherwise the row must go through the unnamed producer.
func (r *Relay) reservar(topico string, id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id <= r.enviado[topico] {
		return false
	}
	r.enviado[topico] = id
	return true
}

// cerrarProductores flushes and closes the producers.
func (r *Relay) cerrarProductores() {
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
