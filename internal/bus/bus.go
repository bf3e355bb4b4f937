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

// NuevoProductor creates a producer for topic with the Avro schema text
// registered (the broker refuses it when the schema is incompatible with the
// topic's). Batching is key-based, which Key_Shared consumers require; see
// DemoraLote for when batches leave. An empty nombre lets the broker pick a
// name (no de-duplication).
func NuevoProductor(c pulsar.Client, topico, nombre, esquemaAvro string) (pulsar.Producer, error) {
	opts := pulsar.ProducerOptions{
		Topic:                   topico,
		Name:                    nombre,
		SendTimeout:             30 * time.Second,
		BatcherBuilderType:      pulsar.KeyBasedBatchBuilder,
		BatchingMaxPublishDelay: DemoraLote,
		MaxPendingMessages:      2000,
		HashingScheme:           HashingScheme,
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
// wrong schema, missing saga_id): it is dead-lettered, never redelivered.
// Wrap it (fmt.Errorf("...: %w", bus.ErrPermanente)) or wrap
// eventos.ErrMalformado with it via Permanente.
var ErrPermanente = errors.New("mensaje no procesable")

// Permanente marks err as permanent.
func Permanente(err error) error { return fmt.Errorf("%w: %w", ErrPermanente, err) }

// Manejador processes one message. A nil error acks it; an error wrapping
// ErrPermanente dead-letters it; any other error nacks it for redelivery
// after a delay (the message is kept, never lost).
type Manejador func(ctx context.Context, msg pulsar.Message) error

// ManejadorLote processes several messages, in order, and returns one error
// per message with Manejador's meaning. It lets a handler commit a batch in
// one database transaction (group commit).
type ManejadorLote func(ctx context.Context, msgs []pulsar.Message) []error

// Metricas of a consumer; construct with NuevasMetricas and share between
// consumers of one process. Every series has a topic label, the full topic
// name (NombreTopico), so it joins with the broker's pulsar_* metrics.
type Metricas struct {
	procesados   *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
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
			Name: "sagas_dead_letters_total", Help: "Poison messages sent to a dead-letter topic, by source topic.",
		}, []string{"topic"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_mensajes_reentregados_total", Help: "Messages received with a redelivery count above zero, by topic.",
		}, []string{"topic"}),
		mensaje: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sagas_mensaje_procesamiento_seconds",
			Help: "Per message, by topic: time from the consumer loop receiving it to its ack, nack or dead letter " +
				"(waiting behind its key, its batch's handler call, the resolution).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"topic"}),
		lote: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagas_lote_procesamiento_seconds",
			Help:    "Per handler call, by topic: time the handler took for one batch of consumed messages (one message for Consumir).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"topic"}),
	}
	reg.MustRegister(m.procesados, m.deadLetters, m.redeliveries, m.mensaje, m.lote)
	return m
}

// Consumidor is a running consumer loop.
type Consumidor struct {
	consumer pulsar.Consumer
	dlq      pulsar.Producer
	topico   string
	etiqueta string // NombreTopico(topico), the metrics' topic label
	manejar  ManejadorLote
	lote     int
	logger   *slog.Logger
	m        *Metricas
	colas    []chan recibido
	wg       sync.WaitGroup
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
	// RetrasoReintento is the nack redelivery delay; default 1s.
	RetrasoReintento time.Duration
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
// the messages already waiting in its queue (up to o.Lote, in order) in one
// call. Acks, nacks and dead letters are per message, as with Consumir.
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
	if o.RetrasoReintento <= 0 {
		o.RetrasoReintento = time.Second
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
		NackRedeliveryDelay:         o.RetrasoReintento,
		ReceiverQueueSize:           1000,
	})
	if err != nil {
		if err = Causa(c, "consumir", o.Topico, err); errors.Is(err, ErrAutorizacion) {
			return nil, fmt.Errorf("suscripción %s: %w", o.Suscripcion, err)
		}
		return nil, fmt.Errorf("suscribir %s a %s: %w", o.Suscripcion, o.Topico, err)
	}
	dlq, err := NuevoProductor(c, o.Topico+"-DLQ", "", "")
	if err != nil {
		consumer.Close()
		return nil, err
	}
	k := &Consumidor{
		consumer: consumer, dlq: dlq, topico: o.Topico, etiqueta: NombreTopico(o.Topico), manejar: manejar, lote: o.Lote,
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

func (k *Consumidor) trabajar(ctx context.Context, q <-chan recibido) {
	defer k.wg.Done()
	lote := make([]recibido, 0, k.lote)
	for r := range q {
		lote = append(lote[:0], r)
	llenar:
		for len(lote) < k.lote {
			select {
			case r, ok := <-q:
				if !ok {
					break llenar
				}
				lote = append(lote, r)
			default:
				break llenar
			}
		}
		k.procesar(ctx, lote)
	}
}

func (k *Consumidor) procesar(ctx context.Context, lote []recibido) {
	msgs := make([]pulsar.Message, len(lote))
	for i, r := range lote {
		msgs[i] = r.msg
		if r.msg.RedeliveryCount() > 0 {
			k.m.redeliveries.WithLabelValues(k.etiqueta).Inc()
		}
	}
	inicio := time.Now()
	errs := k.manejar(ctx, msgs)
	k.m.lote.WithLabelValues(k.etiqueta).Observe(time.Since(inicio).Seconds())
	for i, r := range lote {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = fmt.Errorf("el manejador devolvió %d resultados para %d mensajes", len(errs), len(lote))
		}
		k.resolver(ctx, r.msg, err)
		k.m.mensaje.WithLabelValues(k.etiqueta).Observe(time.Since(r.cuando).Seconds())
	}
}

// resolver acks, dead-letters or nacks msg after its handler returned err.
func (k *Consumidor) resolver(ctx context.Context, msg pulsar.Message, err error) {
	switch {
	case err == nil:
		k.ack(msg)
		k.m.procesados.WithLabelValues(k.etiqueta, "ok").Inc()
	case errors.Is(err, ErrPermanente):
		k.logger.Warn("mensaje no procesable: a dead letter", "err", err, "clave", msg.Key(), "id", msg.ID().String())
		if derr := k.aDeadLetter(ctx, msg, err); derr != nil {
			k.logger.Error("publicar dead letter; se reintentará", "err", derr)
			k.consumer.Nack(msg)
			return
		}
		k.ack(msg)
		k.m.deadLetters.WithLabelValues(k.etiqueta).Inc()
		k.m.procesados.WithLabelValues(k.etiqueta, "dead_letter").Inc()
	default:
		if ctx.Err() == nil {
			k.logger.Warn("mensaje no procesado; se reintentará", "err", err, "clave", msg.Key(), "reentregas", msg.RedeliveryCount())
		}
		k.consumer.Nack(msg)
		k.m.procesados.WithLabelValues(k.etiqueta, "reintento").Inc()
	}
}

func (k *Consumidor) ack(msg pulsar.Message) {
	if err := k.consumer.Ack(msg); err != nil {
		// The work is durable and idempotent: a redelivery is harmless.
		k.logger.Warn("ack", "err", err)
	}
}

// aDeadLetter copies the message, untouched, to the dead-letter topic with
// the reason and origin as properties.
func (k *Consumidor) aDeadLetter(ctx context.Context, msg pulsar.Message, motivo error) error {
	props := map[string]string{}
	for key, v := range msg.Properties() {
		props[key] = v
	}
	props["dlq_motivo"] = motivo.Error()
	props["dlq_topico_origen"] = k.topico
	props["dlq_id_origen"] = msg.ID().String()
	props["dlq_reentregas"] = strconv.Itoa(int(msg.RedeliveryCount()))
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
