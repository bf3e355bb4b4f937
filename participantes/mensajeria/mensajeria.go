// Package mensajeria is a participant's Pulsar adapter. It consumes
// comandos-<servicio> (Key_Shared by saga_id), decodes and validates each
// command (a poison one goes to the dead-letter topic), applies the commands a
// worker has queued through the store (one transaction for the batch, or one
// each), publishes each reply on respuestas-saga keyed by saga_id, and acks a
// command only once the broker has acknowledged its reply.
package mensajeria

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/topologia"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/alpespartner/sagas/participantes/almacen"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/fallos"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// Bounds of the processing of one command and of the start and stop.
const (
	plazoComando     = 30 * time.Second
	plazoPreparacion = 60 * time.Second
	plazoApagado     = 15 * time.Second
)

// Almacen applies commands in the service's store (see package almacen).
type Almacen interface {
	// Aplicar applies one command in its own transaction.
	Aplicar(ctx context.Context, c almacen.Comando) (bandeja.Decision, error)
	// AplicarLote applies commands in one transaction, or none of them.
	AplicarLote(ctx context.Context, cs []almacen.Comando) ([]bandeja.Decision, error)
}

// Opciones configures a Consumidor.
type Opciones struct {
	Topologia eventos.Topologia
	// Particiones is SAGAS_PULSAR_PARTITIONS: the partition count the
	// start-up check expects of the command and reply topics (0 or 1:
	// non-partitioned).
	Particiones int
	// AdminURL is the broker's admin API, where the start-up check asks
	// whether the schemas this service uses are registered.
	AdminURL string
	// Seguridad is how to authenticate to the admin API and trust its certificate.
	Seguridad bus.Seguridad
	// Trabajadores is the number of commands of different sagas processed
	// in parallel.
	Trabajadores int
	// Reintentos bounds the retries of a command that failed transiently
	// (zero: bus.ReintentosPorDefecto).
	Reintentos bus.Reintentos
	// Latencia is a delay added to every command (once per batch).
	Latencia time.Duration
	// Inyector decides injected failures (nil: none).
	Inyector *fallos.Inyector
	// Metricas and MetricasBus are where the command path counts (nil: a
	// registry nobody serves).
	Metricas    *Metricas
	MetricasBus *bus.Metricas
	Logger      *slog.Logger // nil: slog.Default()
	// Trazador makes the span of each command's handling (nil: none; the
	// command's traceparent is still passed to its reply).
	Trazador *traza.Trazador
}

// Consumidor runs a service's command path. Build it with Nuevo and run it
// once with Correr.
type Consumidor struct {
	o          Opciones
	servicio   servicio.Servicio
	cliente    pulsar.Client
	almacen    Almacen
	comandos   *eventos.Codec[eventos.Comando]
	respuestas *eventos.Codec[eventos.Respuesta]
	productor  pulsar.Producer // set by Correr before the workers start
	listo      chan struct{}
}

// Nuevo builds the consumer of s's commands; it connects nothing until
// Correr.
func Nuevo(cliente pulsar.Client, alm Almacen, s servicio.Servicio, o Opciones) (*Consumidor, error) {
	comandos, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		return nil, err
	}
	respuestas, err := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
	if err != nil {
		return nil, err
	}
	if o.Inyector == nil {
		o.Inyector = fallos.NuevoInyector(s.Nombre, 0, "", 0)
	}
	if o.Metricas == nil || o.MetricasBus == nil {
		reg := prometheus.NewRegistry()
		o.Metricas, o.MetricasBus = NuevasMetricas(reg, &s), bus.NuevasMetricas(reg)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Consumidor{
		o: o, servicio: s, cliente: cliente, almacen: alm,
		comandos: comandos, respuestas: respuestas, listo: make(chan struct{}),
	}, nil
}

// Listo is closed once Correr consumes commands and can publish replies.
func (c *Consumidor) Listo() <-chan struct{} { return c.listo }

// Correr checks that the broker holds what the service uses (topics,
// schemas, its role's permissions: see internal/topologia; it creates
// nothing), opens the producer of replies and
// consumes comandos-<servicio> with the shared subscription
// participante-<servicio> until ctx ends. It then stops intake, lets the
// commands in hand finish, flushes and closes the producer (within a
// deadline) and returns.
func (c *Consumidor) Correr(ctx context.Context) error {
	t := c.o.Topologia
	if err := c.comprobarTopologia(ctx); err != nil {
		return err
	}
	productor, err := bus.Abrir(ctx, c.o.Logger, "productor de "+t.Respuestas(), func() (pulsar.Producer, error) {
		return bus.NuevoProductor(c.cliente, t.Respuestas(), "", esquemas.MustAvro(esquemas.RespuestaSaga), bus.LotesMixtos)
	})
	if err != nil {
		return err
	}
	c.productor = productor
	// The workers outlive ctx until detener: a command in hand finishes.
	cctx, cancelar := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelar()
	consumidor, err := bus.Abrir(ctx, c.o.Logger, "suscripción a "+t.Comandos(c.servicio.Nombre), func() (*bus.Consumidor, error) {
		return bus.ConsumirLotes(cctx, c.cliente, bus.OpcionesConsumidor{
			Topico:       t.Comandos(c.servicio.Nombre),
			Suscripcion:  topologia.SuscripcionParticipante(c.servicio.Nombre),
			Tipo:         pulsar.KeyShared,
			Trabajadores: c.o.Trabajadores,
			Reintentos:   c.o.Reintentos,
			Logger:       c.o.Logger,
			Metricas:     c.o.MetricasBus,
		}, c.manejarLote)
	})
	if err != nil {
		productor.Close()
		return err
	}
	c.o.Logger.Info("participante iniciado", "comandos", t.Comandos(c.servicio.Nombre), "respuestas", t.Respuestas(),
		"tasa_fallo", c.o.Inyector.Tasa(), "latencia", c.o.Latencia.String())
	close(c.listo)
	<-ctx.Done()
	cancelar()
	return c.detener(consumidor)
}

// detener waits for the consumer's workers, then flushes and closes the
// producer, giving up after plazoApagado.
func (c *Consumidor) detener(consumidor *bus.Consumidor) error {
	ctx, cancel := context.WithTimeout(context.Background(), plazoApagado)
	defer cancel()
	hecho := make(chan struct{})
	go func() {
		consumidor.Close()
		close(hecho)
	}()
	var errs []error
	select {
	case <-hecho:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("detener consumidor de %s: %w", c.servicio.Nombre, ctx.Err()))
	}
	if err := c.productor.FlushWithCtx(ctx); err != nil {
		errs = append(errs, fmt.Errorf("vaciar productor de respuestas: %w", err))
	}
	c.productor.Close()
	return errors.Join(errs...)
}

// comprobarTopologia checks the service's part of the topology, retrying
// for a while when the broker cannot be reached (at start-up it may still be
// coming up); a missing topic, schema or permission fails at once.
func (c *Consumidor) comprobarTopologia(ctx context.Context) error {
	admin, err := bus.NuevoAdminSeguro(c.o.AdminURL, c.o.Seguridad)
	if err != nil {
		return err
	}
	plan := topologia.Nuevo(topologia.Opciones{Topologia: c.o.Topologia, Servicios: []string{c.servicio.Nombre}, Particiones: c.o.Particiones})
	limite := time.Now().Add(plazoPreparacion)
	for espera := 500 * time.Millisecond; ; espera = min(2*espera, 5*time.Second) {
		err := topologia.Comprobar(ctx, admin, c.cliente, plan, c.servicio.Nombre, c.o.Seguridad)
		if err == nil {
			return nil
		}
		definitivo := errors.Is(err, topologia.ErrNoPreparado) || errors.Is(err, topologia.ErrParticiones) || errors.Is(err, bus.ErrRechazado) ||
			errors.Is(err, bus.ErrTLS) || errors.Is(err, bus.ErrAutenticacion)
		if definitivo || time.Now().Add(espera).After(limite) {
			return err
		}
		c.o.Logger.Warn("comprobar topología; se reintentará", "err", err, "espera", espera.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("comprobar topología de %s: %w", c.servicio.Nombre, ctx.Err())
		case <-time.After(espera):
		}
	}
}

// comando is a decoded, valid command and what processing it needs.
type comando struct {
	msg    pulsar.Message
	cmd    *eventos.Comando
	alm    almacen.Comando
	inicio time.Time
	logger *slog.Logger
	// traza holds the span context of the command's handling (its own
	// span, or the command's traceparent when no spans are made); span
	// ends with the handling.
	traza context.Context
	span  trace.Span
}

// terminar ends the span of k's handling, failed when err is not nil.
func (k *comando) terminar(err error) {
	traza.Fallo(k.span, err)
	k.span.End()
}

// decodificar decodes and checks a command; a poison one gets an error
// wrapping bus.ErrPermanente. It also draws the command's injected failure.
func (c *Consumidor) decodificar(msg pulsar.Message) (*comando, error) {
	k := &comando{msg: msg, inicio: time.Now()}
	cmd, err := c.comandos.Decodificar(msg.Payload())
	if err != nil {
		return nil, c.invalido("malformado", err)
	}
	if err := cmd.Validar(); err != nil {
		return nil, c.invalido("invalido", err)
	}
	if len(cmd.SagaID) > almacen.MaxSagaID || len(cmd.Paso) > almacen.MaxPaso {
		return nil, c.invalido("invalido", fmt.Errorf("saga_id (%d) o paso (%d) demasiado largos: máximo %d y %d", len(cmd.SagaID), len(cmd.Paso), almacen.MaxSagaID, almacen.MaxPaso))
	}
	op, accion, ok := c.servicio.Operacion(cmd.Nombre())
	if !ok {
		return nil, c.invalido("desconocido", fmt.Errorf("comando %q desconocido para el servicio %s", cmd.Type, c.servicio.Nombre))
	}
	if accion != cmd.Accion {
		return nil, c.invalido("invalido", fmt.Errorf("comando %s con accion %s: se esperaba %s", cmd.Nombre(), cmd.Accion, accion))
	}
	k.cmd = &cmd
	var datos eventos.DatosComando
	errDatos := json.Unmarshal([]byte(cmd.Datos), &datos)
	k.alm = almacen.Comando{
		Operacion: op,
		Peticion:  servicio.Peticion{Comando: k.cmd, SagaID: cmd.SagaID, Paso: cmd.Paso, Entrada: datos.Entrada, Previos: datos.Previos},
		ErrDatos:  errDatos,
		Fallo:     c.o.Inyector.Veredicto(cmd.Accion, cmd.Paso, fallos.LeerSimulacion(datos.Entrada)),
		Primera:   msg.RedeliveryCount() == 0 && cmd.Intento <= 1,
	}
	k.traza, k.span = c.o.Trazador.Iniciar(traza.Contexto(context.Background(), msg.Properties()[eventos.PropTraceparent]),
		cmd.Nombre(), traza.Consumidor, traza.Desde(k.inicio), traza.Atributos(traza.Saga(cmd.SagaID, cmd.Paso)...),
		traza.Atributos(attribute.String("saga.accion", cmd.Accion), attribute.Int("saga.intento", cmd.Intento)))
	k.logger = c.o.Logger.With("saga_id", cmd.SagaID, "paso", cmd.Paso, "comando", cmd.Nombre(), "accion", cmd.Accion, "intento", cmd.Intento,
		"trace_id", traza.TraceIDDe(k.traza))
	return k, nil
}

func (c *Consumidor) invalido(motivo string, err error) error {
	c.o.Metricas.invalidos.WithLabelValues(c.servicio.Nombre, motivo).Inc()
	return bus.Permanente(fmt.Errorf("comando %s para %s: %w", motivo, c.servicio.Nombre, err))
}

// esperarLatencia waits the configured latency, or until ctx ends.
func (c *Consumidor) esperarLatencia(ctx context.Context) error {
	if c.o.Latencia <= 0 {
		return nil
	}
	select {
	case <-time.After(c.o.Latencia):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("participante deteniéndose: %w", ctx.Err())
	}
}

// manejar is the handler of one command. A nil return acks it; an error
// wrapping bus.ErrPermanente dead-letters it; any other error nacks it.
func (c *Consumidor) manejar(ctx context.Context, msg pulsar.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("participante deteniéndose: %w", err)
	}
	k, err := c.decodificar(msg)
	if err != nil {
		return err
	}
	defer func() { k.terminar(err) }()
	if err = c.esperarLatencia(ctx); err != nil {
		return err
	}
	// From here on the command is finished even if the participant is asked
	// to stop, within a bound: its effect and reply belong together.
	tctx, cancelar := context.WithTimeout(context.WithoutCancel(ctx), plazoComando)
	defer cancelar()

	d, err := c.aplicar(tctx, k)
	if err != nil {
		return err
	}
	c.contar(k, d)
	pm, err := c.mensajeRespuesta(k, d)
	if err == nil {
		_, err = c.productor.Send(tctx, pm)
	}
	err = c.respondido(k, d, err)
	return err
}

// aplicar applies one command alone; its error is retryable, unless the
// store refuses the command (almacen.ErrInvalido): that one is permanent.
func (c *Consumidor) aplicar(ctx context.Context, k *comando) (bandeja.Decision, error) {
	d, err := c.almacen.Aplicar(ctx, k.alm)
	if errors.Is(err, almacen.ErrInvalido) {
		return d, c.invalido("invalido", err)
	}
	if err != nil {
		k.logger.Warn("comando no procesado; se reintentará", "err", err)
		return d, fmt.Errorf("procesar %s de la saga %s: %w", k.cmd.Nombre(), k.cmd.SagaID, err)
	}
	return d, nil
}

// manejarLote handles the commands a worker had queued: all of them in one
// local transaction (group commit: one commit, one fsync), then their
// replies published together. If the transaction fails as a whole (a
// business failure, a deadlock, a race with another instance, a database
// error), nothing of it is kept and each command is applied alone, which
// retries and resolves races; the outcome is the same. A configured latency
// is waited once per batch: every command in it still takes at least that
// long.
func (c *Consumidor) manejarLote(ctx context.Context, msgs []pulsar.Message) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 1 {
		errs[0] = c.manejar(ctx, msgs[0])
		return errs
	}
	err := ctx.Err()
	if err != nil {
		err = fmt.Errorf("participante deteniéndose: %w", err)
	} else {
		err = c.esperarLatencia(ctx)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var ks []*comando
	var indices []int
	for i, msg := range msgs {
		k, err := c.decodificar(msg)
		if err != nil {
			errs[i] = err
			continue
		}
		ks, indices = append(ks, k), append(indices, i)
	}
	if len(ks) == 0 {
		return errs
	}
	// aplicarLote drops from ks the commands it could not apply: end the
	// span of every one.
	todos := slices.Clone(ks)
	defer func() {
		for j, k := range todos {
			k.terminar(errs[indices[j]])
		}
	}()
	tctx, cancelar := context.WithTimeout(context.WithoutCancel(ctx), plazoComando)
	defer cancelar()

	ds := c.aplicarLote(tctx, ks, func(j int, err error) { errs[indices[j]] = err })
	for j, err := range c.responder(tctx, ks, ds) {
		if ks[j] != nil {
			errs[indices[j]] = err
		}
	}
	return errs
}

// aplicarLote applies ks in one transaction or, when it fails, one by one.
// A command that cannot be applied alone is reported to fallido and set to
// nil in ks.
func (c *Consumidor) aplicarLote(ctx context.Context, ks []*comando, fallido func(j int, err error)) []bandeja.Decision {
	cs := make([]almacen.Comando, len(ks))
	for j, k := range ks {
		cs[j] = k.alm
	}
	ds, err := c.almacen.AplicarLote(ctx, cs)
	if err == nil {
		c.o.Metricas.lotes.WithLabelValues(c.servicio.Nombre, "confirmado").Inc()
		return ds
	}
	c.o.Metricas.lotes.WithLabelValues(c.servicio.Nombre, "uno_a_uno").Inc()
	c.o.Logger.Debug("lote de comandos deshecho; se procesan uno a uno", "comandos", len(ks), "err", err)
	ds = make([]bandeja.Decision, len(ks))
	for j, k := range ks {
		if ds[j], err = c.aplicar(ctx, k); err != nil {
			fallido(j, err)
			ks[j] = nil
		}
	}
	return ds
}

// responder publishes the replies of ks (nil ones skipped) in command order
// through one producer, so a saga's replies keep their order, and returns
// each command's outcome.
func (c *Consumidor) responder(ctx context.Context, ks []*comando, ds []bandeja.Decision) []error {
	envios := make([]chan error, len(ks))
	for j, k := range ks {
		if k == nil {
			continue
		}
		c.contar(k, ds[j])
		hecho := make(chan error, 1)
		envios[j] = hecho
		pm, err := c.mensajeRespuesta(k, ds[j])
		if err != nil {
			hecho <- err
			continue
		}
		c.productor.SendAsync(ctx, pm, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			hecho <- err
		})
	}
	// Out now, not on the producer's timer (bus.DemoraLote). The outcome of
	// each reply comes through its callback.
	c.productor.FlushWithCtx(ctx)
	errs := make([]error, len(ks))
	for j, k := range ks {
		if k == nil {
			continue
		}
		var err error
		select {
		case err = <-envios[j]:
		case <-ctx.Done():
			err = ctx.Err()
		}
		errs[j] = c.respondido(k, ds[j], err)
	}
	return errs
}

// contar counts a decided command (committed, but for a failed
// compensation): if its reply is not published, the redelivery counts as a
// duplicate.
func (c *Consumidor) contar(k *comando, d bandeja.Decision) {
	if d.Inyectado {
		c.o.Metricas.inyectados.WithLabelValues(c.servicio.Nombre).Inc()
	}
	c.o.Metricas.comandos.WithLabelValues(c.servicio.Nombre, k.cmd.Nombre(), k.cmd.Accion, d.Resultado()).Inc()
}

// respondido finishes a command once the broker answered the publish of its
// reply (err). A failed publish nacks the command: its redelivery sends the
// stored reply again.
func (c *Consumidor) respondido(k *comando, d bandeja.Decision, err error) error {
	if err != nil {
		k.logger.Warn("respuesta no publicada; el comando se reentregará y se reenviará la respuesta guardada", "err", err)
		return fmt.Errorf("publicar respuesta %s: %w", c.respuesta(k, d).ID, err)
	}
	c.o.Metricas.duracion.WithLabelValues(c.servicio.Nombre, k.cmd.Accion).Observe(time.Since(k.inicio).Seconds())
	if k.logger.Enabled(context.Background(), slog.LevelInfo) {
		r := d.Registro
		attrs := []any{"resultado", d.Resultado(), "exito", r.Exito, "duracion_ms", time.Since(k.inicio).Milliseconds()}
		if r.Error != "" {
			attrs = append(attrs, "error", r.Error)
		}
		k.logger.Info("comando procesado", attrs...)
	}
	return nil
}

// respuesta is the reply of a decision: with the recorded time, a
// redelivery of the same attempt gets a byte-identical reply.
func (c *Consumidor) respuesta(k *comando, d bandeja.Decision) eventos.Respuesta {
	r := d.Registro
	return eventos.ResponderA(k.cmd, c.servicio.Nombre, r.Exito, r.Error, json.RawMessage(r.Datos), time.UnixMilli(r.RespondidoMs))
}

// mensajeRespuesta is the reply message to k, keyed by saga_id.
func (c *Consumidor) mensajeRespuesta(k *comando, d bandeja.Decision) (*pulsar.ProducerMessage, error) {
	r := c.respuesta(k, d)
	carga, err := c.respuestas.Codificar(r)
	if err != nil {
		return nil, fmt.Errorf("codificar respuesta %s: %w", r.ID, err)
	}
	props := map[string]string{
		eventos.PropSagaID:  r.SagaID,
		eventos.PropPaso:    r.Paso,
		eventos.PropIntento: strconv.Itoa(r.Intento),
		eventos.PropTipo:    r.Type,
	}
	if tp := traza.Traceparent(k.traza); tp != "" {
		props[eventos.PropTraceparent] = tp
	}
	return &pulsar.ProducerMessage{Payload: carga, Key: r.SagaID, Properties: props}, nil
}
