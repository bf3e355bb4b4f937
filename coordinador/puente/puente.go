package puente

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
)

// SuscripcionPorDefecto is the subscription of the bridge on the legacy topics.
const SuscripcionPorDefecto = "coordinador-puente"

// Results of a legacy message, the resultado label of sagas_puente_eventos_total.
const (
	ResultadoIniciada   = "iniciada"    // a new saga was started
	ResultadoDuplicado  = "duplicado"   // the message's saga already existed
	ResultadoDeadLetter = "dead_letter" // the message was refused as poison
)

// Defaults for the inputs of a lanzar-campania-completa saga that the legacy
// command does not carry.
const (
	comisionLegadoTipo  = "porcentaje"
	comisionLegadoValor = 10.0
	canalLegado         = "email"
	// espacioCampaniaLegado names the campaign ids derived from the envelope
	// id of a legacy launch command (a UUID v5 of this name plus the id).
	espacioCampaniaLegado = "urn:alpespartner:legado:comando-lanzar-campania-completa:"
)

// Iniciador starts a saga, or finds the one already started for the same
// idempotency key or saga id (creada == false). *motor.Motor is one.
type Iniciador interface {
	Iniciar(ctx context.Context, sol motor.Solicitud) (id string, creada bool, err error)
}

// FuenteEsquemas returns a topic's schema at a version, as the broker's
// schema registry keeps it. An unknown version wraps
// bus.ErrEsquemaNoEncontrado. *bus.Admin is one.
type FuenteEsquemas interface {
	EsquemaVersion(ctx context.Context, topico string, version int64) (tipo, texto string, err error)
}

// Opciones configure Nuevo. Iniciador, Cliente and Esquemas are
// required; the rest have defaults.
type Opciones struct {
	Iniciador Iniciador
	Cliente   pulsar.Client
	Esquemas  FuenteEsquemas
	Logger    *slog.Logger // default slog.Default()
	// Metricas of the consumer loops; default: unregistered.
	Metricas *bus.Metricas
	// Registro gets the counter sagas_puente_eventos_total{topic,resultado};
	// default: a private registry. Several bridges may share one.
	Registro prometheus.Registerer
	// TopicoCampania defaults to eventos.TopicoLegacyCampania.
	TopicoCampania string
	// TopicoLanzar defaults to eventos.TopicoLegacyLanzarCompleta.
	TopicoLanzar string
	// Suscripcion defaults to SuscripcionPorDefecto.
	Suscripcion string
	// Reintentos bounds the retries of a message that failed transiently
	// (zero: bus.ReintentosPorDefecto).
	Reintentos bus.Reintentos
	// Trazador makes the span of each legacy message (nil: none). Each
	// message starts a trace of its own, unless it carries a traceparent.
	Trazador *traza.Trazador
}

// Puente turns legacy choreography messages into sagas (see the package
// documentation for the rules). Correr runs it.
type Puente struct {
	iniciador      Iniciador
	cliente        pulsar.Client
	fuente         FuenteEsquemas
	logger         *slog.Logger
	metricas       *bus.Metricas
	reintentos     bus.Reintentos
	resultados     *prometheus.CounterVec
	topicoCampania string
	topicoLanzar   string
	suscripcion    string
	trazador       *traza.Trazador

	muEsquemas sync.Mutex
	esquemas   map[versionEsquema]*avro.RecordSchema

	listo chan struct{}
}

type versionEsquema struct {
	topico  string
	version int64
}

// Nuevo builds a Puente; it does not connect until Correr.
func Nuevo(o Opciones) (*Puente, error) {
	var faltan []error
	if o.Iniciador == nil {
		faltan = append(faltan, errors.New("falta Iniciador"))
	}
	if o.Cliente == nil {
		faltan = append(faltan, errors.New("falta Cliente de pulsar"))
	}
	if o.Esquemas == nil {
		faltan = append(faltan, errors.New("falta la fuente de Esquemas"))
	}
	if err := errors.Join(faltan...); err != nil {
		return nil, fmt.Errorf("puente legado: %w", err)
	}
	p := &Puente{
		iniciador: o.Iniciador, cliente: o.Cliente, fuente: o.Esquemas, logger: o.Logger, metricas: o.Metricas,
		reintentos: o.Reintentos, trazador: o.Trazador,
		topicoCampania: o.TopicoCampania, topicoLanzar: o.TopicoLanzar, suscripcion: o.Suscripcion,
		esquemas: map[versionEsquema]*avro.RecordSchema{}, listo: make(chan struct{}),
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	p.logger = p.logger.With("componente", "puente-legado")
	if p.topicoCampania == "" {
		p.topicoCampania = eventos.TopicoLegacyCampania
	}
	if p.topicoLanzar == "" {
		p.topicoLanzar = eventos.TopicoLegacyLanzarCompleta
	}
	if p.suscripcion == "" {
		p.suscripcion = SuscripcionPorDefecto
	}
	reg := o.Registro
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if p.resultados, err = contadorPuente(reg); err != nil {
		return nil, err
	}
	for _, t := range []string{p.topicoCampania, p.topicoLanzar} {
		for _, r := range []string{ResultadoIniciada, ResultadoDuplicado, ResultadoDeadLetter} {
			p.resultados.WithLabelValues(bus.NombreTopico(t), r) // export zeros
		}
	}
	return p, nil
}

// contadorPuente registers sagas_puente_eventos_total on reg, or returns the
// one another bridge registered there before.
func contadorPuente(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sagas_puente_eventos_total",
		Help: "Legacy messages handled by the choreography bridge, by topic (full name) and result (iniciada, duplicado, dead_letter).",
	}, []string{"topic", "resultado"})
	if err := reg.Register(c); err != nil {
		var ya prometheus.AlreadyRegisteredError
		if errors.As(err, &ya) {
			if existente, ok := ya.ExistingCollector.(*prometheus.CounterVec); ok {
				return existente, nil
			}
		}
		return nil, fmt.Errorf("registrar sagas_puente_eventos_total: %w", err)
	}
	return c, nil
}

// Listo is closed once both subscriptions exist.
func (p *Puente) Listo() <-chan struct{} { return p.listo }

// Correr subscribes to both legacy topics and consumes until ctx ends, then
// lets the message in hand finish and closes the subscriptions. A Puente
// runs once.
func (p *Puente) Correr(ctx context.Context) error {
	ctx, cancelar := context.WithCancel(ctx)
	defer cancelar()
	var consumidores []*bus.Consumidor
	defer func() {
		cancelar() // bus.Consumidor.Close needs its context ended first
		for _, c := range consumidores {
			c.Close()
		}
	}()
	rutas := []struct {
		topico   string
		traducir func(registroAvro) (motor.Solicitud, error)
	}{
		{p.topicoCampania, solicitudCampana},
		{p.topicoLanzar, solicitudLanzamiento},
	}
	for _, r := range rutas {
		k, err := bus.Abrir(ctx, p.logger, "suscripción a "+r.topico, func() (*bus.Consumidor, error) {
			return bus.Consumir(ctx, p.cliente, bus.OpcionesConsumidor{
				Topico: r.topico, Suscripcion: p.suscripcion, Tipo: pulsar.Shared,
				// Legacy messages have no key, so the loop would hand them all
				// to one worker anyway; replicas share the subscription for scale.
				Trabajadores: 1,
				Reintentos:   p.reintentos,
				Logger:       p.logger, Metricas: p.metricas,
			}, p.manejador(r.topico, r.traducir))
		})
		if err != nil {
			return fmt.Errorf("iniciar puente legado: %w", err)
		}
		consumidores = append(consumidores, k)
	}
	p.logger.Info("puente legado iniciado", "topico_campania", p.topicoCampania, "topico_lanzar", p.topicoLanzar,
		"suscripcion", p.suscripcion)
	close(p.listo)
	<-ctx.Done()
	return nil
}

// manejador decodes a legacy message, builds its Solicitud and starts the
// saga. Permanent failures (poison messages, inputs the engine refuses) are
// dead-lettered by bus; any other failure is retried.
func (p *Puente) manejador(topico string, traducir func(registroAvro) (motor.Solicitud, error)) bus.Manejador {
	corto, etiqueta := nombreCortoTopico(topico), bus.NombreTopico(topico)
	return func(ctx context.Context, msg pulsar.Message) (err error) {
		ctx, span := p.trazador.IniciarEn(ctx, msg.Properties()[eventos.PropTraceparent], "legado "+corto,
			traza.Consumidor, traza.Atributos(attribute.String("messaging.destination.name", topico)))
		defer func() {
			traza.Fallo(span, err)
			span.End()
		}()
		sol, err := p.solicitud(ctx, topico, msg, traducir)
		var id string
		var creada bool
		if err == nil {
			id, creada, err = p.iniciador.Iniciar(ctx, sol)
			if id != "" {
				span.SetAttributes(traza.Saga(id, "")...)
			}
			// A launch id reused for another command cannot name a second
			// saga: refused, never merged (see claves.go). A launch id the
			// store cannot hold (longer than the key column) fails the same
			// way on every delivery.
			if errors.Is(err, motor.ErrEntradaInvalida) || errors.Is(err, almacen.ErrClaveReutilizada) ||
				errors.Is(err, almacen.ErrInvalido) {
				err = bus.Permanente(err)
			}
		}
		switch {
		case errors.Is(err, bus.ErrPermanente):
			p.resultados.WithLabelValues(etiqueta, ResultadoDeadLetter).Inc()
			return fmt.Errorf("puente legado %s: %w", corto, err)
		case err != nil:
			return fmt.Errorf("puente legado %s: %w", corto, err)
		case creada:
			p.resultados.WithLabelValues(etiqueta, ResultadoIniciada).Inc()
			p.logger.Info("mensaje legado: saga iniciada", "saga_id", id, "tipo", sol.Tipo, "topico", corto,
				"clave_idempotencia", sol.ClaveIdempotencia, "campania_id", sol.CampaniaID, "trace_id", traza.TraceIDDe(ctx))
		default:
			p.resultados.WithLabelValues(etiqueta, ResultadoDuplicado).Inc()
			p.logger.Info("mensaje legado repetido: la saga ya existía", "saga_id", id, "tipo", sol.Tipo, "topico", corto,
				"clave_idempotencia", sol.ClaveIdempotencia, "reentregas", msg.RedeliveryCount())
		}
		return nil
	}
}

func (p *Puente) solicitud(ctx context.Context, topico string, msg pulsar.Message,
	traducir func(registroAvro) (motor.Solicitud, error)) (motor.Solicitud, error) {
	r, err := p.decodificar(ctx, topico, msg)
	if err != nil {
		return motor.Solicitud{}, err
	}
	sol, err := traducir(r)
	if err != nil {
		return motor.Solicitud{}, bus.Permanente(err)
	}
	return sol, nil
}

// decodificar reads the message with the schema its producer wrote it with.
func (p *Puente) decodificar(ctx context.Context, topico string, msg pulsar.Message) (registroAvro, error) {
	v := msg.SchemaVersion()
	if len(v) != 8 {
		// Legacy producers always register their AvroSchema; a message without
		// a (long) schema version was not written by one.
		return registroAvro{}, bus.Permanente(fmt.Errorf("%w: sin versión de esquema Avro (%d bytes)", eventos.ErrMalformado, len(v)))
	}
	version := int64(binary.BigEndian.Uint64(v))
	esquema, err := p.esquema(ctx, topico, version)
	if err != nil {
		return registroAvro{}, err
	}
	return decodificarRegistro(esquema, msg.Payload())
}

// esquema returns the parsed writer schema of a version, from the cache or
// the registry. Versions are immutable, so the cache never goes stale.
func (p *Puente) esquema(ctx context.Context, topico string, version int64) (*avro.RecordSchema, error) {
	clave := versionEsquema{topico, version}
	p.muEsquemas.Lock()
	s, ok := p.esquemas[clave]
	p.muEsquemas.Unlock()
	if ok {
		return s, nil
	}
	tipo, texto, err := p.fuente.EsquemaVersion(ctx, topico, version)
	if errors.Is(err, bus.ErrEsquemaNoEncontrado) {
		return nil, bus.Permanente(fmt.Errorf("%w: %w", eventos.ErrMalformado, err))
	}
	if err != nil {
		return nil, fmt.Errorf("esquema %d de %s: %w", version, topico, err)
	}
	if !strings.EqualFold(tipo, "AVRO") {
		return nil, bus.Permanente(fmt.Errorf("%w: esquema %d de %s es %s, no AVRO", eventos.ErrMalformado, version, topico, tipo))
	}
	// A private cache per parse: versions of one topic reuse record names
	// with other fields, and avro.Parse would share them through its global cache.
	parsed, err := avro.ParseWithCache(texto, "", &avro.SchemaCache{})
	if err != nil {
		return nil, bus.Permanente(fmt.Errorf("%w: esquema %d de %s: %w", eventos.ErrMalformado, version, topico, err))
	}
	rec, ok := parsed.(*avro.RecordSchema)
	if !ok {
		return nil, bus.Permanente(fmt.Errorf("%w: esquema %d de %s no es un record sino %s", eventos.ErrMalformado, version, topico, parsed.Type()))
	}
	p.muEsquemas.Lock()
	p.esquemas[clave] = rec
	p.muEsquemas.Unlock()
	return rec, nil
}

// registroAvro is a decoded Avro record with its writer schema, read by
// field name.
//
// hamba/avro decodes a record into map[string]any by field name. A union
// value becomes nil for its null branch, the bare Go value for a primitive
// branch (string, int64 for long, int for int, float64 for double, bool, ...)
// and map[fullName]value for a named branch (record, enum, fixed), with the
// record itself again a map[string]any. campo undoes that wrapping with the
// writer schema, so a one-field record is never mistaken for a union.
type registroAvro struct {
	esquema *avro.RecordSchema
	valores map[string]any
}

func decodificarRegistro(esquema *avro.RecordSchema, carga []byte) (registroAvro, error) {
	var valores map[string]any
	if err := eventos.Avro.Unmarshal(esquema, carga, &valores); err != nil {
		return registroAvro{}, bus.Permanente(fmt.Errorf("%w: %s: %w", eventos.ErrMalformado, esquema.FullName(), err))
	}
	// The decoder accepts short input (missing fields read as zero) and
	// ignores trailing bytes. Avro's binary encoding is canonical, so only a
	// payload that is exactly one record encodes back to the same bytes.
	otra, err := eventos.Avro.Marshal(esquema, valores)
	if err != nil || !bytes.Equal(otra, carga) {
		return registroAvro{}, bus.Permanente(fmt.Errorf("%w: %d bytes no son un record %s", eventos.ErrMalformado, len(carga), esquema.FullName()))
	}
	return registroAvro{esquema: esquema, valores: valores}, nil
}

// campo returns the value of a field with its union unwrapped and the schema
// of that value; nil when the writer has no such field or wrote null.
func (r registroAvro) campo(nombre string) (any, avro.Schema) {
	for _, f := range r.esquema.Fields() {
		if f.Name() == nombre {
			return desenvolver(f.Type(), r.valores[nombre])
		}
	}
	return nil, nil
}

func desenvolver(s avro.Schema, v any) (any, avro.Schema) {
	u, ok := s.(*avro.UnionSchema)
	if !ok || v == nil {
		return v, s
	}
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, t := range u.Types() {
			nombre := string(t.Type())
			if n, ok := t.(avro.NamedSchema); ok {
				nombre = n.FullName()
			}
			if dentro, ok := m[nombre]; ok {
				return desenvolver(t, dentro)
			}
		}
	}
	for _, t := range u.Types() {
		if t.Type() != avro.Null {
			return v, t
		}
	}
	return v, s
}

// texto reads a string field; null or absent is "".
func (r registroAvro) texto(nombre string) (string, error) {
	v, _ := r.campo(nombre)
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	default:
		return "", fmt.Errorf("%w: campo %s es %T, se espera string", eventos.ErrMalformado, nombre, v)
	}
}

// numero reads a numeric field; null or absent is 0.
func (r registroAvro) numero(nombre string) (float64, error) {
	v, _ := r.campo(nombre)
	switch x := v.(type) {
	case nil:
		return 0, nil
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	default:
		return 0, fmt.Errorf("%w: campo %s es %T, se espera un número", eventos.ErrMalformado, nombre, v)
	}
}

// fecha reads epoch milliseconds (a long, or a timestamp-millis logical
// long); null or absent is nil.
func (r registroAvro) fecha(nombre string) (*time.Time, error) {
	v, _ := r.campo(nombre)
	var t time.Time
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		t = time.UnixMilli(x)
	case int:
		t = time.UnixMilli(int64(x))
	case time.Time:
		t = x
	default:
		return nil, fmt.Errorf("%w: campo %s es %T, se espera long (epoch ms)", eventos.ErrMalformado, nombre, v)
	}
	t = t.UTC()
	return &t, nil
}

// registro reads a nested record field; ok is false when it is null or absent.
func (r registroAvro) registro(nombre string) (registroAvro, bool, error) {
	v, s := r.campo(nombre)
	if v == nil {
		return registroAvro{}, false, nil
	}
	rec, ok1 := s.(*avro.RecordSchema)
	valores, ok2 := v.(map[string]any)
	if !ok1 || !ok2 {
		return registroAvro{}, false, fmt.Errorf("%w: campo %s es %T, se espera un record", eventos.ErrMalformado, nombre, v)
	}
	return registroAvro{esquema: rec, valores: valores}, true, nil
}

// sobreLegado is what every legacy message shares: the envelope id and the
// payload record.
type sobreLegado struct {
	id    string
	datos registroAvro
}

func leerSobre(r registroAvro) (sobreLegado, error) {
	id, err := r.texto("id")
	if err != nil {
		return sobreLegado{}, err
	}
	if id == "" {
		return sobreLegado{}, fmt.Errorf("%w: sobre %s sin id", eventos.ErrMalformado, r.esquema.FullName())
	}
	datos, ok, err := r.registro("data")
	if err != nil {
		return sobreLegado{}, err
	}
	if !ok {
		return sobreLegado{}, fmt.Errorf("%w: mensaje legado %s sin data", eventos.ErrMalformado, id)
	}
	return sobreLegado{id: id, datos: datos}, nil
}

// camposLegado reads the payload fields both legacy messages share.
type camposLegado struct {
	nombre, descripcion, tipo, canal, objetivo, moneda, segmento string
	presupuesto                                                  float64
	inicio, fin                                                  *time.Time
}

func leerCampos(d registroAvro) (camposLegado, error) {
	var c camposLegado
	var errs []error
	for _, t := range []struct {
		campo   string
		destino *string
	}{
		{"nombre", &c.nombre}, {"descripcion", &c.descripcion}, {"tipo", &c.tipo}, {"canal_publicidad", &c.canal},
		{"objetivo", &c.objetivo}, {"moneda", &c.moneda}, {"segmento_audiencia", &c.segmento},
	} {
		var err error
		*t.destino, err = d.texto(t.campo)
		errs = append(errs, err)
	}
	var err error
	c.presupuesto, err = d.numero("presupuesto")
	errs = append(errs, err)
	c.inicio, err = d.fecha("fecha_inicio")
	errs = append(errs, err)
	c.fin, err = d.fecha("fecha_fin")
	errs = append(errs, err)
	return c, errors.Join(errs...)
}

// solicitudCampana maps an EventoCampaniaCreada to a campana saga.
func solicitudCampana(r registroAvro) (motor.Solicitud, error) {
	s, err := leerSobre(r)
	if err != nil {
		return motor.Solicitud{}, err
	}
	idCampania, err := s.datos.texto("id_campania")
	if err != nil {
		return motor.Solicitud{}, err
	}
	if idCampania == "" {
		return motor.Solicitud{}, fmt.Errorf("%w: evento legado %s sin id_campania", eventos.ErrMalformado, s.id)
	}
	c, err := leerCampos(s.datos)
	if err != nil {
		return motor.Solicitud{}, fmt.Errorf("evento legado %s: %w", s.id, err)
	}
	datos, err := eventos.CodificarJSON(eventos.EntradaCampana{
		CampaniaID: idCampania, Nombre: c.nombre, Tipo: c.tipo, Presupuesto: c.presupuesto,
		Descripcion: c.descripcion, CanalPublicidad: c.canal, Objetivo: c.objetivo,
		SegmentoAudiencia: c.segmento, Moneda: c.moneda, FechaInicio: c.inicio, FechaFin: c.fin,
	})
	if err != nil {
		return motor.Solicitud{}, fmt.Errorf("evento legado %s: %w", s.id, err)
	}
	return motor.Solicitud{
		Tipo: saga.TipoCampana, Datos: datos, CampaniaID: idCampania,
		ClaveIdempotencia: ClaveEventoCampania(s.id, idCampania),
	}, nil
}

// solicitudLanzamiento maps a ComandoLanzarCampaniaCompleta to a
// lanzar-campania-completa saga named by the envelope id.
func solicitudLanzamiento(r registroAvro) (motor.Solicitud, error) {
	s, err := leerSobre(r)
	if err != nil {
		return motor.Solicitud{}, err
	}
	c, err := leerCampos(s.datos)
	if err != nil {
		return motor.Solicitud{}, fmt.Errorf("comando legado %s: %w", s.id, err)
	}
	campania := CampaniaDeLanzamiento(s.id)
	entrada := eventos.EntradaLanzamiento{
		CampaniaID: campania, Nombre: c.nombre, Descripcion: c.descripcion, Tipo: c.tipo,
		CanalPublicidad: c.canal, Objetivo: c.objetivo, Presupuesto: c.presupuesto, Moneda: c.moneda,
		Comision:            eventos.Comision{Tipo: comisionLegadoTipo, Valor: comisionLegadoValor},
		CriteriosAfiliados:  eventos.CriteriosAfiliados{SegmentoAudiencia: c.segmento},
		CanalesNotificacion: []string{canalLegado},
	}
	if c.inicio != nil {
		entrada.FechaInicio = *c.inicio
	}
	if c.fin != nil {
		entrada.FechaFin = *c.fin
	}
	datos, err := eventos.CodificarJSON(entrada)
	if err != nil {
		return motor.Solicitud{}, fmt.Errorf("comando legado %s: %w", s.id, err)
	}
	huella, err := huellaLanzamiento(c)
	if err != nil {
		return motor.Solicitud{}, fmt.Errorf("comando legado %s: %w", s.id, err)
	}
	return motor.Solicitud{
		Tipo: saga.TipoLanzarCampaniaCompleta, Datos: datos, SagaID: s.id, CampaniaID: campania,
		ClaveIdempotencia: ClaveLanzamiento(s.id), HuellaSolicitud: huella,
	}, nil
}

func nombreCortoTopico(topico string) string {
	if i := strings.LastIndex(topico, "/"); i >= 0 {
		return topico[i+1:]
	}
	return topico
}
