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
	comandos   *prometheus.CounterVec
	duracion   *prometheus.HistogramVec
	inyectados *prometheus.CounterVec
	invalidos  *prometheus.CounterVec
}

func nuevasMetricas(reg prometheus.Registerer) *metricas {
	m := &metricas{
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
	reg.MustRegister(m.comandos, m.duracion, m.inyectados, m.invalidos)
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
	consumidor, err := bus.Consumir(cctx, cliente, bus.OpcionesConsumidor{
		Topico:       t.Comandos(p.servicio.Nombre),
		Suscripcion:  "participante-" + p.servicio.Nombre,
		Tipo:         pulsar.KeyShared,
		Trabajadores: p.cfg.Trabajadores,
		Logger:       p.logger,
		Metricas:     p.mBus,
	}, p.manejar)
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
	inicio := time.Now()
	cmd, err := p.comandos.Decodificar(msg.Payload())
	if err != nil {
		return p.invalido("malformado", err)
	}
	if err := cmd.Validar(); err != nil {
		return p.invalido("invalido", err)
	}
	if len(cmd.SagaID) > maxSagaID || len(cmd.Paso) > maxPaso {
		return p.invalido("invalido", fmt.Errorf("saga_id (%d) o paso (%d) demasiado largos: máximo %d y %d", len(cmd.SagaID), len(cmd.Paso), maxSagaID, maxPaso))
	}
	op, accion, ok := p.servicio.operacion(cmd.Nombre())
	if !ok {
		return p.invalido("desconocido", fmt.Errorf("comando %q desconocido para el servicio %s", cmd.Type, p.servicio.Nombre))
	}
	if accion != cmd.Accion {
		return p.invalido("invalido", fmt.Errorf("comando %s con accion %s: se esperaba %s", cmd.Nombre(), cmd.Accion, accion))
	}
	logger := p.logger.With("saga_id", cmd.SagaID, "paso", cmd.Paso, "comando", cmd.Nombre(), "accion", cmd.Accion, "intento", cmd.Intento)

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

	res, err := p.procesar(tctx, &cmd, op)
	if err != nil {
		logger.Warn("comando no procesado; se reintentará", "err", err)
		return fmt.Errorf("procesar %s de la saga %s: %w", cmd.Nombre(), cmd.SagaID, err)
	}
	// Counted once decided (and, but for a failed compensation, committed):
	// if the publish below fails, the redelivery counts as a duplicate.
	if res.inyectado {
		p.m.inyectados.WithLabelValues(p.servicio.Nombre).Inc()
	}
	p.m.comandos.WithLabelValues(p.servicio.Nombre, cmd.Nombre(), cmd.Accion, res.resultado).Inc()
	if err := p.publicar(tctx, msg, res.respuesta); err != nil {
		logger.Warn("respuesta no publicada; el comando se reentregará y se reenviará la respuesta guardada", "err", err)
		return err
	}
	p.m.duracion.WithLabelValues(p.servicio.Nombre, cmd.Accion).Observe(time.Since(inicio).Seconds())
	attrs := []any{"resultado", res.resultado, "exito", res.respuesta.Exito, "duracion_ms", time.Since(inicio).Milliseconds()}
	if res.respuesta.Error != nil {
		attrs = append(attrs, "error", *res.respuesta.Error)
	}
	logger.Info("comando procesado", attrs...)
	return nil
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
}

// procesar runs the command's transaction, again when the database asks for
// it (deadlock, busy), and resolves a race with another instance by sending
// the reply that instance stored.
func (p *Participante) procesar(ctx context.Context, cmd *eventos.Comando, op *Operacion) (resultado, error) {
	var datos eventos.DatosComando
	errDatos := json.Unmarshal([]byte(cmd.Datos), &datos)
	pet := Peticion{Comando: cmd, SagaID: cmd.SagaID, Paso: cmd.Paso, Entrada: datos.Entrada, Previos: datos.Previos}
	sim := leerSimulacion(datos.Entrada)
	for intento := 1; ; intento++ {
		pet.Ahora = p.reloj()
		res, err := p.transaccion(ctx, cmd, op, pet, sim, errDatos)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, errYaRegistrado):
			regs, lerr := leerInbox(ctx, p.almacen.db, cmd.SagaID, cmd.Paso)
			if lerr != nil {
				return resultado{}, errors.Join(err, lerr)
			}
			if r, ok := regs[cmd.Accion]; ok {
				return p.guardada(cmd, r), nil
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

// guardada rebuilds the stored reply for a redelivered command. With the
// stored time, a redelivery of the same attempt gets a byte-identical reply.
func (p *Participante) guardada(cmd *eventos.Comando, r registro) resultado {
	return resultado{
		respuesta: eventos.ResponderA(cmd, p.servicio.Nombre, r.Exito, r.Error, json.RawMessage(r.Datos), time.UnixMilli(r.RespondidoMs)),
		resultado: ResultadoDuplicado,
	}
}

// transaccion is one attempt at a command, in one local transaction: lock
// the step, read its inbox rows, decide, apply the effect, record the reply.
func (p *Participante) transaccion(ctx context.Context, cmd *eventos.Comando, op *Operacion, pet Peticion, sim simulacion, errDatos error) (resultado, error) {
	var res resultado
	err := p.almacen.escribir(ctx, func(tx *sql.Tx) (bool, error) {
		if err := p.almacen.bloquear(ctx, tx, cmd.SagaID, cmd.Paso, cmd.Nombre(), pet.Ahora); err != nil {
			return false, err
		}
		previos, err := leerInbox(ctx, tx, cmd.SagaID, cmd.Paso)
		if err != nil {
			return false, err
		}
		if r, ok := previos[cmd.Accion]; ok {
			res = p.guardada(cmd, r)
			return false, nil
		}
		reg := registro{Accion: cmd.Accion, Comando: cmd.Nombre(), Clave: cmd.ClaveIdempotencia, RespondidoMs: eventos.Millis(pet.Ahora)}
		if cmd.Accion == eventos.Ejecutar {
			res.inyectado, err = p.ejecutar(ctx, tx, op, pet, sim, errDatos, previos, &reg)
		} else {
			var registrar bool
			registrar, res.inyectado, err = p.compensar(ctx, tx, op, pet, sim, previos, &reg)
			if err == nil && !registrar {
				res.respuesta = eventos.ResponderA(cmd, p.servicio.Nombre, false, reg.Error, nil, pet.Ahora)
				res.resultado = ResultadoFallo
				return false, nil
			}
		}
		if err != nil {
			return false, err
		}
		if err := p.almacen.registrar(ctx, tx, cmd.SagaID, cmd.Paso, reg, pet.Ahora); err != nil {
			return false, err
		}
		res.respuesta = eventos.ResponderA(cmd, p.servicio.Nombre, reg.Exito, reg.Error, json.RawMessage(reg.Datos), pet.Ahora)
		res.resultado = reg.Resultado
		return true, nil
	})
	return res, err
}

// ejecutar decides and applies an action; reg gets the reply to record.
func (p *Participante) ejecutar(ctx context.Context, tx *sql.Tx, op *Operacion, pet Peticion, sim simulacion, errDatos error, previos map[string]registro, reg *registro) (bool, error) {
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
	if _, err := tx.ExecContext(ctx, "SAVEPOINT efecto"); err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	salida, err := op.Ejecutar(ctx, tx, pet)
	if neg, ok := esNegocio(err); ok {
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
func (p *Participante) compensar(ctx context.Context, tx *sql.Tx, op *Operacion, pet Peticion, sim simulacion, previos map[string]registro, reg *registro) (registrar, inyectado bool, err error) {
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

// publicar sends the reply keyed by saga_id and waits for the broker's
// acknowledgement.
func (p *Participante) publicar(ctx context.Context, cmd pulsar.Message, r eventos.Respuesta) error {
	carga, err := p.respuestas.Codificar(r)
	if err != nil {
		return fmt.Errorf("codificar respuesta %s: %w", r.ID, err)
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
	if _, err := p.productor.Send(ctx, &pulsar.ProducerMessage{Payload: carga, Key: r.SagaID, Properties: props}); err != nil {
		return fmt.Errorf("publicar respuesta %s: %w", r.ID, err)
	}
	return nil
}
