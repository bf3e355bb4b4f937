package participantes

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/mysqltx"
)

// Results counted by sagas_participante_comandos_total.
const (
	ResultadoExito     = "exito"     // replied exito=true
	ResultadoFallo     = "fallo"     // replied exito=false (business or injected failure)
	ResultadoDuplicado = "duplicado" // a redelivery: the stored reply was sent again
	ResultadoRechazado = "rechazado" // an action that came after its compensation
)

// Bounds of the processing of one command.
const (
	plazoComando        = 30 * time.Second
	intentosTransaccion = 5
	plazoPreparacion    = 60 * time.Second
)

type metricas struct {
	lotes      *prometheus.CounterVec
	comandos   *prometheus.CounterVec
	duracion   *prometheus.HistogramVec
	inyectados *prometheus.CounterVec
	invalidos  *prometheus.CounterVec
}

func nuevasMetricas(reg prometheus.Registerer) *metricas {
	m := &metricas{
		lotes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_participante_lotes_total",
			Help: "Batches of several commands, by service and result: confirmado (one transaction), uno_a_uno (rolled back and run one command at a time).",
		}, []string{"servicio", "resultado"}),
		comandos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_participante_comandos_total",
			Help: "Commands processed by a participant, by service, command, action and result (exito, fallo, duplicado, rechazado).",
		}, []string{"servicio", "comando", "accion", "resultado"}),
		duracion: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagas_participante_duracion_segundos",
			Help:    "Time from decoding a command to the broker's acknowledgement of its reply, by service and action.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"servicio", "accion"}),
		inyectados: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_participante_fallos_inyectados_total",
			Help: "Failures injected by configuration (SAGAS_FALLOS, SAGAS_TASA_FALLO) or forced by the saga input (simular_fallo, simular_fallo_compensacion).",
		}, []string{"servicio"}),
		invalidos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_participante_mensajes_invalidos_total",
			Help: "Poison commands sent to the dead-letter topic, by service and reason (malformado, invalido, desconocido).",
		}, []string{"servicio", "motivo"}),
	}
	reg.MustRegister(m.lotes, m.comandos, m.duracion, m.inyectados, m.invalidos)
	return m
}

// Participante runs one service: its store, its consumer of commands and its
// producer of replies. Build it with Nuevo, start it with Iniciar, stop it
// with Detener and Cerrar.
type Participante struct {
	cfg        Config
	servicio   Servicio
	logger     *slog.Logger
	registro   *prometheus.Registry
	m          *metricas
	mBus       *bus.Metricas
	almacen    *almacen
	fallos     *inyector
	comandos   *eventos.Codec[eventos.Comando]
	respuestas *eventos.Codec[eventos.Respuesta]
	reloj      func() time.Time

	productor pulsar.Producer // set by Iniciar

	mu         sync.Mutex // guards the fields below
	consumidor *bus.Consumidor
	cancelar   context.CancelFunc
	detenido   bool
}

// Nuevo validates the declaration, opens the service's store and migrates it.
// Its metrics go to a registry of its own (Registro).
func Nuevo(ctx context.Context, cfg Config, s Servicio, logger *slog.Logger) (*Participante, error) {
	if err := errors.Join(s.validar(), cfg.Validar()); err != nil {
		return nil, err
	}
	if cfg.Servicio != s.Nombre {
		return nil, fmt.Errorf("la configuración es de %q y el servicio es %q", cfg.Servicio, s.Nombre)
	}
	comandos, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		return nil, err
	}
	respuestas, err := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
	if err != nil {
		return nil, err
	}
	a, err := abrirAlmacen(ctx, cfg, &s)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := nuevasMetricas(reg)
	// Every series exists from the start at zero, so rates and alerts work
	// before the first command.
	m.inyectados.WithLabelValues(s.Nombre)
	m.lotes.WithLabelValues(s.Nombre, "confirmado")
	m.lotes.WithLabelValues(s.Nombre, "uno_a_uno")
	for _, op := range s.Operaciones {
		for _, r := range []string{ResultadoExito, ResultadoFallo, ResultadoDuplicado, ResultadoRechazado} {
			m.comandos.WithLabelValues(s.Nombre, op.Comando, eventos.Ejecutar, r)
			m.comandos.WithLabelValues(s.Nombre, op.Compensacion, eventos.Compensar, r)
		}
	}
	return &Participante{
		cfg: cfg, servicio: s, logger: logger, registro: reg,
		m: m, mBus: bus.NuevasMetricas(reg),
		almacen: a, fallos: nuevoInyector(s.Nombre, s.FalloSemilla, cfg.Fallos),
		comandos: comandos, respuestas: respuestas, reloj: time.Now,
	}, nil
}

// Registro is the participant's metrics registry, served on /metrics.
func (p *Participante) Registro() *prometheus.Registry { return p.registro }

// Iniciar prepares the tenant and namespace (idempotent, so a participant can
// start before the coordinator), opens the producer of replies and starts
// consuming comandos-<servicio> with the shared subscription
// participante-<servicio>.
func (p *Participante) Iniciar(ctx context.Context, cliente pulsar.Client) error {
	t := p.cfg.Topologia
	if err := p.prepararNamespace(ctx); err != nil {
		return err
	}
	productor, err := bus.NuevoProductor(cliente, t.Respuestas(), "", esquemas.MustAvro(esquemas.RespuestaSaga))
	if err != nil {
		return err
	}
	// Set before the consumer's workers start, which read it without a lock.
	p.productor = productor
	cctx, cancelar := context.WithCancel(context.WithoutCancel(ctx))
	consumidor, err := bus.ConsumirLotes(cctx, cliente, bus.OpcionesConsumidor{
		Topico:       t.Comandos(p.servicio.Nombre),
		Suscripcion:  "participante-" + p.servicio.Nombre,
		Tipo:         pulsar.KeyShared,
		Trabajadores: p.cfg.Trabajadores,
		Logger:       p.logger,
		Metricas:     p.mBus,
	}, p.manejarLote)
	if err != nil {
		cancelar()
		productor.Close()
		return err
	}
	p.mu.Lock()
	p.consumidor, p.cancelar = consumidor, cancelar
	p.mu.Unlock()
	p.logger.Info("participante iniciado", "comandos", t.Comandos(p.servicio.Nombre), "respuestas", t.Respuestas(),
		"almacen", p.almacen.d.nombre, "donde", p.almacen.donde,
		"tasa_fallo", p.fallos.tasa, "semilla", p.cfg.Fallos.Semilla, "latencia", p.cfg.Fallos.Latencia.String())
	return nil
}

// prepararNamespace retries for a while: at start-up the broker may still be
// coming up.
func (p *Participante) prepararNamespace(ctx context.Context) error {
	admin := bus.NuevoAdmin(p.cfg.PulsarAdminURL)
	limite := time.Now().Add(plazoPreparacion)
	for espera := 500 * time.Millisecond; ; espera = min(2*espera, 5*time.Second) {
		err := admin.PrepararNamespace(ctx, p.cfg.Topologia.Tenant, p.cfg.Topologia.Namespace)
		if err == nil {
			return nil
		}
		if errors.Is(err, bus.ErrRechazado) || time.Now().Add(espera).After(limite) {
			return fmt.Errorf("preparar namespace %s en %s: %w", p.cfg.Topologia.NS(), p.cfg.PulsarAdminURL, err)
		}
		p.logger.Warn("preparar namespace; se reintentará", "err", err, "espera", espera.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("preparar namespace %s: %w", p.cfg.Topologia.NS(), ctx.Err())
		case <-time.After(espera):
		}
	}
}

// Detener stops intake and lets the commands in hand finish, then flushes
// and closes the producer. It gives up waiting when ctx ends.
func (p *Participante) Detener(ctx context.Context) error {
	p.mu.Lock()
	consumidor, cancelar, detenido := p.consumidor, p.cancelar, p.detenido
	p.detenido = true
	p.mu.Unlock()
	if detenido || consumidor == nil {
		return nil
	}
	cancelar()
	hecho := make(chan struct{})
	go func() {
		consumidor.Cerrar()
		close(hecho)
	}()
	var errs []error
	select {
	case <-hecho:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("detener consumidor de %s: %w", p.servicio.Nombre, ctx.Err()))
	}
	if err := p.productor.FlushWithCtx(ctx); err != nil {
		errs = append(errs, fmt.Errorf("vaciar productor de respuestas: %w", err))
	}
	p.productor.Close()
	return errors.Join(errs...)
}

// Cerrar stops the participant if it runs and closes its store.
func (p *Participante) Cerrar(ctx context.Context) error {
	return errors.Join(p.Detener(ctx), p.almacen.cerrar())
}

// Efectos lists the service's effects for a saga, active or undone.
func (p *Participante) Efectos(ctx context.Context, sagaID string) ([]Efecto, error) {
	return p.almacen.efectos(ctx, p.servicio.Efectos, sagaID)
}

// EfectosActivos counts the service's effects in force for a saga: zero
// after every step of the saga was compensated (or never ran).
func (p *Participante) EfectosActivos(ctx context.Context, sagaID string) (int, error) {
	efs, err := p.Efectos(ctx, sagaID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range efs {
		if e.Activo {
			n++
		}
	}
	return n, nil
}

// manejar is the consumer's handler of one command. A nil return acks it; an
// error wrapping bus.ErrPermanente dead-letters it; any other error nacks it.
func (p *Participante) manejar(ctx context.Context, msg pulsar.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("participante deteniéndose: %w", err)
	}
	c, err := p.decodificar(msg)
	if err != nil {
		return err
	}
	if d := p.cfg.Fallos.Latencia; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("participante deteniéndose: %w", ctx.Err())
		}
	}
	// From here on the command is finished even if the participant is asked
	// to stop, within a bound: its effect and reply belong together.
	tctx, cancelar := context.WithTimeout(context.WithoutCancel(ctx), plazoComando)
	defer cancelar()

	res, err := p.procesar(tctx, c)
	if err != nil {
		c.logger.Warn("comando no procesado; se reintentará", "err", err)
		return fmt.Errorf("procesar %s de la saga %s: %w", c.cmd.Nombre(), c.cmd.SagaID, err)
	}
	p.contar(c, res)
	pm, err := p.mensajeRespuesta(c.msg, res.respuesta)
	if err == nil {
		_, err = p.productor.Send(tctx, pm)
	}
	return p.respondido(c, res, err)
}

// comando is a decoded, valid command and what processing it needs.
type comando struct {
	msg      pulsar.Message
	cmd      eventos.Comando
	op       *Operacion
	pet      Peticion
	sim      simulacion
	errDatos error
	inicio   time.Time
	logger   *slog.Logger
}

// decodificar decodes and checks a command; a poison one gets an error
// wrapping bus.ErrPermanente.
func (p *Participante) decodificar(msg pulsar.Message) (*comando, error) {
	c := &comando{msg: msg, inicio: time.Now()}
	cmd, err := p.comandos.Decodificar(msg.Payload())
	if err != nil {
		return nil, p.invalido("malformado", err)
	}
	if err := cmd.Validar(); err != nil {
		return nil, p.invalido("invalido", err)
	}
	if len(cmd.SagaID) > maxSagaID || len(cmd.Paso) > maxPaso {
		return nil, p.invalido("invalido", fmt.Errorf("saga_id (%d) o paso (%d) demasiado largos: máximo %d y %d", len(cmd.SagaID), len(cmd.Paso), maxSagaID, maxPaso))
	}
	op, accion, ok := p.servicio.operacion(cmd.Nombre())
	if !ok {
		return nil, p.invalido("desconocido", fmt.Errorf("comando %q desconocido para el servicio %s", cmd.Type, p.servicio.Nombre))
	}
	if accion != cmd.Accion {
		return nil, p.invalido("invalido", fmt.Errorf("comando %s con accion %s: se esperaba %s", cmd.Nombre(), cmd.Accion, accion))
	}
	c.cmd, c.op = cmd, op
	var datos eventos.DatosComando
	c.errDatos = json.Unmarshal([]byte(cmd.Datos), &datos)
	c.pet = Peticion{Comando: &c.cmd, SagaID: cmd.SagaID, Paso: cmd.Paso, Entrada: datos.Entrada, Previos: datos.Previos}
	c.sim = leerSimulacion(datos.Entrada)
	c.logger = p.logger.With("saga_id", cmd.SagaID, "paso", cmd.Paso, "comando", cmd.Nombre(), "accion", cmd.Accion, "intento", cmd.Intento)
	return c, nil
}

// contar counts a decided command (committed, but for a failed
// compensation): if its reply is not published, the redelivery counts as a
// duplicate.
func (p *Participante) contar(c *comando, res resultado) {
	if res.inyectado {
		p.m.inyectados.WithLabelValues(p.servicio.Nombre).Inc()
	}
	p.m.comandos.WithLabelValues(p.servicio.Nombre, c.cmd.Nombre(), c.cmd.Accion, res.resultado).Inc()
}

// respondido finishes a command once the broker answered the publish of its
// reply (err). A failed publish nacks the command: its redelivery sends the
// stored reply again.
func (p *Participante) respondido(c *comando, res resultado, err error) error {
	if err != nil {
		c.logger.Warn("respuesta no publicada; el comando se reentregará y se reenviará la respuesta guardada", "err", err)
		return fmt.Errorf("publicar respuesta %s: %w", res.respuesta.ID, err)
	}
	p.m.duracion.WithLabelValues(p.servicio.Nombre, c.cmd.Accion).Observe(time.Since(c.inicio).Seconds())
	if c.logger.Enabled(context.Background(), slog.LevelInfo) {
		attrs := []any{"resultado", res.resultado, "exito", res.respuesta.Exito, "duracion_ms", time.Since(c.inicio).Milliseconds()}
		if res.respuesta.Error != nil {
			attrs = append(attrs, "error", *res.respuesta.Error)
		}
		c.logger.Info("comando procesado", attrs...)
	}
	return nil
}

// manejarLote handles the commands a worker had queued: all of them in one
// local transaction (group commit: one commit, one fsync), then their
// replies published together. If the transaction fails as a whole (a
// deadlock, a race with another instance, a database error), nothing of it
// is kept and each command runs alone through manejar's path, which retries
// and resolves races; the outcome is the same. A configured latency
// (SAGAS_LATENCIA) is waited once per batch: every command in it still
// takes at least that long.
func (p *Participante) manejarLote(ctx context.Context, msgs []pulsar.Message) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 1 {
		errs[0] = p.manejar(ctx, msgs[0])
		return errs
	}
	detenerse := func(err error) []error {
		for i := range errs {
			errs[i] = fmt.Errorf("participante deteniéndose: %w", err)
		}
		return errs
	}
	if err := ctx.Err(); err != nil {
		return detenerse(err)
	}
	if d := p.cfg.Fallos.Latencia; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return detenerse(ctx.Err())
		}
	}
	var cs []*comando
	var indices []int
	for i, msg := range msgs {
		c, err := p.decodificar(msg)
		if err != nil {
			errs[i] = err
			continue
		}
		cs, indices = append(cs, c), append(indices, i)
	}
	if len(cs) == 0 {
		return errs
	}
	tctx, cancelar := context.WithTimeout(context.WithoutCancel(ctx), plazoComando)
	defer cancelar()

	ress, err := p.transaccionLote(tctx, cs)
	if err == nil {
		p.m.lotes.WithLabelValues(p.servicio.Nombre, "confirmado").Inc()
	} else {
		p.m.lotes.WithLabelValues(p.servicio.Nombre, "uno_a_uno").Inc()
		p.logger.Debug("lote de comandos deshecho; se procesan uno a uno", "comandos", len(cs), "err", err)
		ress = make([]resultado, len(cs))
		for j, c := range cs {
			if ress[j], err = p.procesar(tctx, c); err != nil {
				c.logger.Warn("comando no procesado; se reintentará", "err", err)
				errs[indices[j]] = fmt.Errorf("procesar %s de la saga %s: %w", c.cmd.Nombre(), c.cmd.SagaID, err)
				cs[j] = nil
			}
		}
	}
	// Replies in command order through one producer: a saga's replies keep
	// their order.
	envios := make([]chan error, len(cs))
	for j, c := range cs {
		if c == nil {
			continue
		}
		p.contar(c, ress[j])
		hecho := make(chan error, 1)
		envios[j] = hecho
		pm, err := p.mensajeRespuesta(c.msg, ress[j].respuesta)
		if err != nil {
			hecho <- err
			continue
		}
		p.productor.SendAsync(tctx, pm, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			hecho <- err
		})
	}
	// Out now, not on the producer's timer (bus.DemoraLote). The outcome of
	// each reply comes through its callback.
	p.productor.FlushWithCtx(tctx)
	for j, c := range cs {
		if c == nil {
			continue
		}
		var err error
		select {
		case err = <-envios[j]:
		case <-tctx.Done():
			err = tctx.Err()
		}
		errs[indices[j]] = p.respondido(c, ress[j], err)
	}
	return errs
}

func (p *Participante) invalido(motivo string, err error) error {
	p.m.invalidos.WithLabelValues(p.servicio.Nombre, motivo).Inc()
	return bus.Permanente(fmt.Errorf("comando %s para %s: %w", motivo, p.servicio.Nombre, err))
}

// resultado is the outcome of processing one command.
type resultado struct {
	respuesta eventos.Respuesta
	resultado string
	inyectado bool
	escrito   bool // the transaction recorded the command
}

// procesar runs the command's transaction, again when the database asks for
// it (deadlock, busy), and resolves a race with another instance by sending
// the reply that instance stored.
func (p *Participante) procesar(ctx context.Context, c *comando) (resultado, error) {
	for intento := 1; ; intento++ {
		var res resultado
		err := p.almacen.escribir(ctx, func(tx *sql.Tx) (bool, error) {
			var err error
			res, err = p.aplicar(ctx, tx, c)
			return res.escrito, err
		})
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, errYaRegistrado):
			regs, lerr := leerInbox(ctx, p.almacen.db, c.cmd.SagaID, c.cmd.Paso)
			if lerr != nil {
				return resultado{}, errors.Join(err, lerr)
			}
			if r, ok := regs[c.cmd.Accion]; ok {
				return p.guardada(&c.cmd, r), nil
			}
			return resultado{}, err
		case p.almacen.d.reintentable(err) && intento < intentosTransaccion:
			select {
			case <-time.After(time.Duration(intento*intento) * 10 * time.Millisecond):
			case <-ctx.Done():
				return resultado{}, errors.Join(err, ctx.Err())
			}
		default:
			return resultado{}, err
		}
	}
}

// transaccionLote applies cs in order in one transaction with a fixed
// number of statements besides the effects: one multi-row upsert of the
// steps' lock rows (sorted, so instances lock in the same order), one read
// of their inbox rows, one multi-row insert of the new inbox rows. Commands
// of the same step see the earlier ones' rows. Any error, a business
// failure included (errNegocioEnLote), rolls all of them back.
func (p *Participante) transaccionLote(ctx context.Context, cs []*comando) ([]resultado, error) {
	ress := make([]resultado, len(cs))
	ahora := p.reloj()
	err := p.almacen.escribir(ctx, func(tx *sql.Tx) (bool, error) {
		pasos := make([]clavePaso, 0, len(cs))
		for _, c := range cs {
			pasos = append(pasos, clavePaso{c.cmd.SagaID, c.cmd.Paso, c.cmd.Nombre()})
		}
		inbox, err := p.almacen.bloquearYLeer(ctx, tx, pasos, ahora)
		if err != nil {
			return false, err
		}
		var nuevos []registroDePaso
		for j, c := range cs {
			k := pasoDe(c.cmd.SagaID, c.cmd.Paso)
			previos := inbox[k]
			res, reg, err := p.decidir(ctx, tx, c, ahora, previos, true)
			if err != nil {
				return false, err
			}
			if reg != nil {
				if previos == nil {
					previos = map[string]registro{}
					inbox[k] = previos
				}
				previos[reg.Accion] = *reg
				nuevos = append(nuevos, registroDePaso{c.cmd.SagaID, c.cmd.Paso, *reg})
				res.escrito = true
			}
			ress[j] = res
		}
		if len(nuevos) == 0 {
			return false, nil
		}
		// The last statement: it commits too (MySQL, mysqltx).
		return true, p.almacen.registrarVarios(mysqltx.ConCommit(ctx), tx, nuevos, ahora)
	})
	if err != nil {
		return nil, err
	}
	return ress, nil
}

// guardada rebuilds the stored reply for a redelivered command. With the
// stored time, a redelivery of the same attempt gets a byte-identical reply.
func (p *Participante) guardada(cmd *eventos.Comando, r registro) resultado {
	return resultado{
		respuesta: eventos.ResponderA(cmd, p.servicio.Nombre, r.Exito, r.Error, json.RawMessage(r.Datos), time.UnixMilli(r.RespondidoMs)),
		resultado: ResultadoDuplicado,
	}
}

// aplicar is one command's local transaction body: lock the step, read its
// inbox rows, decide, apply the effect, record the reply. res.escrito says
// whether it recorded anything (a redelivery or a failed compensation does
// not, and is then rolled back).
func (p *Participante) aplicar(ctx context.Context, tx *sql.Tx, c *comando) (resultado, error) {
	ahora := p.reloj()
	inbox, err := p.almacen.bloquearYLeer(ctx, tx, []clavePaso{{c.cmd.SagaID, c.cmd.Paso, c.cmd.Nombre()}}, ahora)
	if err != nil {
		return resultado{}, err
	}
	res, reg, err := p.decidir(ctx, tx, c, ahora, inbox[pasoDe(c.cmd.SagaID, c.cmd.Paso)], false)
	if err != nil || reg == nil {
		return res, err
	}
	// The last statement: it commits too (MySQL, mysqltx).
	if err := p.almacen.registrarVarios(mysqltx.ConCommit(ctx), tx, []registroDePaso{{c.cmd.SagaID, c.cmd.Paso, *reg}}, ahora); err != nil {
		return res, err
	}
	res.escrito = true
	return res, nil
}

// decidir decides a command given the step's inbox rows (previos), applies
// its effect, and returns the reply and, when it must be recorded, the inbox
// row.
func (p *Participante) decidir(ctx context.Context, tx *sql.Tx, c *comando, ahora time.Time, previos map[string]registro, enLote bool) (resultado, *registro, error) {
	cmd, op := &c.cmd, c.op
	pet := c.pet
	pet.Ahora = ahora
	var res resultado
	if r, ok := previos[cmd.Accion]; ok {
		return p.guardada(cmd, r), nil, nil
	}
	reg := registro{Accion: cmd.Accion, Comando: cmd.Nombre(), Clave: cmd.ClaveIdempotencia, RespondidoMs: eventos.Millis(pet.Ahora)}
	var err error
	if cmd.Accion == eventos.Ejecutar {
		res.inyectado, err = p.ejecutar(ctx, tx, op, pet, c.sim, c.errDatos, previos, &reg, enLote)
	} else {
		var registrar bool
		registrar, res.inyectado, err = p.compensar(ctx, tx, op, pet, c.sim, previos, &reg, enLote)
		if err == nil && !registrar {
			res.respuesta = eventos.ResponderA(cmd, p.servicio.Nombre, false, reg.Error, nil, pet.Ahora)
			res.resultado = ResultadoFallo
			return res, nil, nil
		}
	}
	if err != nil {
		return res, nil, err
	}
	res.respuesta = eventos.ResponderA(cmd, p.servicio.Nombre, reg.Exito, reg.Error, json.RawMessage(reg.Datos), pet.Ahora)
	res.resultado = reg.Resultado
	return res, &reg, nil
}

// errNegocioEnLote aborts a batch whose action or compensation failed for a
// business reason: without a savepoint per command its partial writes cannot
// be undone alone, so the batch runs again one command at a time.
var errNegocioEnLote = errors.New("fallo de negocio dentro de un lote")

// ejecutar decides and applies an action; reg gets the reply to record. In
// a batch (enLote) there is no savepoint: a business failure aborts the
// batch with errNegocioEnLote.
func (p *Participante) ejecutar(ctx context.Context, tx *sql.Tx, op *Operacion, pet Peticion, sim simulacion, errDatos error, previos map[string]registro, reg *registro, enLote bool) (bool, error) {
	fallar := func(resultado, motivo string) {
		reg.Resultado, reg.Exito, reg.Error, reg.Datos = resultado, false, motivo, "{}"
	}
	if _, ok := previos[eventos.Compensar]; ok {
		fallar(ResultadoRechazado, fmt.Sprintf("el paso %s de la saga %s ya fue compensado: la acción llegó tarde y se rechaza sin efecto", pet.Paso, pet.SagaID))
		return false, nil
	}
	if errDatos != nil {
		fallar(ResultadoFallo, fmt.Sprintf("datos del comando no válidos: %v", errDatos))
		return false, nil
	}
	if motivo, ok := p.fallos.fallaAccion(pet.Paso, sim); ok {
		fallar(ResultadoFallo, motivo)
		return true, nil
	}
	// A business failure must leave no effect behind, whatever the handler
	// wrote before it found out: roll back to here and record the failure.
	if !enLote {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT efecto"); err != nil {
			return false, fmt.Errorf("savepoint: %w", err)
		}
	}
	salida, err := op.Ejecutar(ctx, tx, pet)
	if neg, ok := esNegocio(err); ok {
		if enLote {
			return false, errNegocioEnLote
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT efecto"); err != nil {
			return false, fmt.Errorf("rollback to savepoint: %w", err)
		}
		fallar(ResultadoFallo, neg.Motivo)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", op.Comando, err)
	}
	datos, err := marshalDatos(salida)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op.Comando, err)
	}
	reg.Resultado, reg.Exito, reg.Datos = ResultadoExito, true, datos
	return false, nil
}

// compensar decides and applies a compensation. registrar is false for a
// failed compensation, which is replied but not recorded, so that its retry
// is evaluated again.
func (p *Participante) compensar(ctx context.Context, tx *sql.Tx, op *Operacion, pet Peticion, sim simulacion, previos map[string]registro, reg *registro, enLote bool) (registrar, inyectado bool, err error) {
	if motivo, ok := p.fallos.fallaCompensacion(pet.Paso, sim); ok {
		reg.Error = motivo
		return false, true, nil
	}
	accion, ejecutada := previos[eventos.Ejecutar]
	var salida any
	switch {
	case !ejecutada:
		salida = map[string]any{"deshecho": false, "motivo": "la acción no se ejecutó: nada que deshacer; si llega después, se rechazará"}
	case !accion.Exito:
		salida = map[string]any{"deshecho": false, "motivo": "la acción falló sin dejar efecto: nada que deshacer"}
	default:
		salida, err = op.Compensar(ctx, tx, pet)
		if _, ok := esNegocio(err); ok && enLote {
			return false, false, errNegocioEnLote
		}
		if neg, ok := esNegocio(err); ok {
			reg.Error = neg.Motivo
			return false, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("%s: %w", op.Compensacion, err)
		}
	}
	datos, err := marshalDatos(salida)
	if err != nil {
		return false, false, fmt.Errorf("%s: %w", op.Compensacion, err)
	}
	reg.Resultado, reg.Exito, reg.Datos = ResultadoExito, true, datos
	return true, false, nil
}

func marshalDatos(v any) (string, error) {
	if v == nil {
		return "{}", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("datos de la respuesta: %w", err)
	}
	return string(b), nil
}

// mensajeRespuesta is the reply message, keyed by saga_id, to the command
// in cmd.
func (p *Participante) mensajeRespuesta(cmd pulsar.Message, r eventos.Respuesta) (*pulsar.ProducerMessage, error) {
	carga, err := p.respuestas.Codificar(r)
	if err != nil {
		return nil, fmt.Errorf("codificar respuesta %s: %w", r.ID, err)
	}
	props := map[string]string{
		eventos.PropSagaID:  r.SagaID,
		eventos.PropPaso:    r.Paso,
		eventos.PropIntento: strconv.Itoa(r.Intento),
		eventos.PropTipo:    r.Type,
	}
	if tp := cmd.Properties()[eventos.PropTraceparent]; tp != "" {
		props[eventos.PropTraceparent] = tp
	}
	return &pulsar.ProducerMessage{Payload: carga, Key: r.SagaID, Properties: props}, nil
}
