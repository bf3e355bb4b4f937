// Package bus is the Pulsar plumbing shared by the coordinator and the
// participants: client set-up, keyed producers with a registered Avro schema,
// and a consumer loop that processes messages in parallel across keys (in
// order within a key), acks only after the handler succeeded, and sends
// poison messages to a dead-letter topic instead of retrying them forever.
//
// It holds no domain logic; the message contract is package eventos.
package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Conectar opens a Pulsar client. The client's own logs go to logger at
// warning level and above; its pulsar_client_* metrics go where the options
// say (ConMetricas), by default to a registry of its own that nobody serves.
func Conectar(url string, logger *slog.Logger, opciones ...OpcionConexion) (pulsar.Client, error) {
	h := logger.Handler()
	o := ajustesConexion{ClientOptions: pulsar.ClientOptions{
		URL:               url,
		ConnectionTimeout: 10 * time.Second,
		OperationTimeout:  30 * time.Second,
		Logger:            pulsarlog.NewLoggerWithSlog(slog.New(nivelMinimo{h, slog.LevelWarn})),
		// Not the client's default, prometheus.DefaultRegisterer: no global state.
		MetricsRegisterer: prometheus.NewRegistry(),
	}, quien: Seguridad{}.Quien()}
	for _, opcion := range opciones {
		if err := opcion(&o); err != nil {
			return nil, fmt.Errorf("conectar a pulsar %s: %w", url, err)
		}
	}
	c, err := pulsar.NewClient(o.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("conectar a pulsar %s: %w", url, err)
	}
	return cliente{Client: c, quien: o.quien}, nil
}

// OpcionConexion configures the client Conectar opens.
type OpcionConexion func(*ajustesConexion) error

// ajustesConexion are the client's options and whose credentials they
// carry, which the client's errors name (Causa).
type ajustesConexion struct {
	pulsar.ClientOptions
	quien string
}

// ConMetricas registers the client's pulsar_client_* metrics on reg,
// labelled by topic: the full name, as the broker's pulsar_* metrics and
// this package's metrics label it (NombreTopico).
func ConMetricas(reg prometheus.Registerer) OpcionConexion {
	return func(o *ajustesConexion) error {
		o.MetricsRegisterer = reg
		o.MetricsCardinality = pulsar.MetricsCardinalityTopic
		return nil
	}
}

// NombreTopico is a topic's name as the broker labels it in its metrics, and
// as the topic label of this package's metrics and of the client's: the full
// name persistent://tenant/namespace/topic, with Pulsar's defaults filled in
// (public/default for a bare name) and without a partition suffix.
func NombreTopico(topico string) string {
	completo := topico
	if !strings.Contains(topico, "://") {
		switch strings.Count(topico, "/") {
		case 0:
			completo = "persistent://public/default/" + topico
		case 2:
			completo = "persistent://" + topico
		}
	}
	if i := strings.LastIndex(completo, "-partition-"); i >= 0 {
		if _, err := strconv.Atoi(completo[i+len("-partition-"):]); err == nil {
			completo = completo[:i]
		}
	}
	return completo
}

type nivelMinimo struct {
	slog.Handler
	min slog.Level
}

func (n nivelMinimo) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= n.min && n.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the filter on derived handlers (the client calls With).
func (n nivelMinimo) WithAttrs(as []slog.Attr) slog.Handler {
	return nivelMinimo{n.Handler.WithAttrs(as), n.min}
}

// WithGroup keeps the filter on derived handlers.
func (n nivelMinimo) WithGroup(g string) slog.Handler {
	return nivelMinimo{n.Handler.WithGroup(g), n.min}
}

// DemoraLote is the producers' BatchingMaxPublishDelay. Every batching
// producer of pulsar-client-go wakes on a ticker of that period, busy or
// not: at 1 ms, the seven idle processes of the system spent a fifth of
// this 2-core machine on wake-ups, and at 50 ms the six idle participants
// still took 4.4 % of a core (1.8 % at 500 ms; README, Performance). So the
// timer is only a backstop: Send flushes its batch at once, and code that
// sends with SendAsync calls Flush (or FlushWithCtx) when it has sent what
// it had.
const DemoraLote = 500 * time.Millisecond

// HashingScheme is how every producer of ours routes a keyed message
// (key = saga_id) to a partition of a partitioned topic: Murmur3, the
// scheme clients of every language offer, rather than pulsar-client-go's
// default (Java's String.hashCode), so that producers written in other
// languages can put one saga's messages on the same partition
// (docs/production.md, Partitioned topics). ParticionDe computes it.
const HashingScheme = pulsar.Murmur3_32Hash

// Lotes is how a producer groups messages into batches, each one entry on
// the broker (one journal write, one dispatch, one delivery).
type Lotes int

const (
	// LotesPorClave batches only messages of one key together: a Key_Shared
	// subscription hands a whole batch to the consumer of its first key, so
	// a batch of several keys would take the others' messages away from
	// their consumers. With a key per saga, nearly every message is an
	// entry of its own.
	LotesPorClave Lotes = iota
	// LotesMixtos batches messages of any keys together, for topics read
	// only by Failover subscriptions (respuestas-saga): there one consumer
	// at a time reads a partition, in order, so the key's order holds
	// whatever the batch, and a batch of replies to several sagas is one
	// entry.
	LotesMixtos
)

// NuevoProductor creates a producer for topic with the Avro schema text
// registered (the broker refuses it when the schema is incompatible with the
// topic's), batching as lotes says; see DemoraLote for when batches leave.
// An empty nombre lets the broker pick a name (no de-duplication).
func NuevoProductor(c pulsar.Client, topico, nombre, esquemaAvro string, lotes Lotes) (pulsar.Producer, error) {
	agrupar := pulsar.KeyBasedBatchBuilder
	if lotes == LotesMixtos {
		agrupar = pulsar.DefaultBatchBuilder
	}
	opts := pulsar.ProducerOptions{
		Topic:                   topico,
		Name:                    nombre,
		SendTimeout:             30 * time.Second,
		BatcherBuilderType:      agrupar,
		BatchingMaxPublishDelay: DemoraLote,
		MaxPendingMessages:      2000,
		HashingScheme:           HashingScheme,
		BackOffPolicyFunc:       Reconexion,
	}
	if esquemaAvro != "" {
		opts.Schema = pulsar.NewAvroSchema(esquemaAvro, nil)
	}
	p, err := c.CreateProducer(opts)
	if err != nil {
		if err = Causa(c, "producir", topico, err); errors.Is(err, ErrAutorizacion) {
			return nil, err // it names the role, the operation and the topic
		}
		return nil, fmt.Errorf("productor de %s: %w", topico, err)
	}
	return p, nil
}

// ErrPermanente marks a message that can never be processed (malformed,
// wrong schema, missing saga_id, a value the store's columns cannot hold):
// it is dead-lettered at once, never redelivered. Wrap it
// (fmt.Errorf("...: %w", bus.ErrPermanente)) or mark an error with
// Permanente.
var ErrPermanente = errors.New("mensaje no procesable")

// Permanente marks err as permanent.
func Permanente(err error) error { return fmt.Errorf("%w: %w", ErrPermanente, err) }

// Manejador processes one message. A nil error acks it; an error wrapping
// ErrPermanente dead-letters it at once; any other error is transient: the
// message is delivered again after a growing delay (Reintentos), later
// messages of its key wait behind it, and after the last redelivery it is
// dead-lettered with its history.
type Manejador func(ctx context.Context, msg pulsar.Message) error

// ManejadorLote processes several messages, in order, and returns one error
// per message with Manejador's meaning. It lets a handler commit a batch in
// one database transaction (group commit). A batch never holds two messages
// of one key.
type ManejadorLote func(ctx context.Context, msgs []pulsar.Message) []error

// Metricas of a consumer; construct with NuevasMetricas and share between
// consumers of one process. Every series has a topic label, the full topic
// name (NombreTopico), so it joins with the broker's pulsar_* metrics.
type Metricas struct {
	procesados   *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	reintentos   *prometheus.CounterVec
	enEspera     *prometheus.GaugeVec
	redeliveries *prometheus.CounterVec
	mensaje      *prometheus.HistogramVec
	lote         *prometheus.HistogramVec
}

// NuevasMetricas registers the consumer metrics on reg.
func NuevasMetricas(reg prometheus.Registerer) *Metricas {
	m := &Metricas{
		procesados: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_mensajes_consumidos_total", Help: "Messages consumed, by topic and result (ok, reintento, dead_letter).",
		}, []string{"topic", "resultado"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_dead_letters_total",
			Help: "Messages sent to a dead-letter topic, by source topic and class: permanente (poison, at once) or reintentos_agotados (transient failures past the bound).",
		}, []string{"topic", "clase"}),
		reintentos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_mensajes_reintentados_total",
			Help: "Transient handler failures whose message will be delivered again after a backoff, by topic and class (transitoria, plazo).",
		}, []string{"topic", "clase"}),
		enEspera: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sagas_mensajes_en_espera",
			Help: "Messages held by a consumer, by topic: waiting for their retry or behind an earlier message of their key that is.",
		}, []string{"topic"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_mensajes_reentregados_total", Help: "Messages received with a redelivery count above zero, by topic.",
		}, []string{"topic"}),
		mensaje: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sagas_mensaje_procesamiento_seconds",
			Help: "Per message, by topic: time from the consumer loop receiving it to its ack or dead letter " +
				"(waiting behind its key, its retries, its batch's handler call, the resolution).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"topic"}),
		lote: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagas_lote_procesamiento_seconds",
			Help:    "Per handler call, by topic: time the handler took for one batch of consumed messages (one message for Consumir).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"topic"}),
	}
	reg.MustRegister(m.procesados, m.deadLetters, m.reintentos, m.enEspera, m.redeliveries, m.mensaje, m.lote)
	return m
}

// Consumidor is a running consumer loop.
type Consumidor struct {
	consumer   pulsar.Consumer
	dlq        pulsar.Producer
	topico     string
	etiqueta   string // NombreTopico(topico), the metrics' topic label
	manejar    ManejadorLote
	lote       int
	reintentos Reintentos
	retener    int // messages a worker holds before it stops taking more
	logger     *slog.Logger
	m          *Metricas
	colas      []chan recibido
	wg         sync.WaitGroup
}

// recibido is a message and when the loop received it.
type recibido struct {
	msg    pulsar.Message
	cuando time.Time
}

// OpcionesConsumidor configure Consumir.
type OpcionesConsumidor struct {
	Topico       string
	Suscripcion  string
	Tipo         pulsar.SubscriptionType // default KeyShared
	Trabajadores int                     // parallel keys; default 8
	// Reintentos bounds and spaces the redeliveries of transient failures;
	// the zero value is ReintentosPorDefecto.
	Reintentos Reintentos
	// Lote bounds the messages ConsumirLotes hands to its handler at once;
	// default 32. A worker takes what is already queued for it, never
	// waiting for more: batches grow with the load and add no latency.
	Lote     int
	Logger   *slog.Logger
	Metricas *Metricas
}

// Consumir subscribes and starts the loop; Close stops it. The dead-letter
// topic is eventos.DLQ(topico) = topico + "-DLQ".
func Consumir(ctx context.Context, c pulsar.Client, o OpcionesConsumidor, manejar Manejador) (*Consumidor, error) {
	o.Lote = 1
	return ConsumirLotes(ctx, c, o, func(ctx context.Context, msgs []pulsar.Message) []error {
		return []error{manejar(ctx, msgs[0])}
	})
}

// ConsumirLotes is Consumir with a handler of batches: each worker passes
// the messages already waiting in its queue (up to o.Lote, in order, one
// per key) in one call. Acks, retries and dead letters are per message, as
// with Consumir.
func ConsumirLotes(ctx context.Context, c pulsar.Client, o OpcionesConsumidor, manejar ManejadorLote) (*Consumidor, error) {
	if o.Lote <= 0 {
		o.Lote = 32
	}
	if o.Tipo == 0 {
		o.Tipo = pulsar.KeyShared
	}
	if o.Trabajadores <= 0 {
		o.Trabajadores = 8
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metricas == nil {
		o.Metricas = NuevasMetricas(prometheus.NewRegistry())
	}
	consumer, err := c.Subscribe(pulsar.ConsumerOptions{
		Topic:                       o.Topico,
		SubscriptionName:            o.Suscripcion,
		Type:                        o.Tipo,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		ReceiverQueueSize:           1000,
		BackOffPolicyFunc:           Reconexion,
	})
	if err != nil {
		if err = Causa(c, "consumir", o.Topico, err); errors.Is(err, ErrAutorizacion) {
			return nil, fmt.Errorf("suscripción %s: %w", o.Suscripcion, err)
		}
		return nil, fmt.Errorf("suscribir %s a %s: %w", o.Suscripcion, o.Topico, err)
	}
	dlq, err := NuevoProductor(c, o.Topico+"-DLQ", "", "", LotesPorClave)
	if err != nil {
		consumer.Close()
		return nil, err
	}
	k := &Consumidor{
		consumer: consumer, dlq: dlq, topico: o.Topico, etiqueta: NombreTopico(o.Topico), manejar: manejar, lote: o.Lote,
		reintentos: o.Reintentos.conDefectos(), retener: max(1000/o.Trabajadores, 4*o.Lote),
		logger: o.Logger.With("topico", o.Topico, "suscripcion", o.Suscripcion), m: o.Metricas,
	}
	for range o.Trabajadores {
		q := make(chan recibido, 64)
		k.colas = append(k.colas, q)
		k.wg.Add(1)
		go k.trabajar(ctx, q)
	}
	k.wg.Add(1)
	go k.recibir(ctx)
	return k, nil
}

// recibir dispatches messages to workers by key, so one key (one saga) is
// handled in order while different sagas run in parallel.
func (k *Consumidor) recibir(ctx context.Context) {
	defer k.wg.Done()
	defer func() {
		for _, q := range k.colas {
			close(q)
		}
	}()
	for {
		msg, err := k.consumer.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			k.logger.Warn("recibir mensaje", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(msg.Key()))
		select {
		case k.colas[int(h.Sum32()%uint32(len(k.colas)))] <- recibido{msg, time.Now()}:
		case <-ctx.Done():
			return
		}
	}
}

// pendiente is a message a worker holds and the history of its failures.
type pendiente struct {
	recibido
	fallos      int // failed handler calls in this process
	primerError string
	ultimoError string
	primerFallo time.Time
	ultimoFallo time.Time
	proximo     time.Time // when it is due again; zero while due now
	clase       Clase     // set once it is to be dead-lettered
	motivoDLQ   error
	fallosDLQ   int // failed attempts to publish the dead letter
}

// trabajador is one worker's state: per key, the messages it holds in
// order. The head of a key's queue is due (in listos) or waits for its
// retry; the others wait behind it, so a key's messages are handled in
// order even across retries.
type trabajador struct {
	k       *Consumidor
	claves  map[string][]*pendiente
	listos  []*pendiente // heads due now, in arrival order
	tenidos int          // messages in claves
}

func (k *Consumidor) trabajar(ctx context.Context, q <-chan recibido) {
	defer k.wg.Done()
	t := &trabajador{k: k, claves: map[string][]*pendiente{}}
	defer func() {
		// What is left stays unacked: the broker redelivers it when the
		// subscription closes.
		k.m.enEspera.WithLabelValues(k.etiqueta).Sub(float64(t.tenidos))
	}()
	reloj := time.NewTimer(time.Hour)
	defer reloj.Stop()
	for {
		var vence <-chan time.Time
		if len(t.listos) == 0 {
			if proximo, ok := t.proximo(); ok {
				reloj.Reset(time.Until(proximo))
				vence = reloj.C
			}
		}
		entrada := q
		if t.tenidos >= k.retener {
			entrada = nil // back-pressure: the receiver queue and the broker hold the rest
		}
		if len(t.listos) == 0 {
			select {
			case r, ok := <-entrada:
				if !ok {
					return
				}
				t.tomar(r)
			case <-vence:
			case <-ctx.Done():
				return // what it holds stays unacked (see above)
			}
		}
		// Take what is already queued, never waiting for more.
	llenar:
		for len(t.listos) < k.lote && t.tenidos < k.retener {
			select {
			case r, ok := <-q:
				if !ok {
					return
				}
				t.tomar(r)
			default:
				break llenar
			}
		}
		t.vencidos(time.Now())
		if len(t.listos) > 0 {
			n := min(len(t.listos), k.lote)
			lote := t.listos[:n:n]
			t.listos = t.listos[n:]
			t.procesar(ctx, lote)
		}
	}
}

// tomar takes a received message: due now if its key holds nothing, else
// queued behind the key's messages.
func (t *trabajador) tomar(r recibido) {
	p := &pendiente{recibido: r}
	clave := r.msg.Key()
	cola, ocupada := t.claves[clave]
	t.claves[clave] = append(cola, p)
	t.tenidos++
	t.k.m.enEspera.WithLabelValues(t.k.etiqueta).Inc()
	if !ocupada {
		t.listos = append(t.listos, p)
	}
}

// proximo is the earliest time a waiting head is due.
func (t *trabajador) proximo() (time.Time, bool) {
	var antes time.Time
	for _, cola := range t.claves {
		if p := cola[0]; !p.proximo.IsZero() && (antes.IsZero() || p.proximo.Before(antes)) {
			antes = p.proximo
		}
	}
	return antes, !antes.IsZero()
}

// vencidos makes the heads whose wait ended due.
func (t *trabajador) vencidos(ahora time.Time) {
	for _, cola := range t.claves {
		if p := cola[0]; !p.proximo.IsZero() && !p.proximo.After(ahora) {
			p.proximo = time.Time{}
			t.listos = append(t.listos, p)
		}
	}
}

// terminar drops p, the head of its key, once acked or dead-lettered: the
// next message of the key becomes due.
func (t *trabajador) terminar(p *pendiente) {
	clave := p.msg.Key()
	cola := t.claves[clave][1:]
	t.tenidos--
	t.k.m.enEspera.WithLabelValues(t.k.etiqueta).Dec()
	t.k.m.mensaje.WithLabelValues(t.k.etiqueta).Observe(time.Since(p.cuando).Seconds())
	if len(cola) == 0 {
		delete(t.claves, clave)
		return
	}
	t.claves[clave] = cola
	t.listos = append(t.listos, cola[0])
}

func (t *trabajador) procesar(ctx context.Context, lote []*pendiente) {
	k := t.k
	var aManejar []*pendiente
	for _, p := range lote {
		if p.clase != "" {
			t.aDeadLetter(ctx, p) // its handler is done with it; only the dead letter failed
			continue
		}
		aManejar = append(aManejar, p)
	}
	if len(aManejar) == 0 {
		return
	}
	msgs := make([]pulsar.Message, len(aManejar))
	for i, p := range aManejar {
		msgs[i] = p.msg
		if p.msg.RedeliveryCount() > 0 && p.fallos == 0 {
			k.m.redeliveries.WithLabelValues(k.etiqueta).Inc()
		}
	}
	inicio := time.Now()
	errs := k.manejar(ctx, msgs)
	k.m.lote.WithLabelValues(k.etiqueta).Observe(time.Since(inicio).Seconds())
	for i, p := range aManejar {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = fmt.Errorf("el manejador devolvió %d resultados para %d mensajes", len(errs), len(aManejar))
		}
		t.resolver(ctx, p, err)
	}
}

// resolver acks, dead-letters or schedules the retry of p after its
// handler returned err.
func (t *trabajador) resolver(ctx context.Context, p *pendiente, err error) {
	k := t.k
	if err == nil {
		k.ack(p.msg)
		k.m.procesados.WithLabelValues(k.etiqueta, "ok").Inc()
		t.terminar(p)
		return
	}
	if ctx.Err() != nil && !errors.Is(err, ErrPermanente) {
		// Stopping: not a failure of the message. It stays unacked and the
		// broker redelivers it once the subscription closes.
		return
	}
	ahora := time.Now()
	p.fallos++
	if p.fallos == 1 {
		p.primerError, p.primerFallo = err.Error(), ahora
	}
	p.ultimoError, p.ultimoFallo = err.Error(), ahora
	clase := Clasificar(err)
	entregas := int(p.msg.RedeliveryCount()) + p.fallos
	log := k.logger.With("err", err, "clave", p.msg.Key(), "id", p.msg.ID().String(), "clase", string(clase), "entregas", entregas)
	switch {
	case clase == ClasePermanente:
		log.Warn("mensaje no procesable: a dead letter")
		p.clase, p.motivoDLQ = ClasePermanente, err
		t.aDeadLetter(ctx, p)
	case k.reintentos.Agotados(entregas):
		log.Error("mensaje sin reintentos: a dead letter", "maximo_reentregas", k.reintentos.Maximo)
		p.clase, p.motivoDLQ = ClaseAgotada, err
		t.aDeadLetter(ctx, p)
	default:
		espera := k.reintentos.Espera(entregas)
		log.Warn("mensaje no procesado; se reintentará", "espera", espera.String())
		p.proximo = ahora.Add(espera)
		k.m.reintentos.WithLabelValues(k.etiqueta, string(clase)).Inc()
		k.m.procesados.WithLabelValues(k.etiqueta, "reintento").Inc()
	}
}

// aDeadLetter publishes p to the dead-letter topic and acks it; when the
// publication fails it tries again later, the key still waiting behind p.
func (t *trabajador) aDeadLetter(ctx context.Context, p *pendiente) {
	k := t.k
	if err := k.publicarDeadLetter(ctx, p); err != nil {
		p.fallosDLQ++
		espera := k.reintentos.Espera(p.fallosDLQ)
		k.logger.Error("publicar dead letter; se reintentará", "err", err, "clave", p.msg.Key(), "espera", espera.String())
		p.proximo = time.Now().Add(espera)
		return
	}
	k.ack(p.msg)
	k.m.deadLetters.WithLabelValues(k.etiqueta, string(p.clase)).Inc()
	k.m.procesados.WithLabelValues(k.etiqueta, "dead_letter").Inc()
	t.terminar(p)
}

func (k *Consumidor) ack(msg pulsar.Message) {
	if err := k.consumer.Ack(msg); err != nil {
		// The work is durable and idempotent: a redelivery is harmless.
		k.logger.Warn("ack", "err", err)
	}
}

// Properties of a dead letter, beside the message's own.
const (
	// PropMotivo is the last error, the reason of the dead letter.
	PropMotivo = "dlq_motivo"
	// PropClase is permanente or reintentos_agotados (Clase).
	PropClase = "dlq_clase"
	// PropTopicoOrigen and PropIDOrigen say where the message came from.
	PropTopicoOrigen = "dlq_topico_origen"
	PropIDOrigen     = "dlq_id_origen"
	// PropReentregas counts the deliveries after the first: the broker's
	// redelivery count plus the consumer's own retries.
	PropReentregas = "dlq_reentregas"
	// PropPrimerError and PropPrimerFallo are the first failure's error and
	// time; PropUltimoFallo the last one's (RFC 3339, UTC).
	PropPrimerError = "dlq_primer_error"
	PropPrimerFallo = "dlq_primer_fallo"
	PropUltimoFallo = "dlq_ultimo_fallo"
	// PropRecibido is when this consumer first received the message.
	PropRecibido = "dlq_recibido"
)

// publicarDeadLetter copies the message, untouched, to the dead-letter
// topic with the reason, origin and history as properties.
func (k *Consumidor) publicarDeadLetter(ctx context.Context, p *pendiente) error {
	msg := p.msg
	props := map[string]string{}
	for key, v := range msg.Properties() {
		props[key] = v
	}
	marca := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	props[PropMotivo] = p.motivoDLQ.Error()
	props[PropClase] = string(p.clase)
	props[PropTopicoOrigen] = k.topico
	props[PropIDOrigen] = msg.ID().String()
	props[PropReentregas] = strconv.Itoa(int(msg.RedeliveryCount()) + p.fallos - 1)
	props[PropPrimerError] = p.primerError
	props[PropPrimerFallo] = marca(p.primerFallo)
	props[PropUltimoFallo] = marca(p.ultimoFallo)
	props[PropRecibido] = marca(p.cuando)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := k.dlq.Send(sctx, &pulsar.ProducerMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: props})
	return err
}

// Close waits for the loop to stop receiving and for the workers to finish
// the messages they hold (the context passed to Consumir must be cancelled
// first or together), then closes the subscription. It always returns nil;
// on the nil Consumidor a failed Consumir returns it does nothing.
func (k *Consumidor) Close() error {
	if k == nil {
		return nil
	}
	k.wg.Wait()
	k.dlq.Close()
	k.consumer.Close()
	return nil
}

// ErrCierreVencido is returned by Cerrar when the client did not close in time.
var ErrCierreVencido = errors.New("el cliente de pulsar no se cerró a tiempo")

// Cerrar closes c, giving up when ctx ends. With the broker unreachable the
// Go client's Close can wait for it without bound (a consumer's close
// request is retried while it reconnects); a process shutting down must not,
// so it stops waiting and leaves the rest to the process's exit.
func Cerrar(ctx context.Context, c pulsar.Client) error {
	hecho := make(chan struct{})
	go func() {
		c.Close()
		close(hecho)
	}()
	select {
	case <-hecho:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrCierreVencido, ctx.Err())
	}
}
