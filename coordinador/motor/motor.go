// Package motor is the saga engine: it starts sagas, feeds replies and
// deadlines to the pure state machine (package saga) and persists every
// transition with the messages it causes in one transaction (package
// almacen's outbox). It does no broker or HTTP I/O itself: the relay and
// consumers (package mensajeria), the legacy bridge (package puente) and the
// HTTP API (package api) call it, and observers (metrics, waiters, the relay's
// wake-up) hear about each committed transition.
package motor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/alpespartner/sagas/coordinador"
	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/google/uuid"
)

// ErrEntradaInvalida marks a saga input the engine refuses (bad JSON, unknown tipo).
var ErrEntradaInvalida = errors.New("entrada de saga inválida")

// EntradaDemasiadoGrandeError is a saga input larger than
// eventos.MaximoEntrada. It wraps ErrEntradaInvalida.
type EntradaDemasiadoGrandeError struct{ Bytes int }

func (e *EntradaDemasiadoGrandeError) Error() string {
	return fmt.Sprintf("%v: la entrada de la saga ocupa %d bytes codificada en JSON, más que el límite de %d bytes (eventos.MaximoEntrada)",
		ErrEntradaInvalida, e.Bytes, eventos.MaximoEntrada)
}

func (e *EntradaDemasiadoGrandeError) Unwrap() error { return ErrEntradaInvalida }

// Almacen is what the engine needs from persistence; *almacen.DB is one
// (see almacen.Store for the contract of each method).
type Almacen interface {
	CrearSaga(ctx context.Context, s saga.Saga, idem almacen.Idempotencia, msgs []almacen.Mensaje) (id string, creada bool, err error)
	Actualizar(ctx context.Context, sagaID, dedup string, fn func(saga.Saga) (almacen.Cambio, error)) error
	ActualizarLote(ctx context.Context, es []almacen.Entrada) []error
	ProcesarVencidas(ctx context.Context, ahora time.Time, limite int, fn func(saga.Saga) (almacen.Cambio, error)) (int, error)
}

// Motor runs sagas. Safe for concurrent use.
type Motor struct {
	store      Almacen
	catalogo   saga.Catalogo
	topologia  eventos.Topologia
	comandos   *eventos.Codec[eventos.Comando]
	eventos    *eventos.Codec[eventos.Evento]
	logger     *slog.Logger
	observador Observador
	ahora      func() time.Time
}

// Opciones configure Nuevo.
type Opciones struct {
	Store      Almacen
	Catalogo   saga.Catalogo
	Topologia  eventos.Topologia
	Comandos   *eventos.Codec[eventos.Comando]
	Eventos    *eventos.Codec[eventos.Evento]
	Logger     *slog.Logger
	Observador Observador       // optional
	Reloj      func() time.Time // optional, default time.Now
}

// Nuevo builds a Motor.
func Nuevo(o Opciones) *Motor {
	m := &Motor{
		store: o.Store, catalogo: o.Catalogo, topologia: o.Topologia, comandos: o.Comandos, eventos: o.Eventos,
		logger: o.Logger, observador: o.Observador, ahora: o.Reloj,
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.ahora == nil {
		m.ahora = time.Now
	}
	return m
}

// Solicitud asks to start a saga.
type Solicitud struct {
	Tipo  string
	Datos json.RawMessage // the saga's input (JSON object)
	// SagaID is optional: a legacy command names its saga; else a UUID is made.
	SagaID string
	// ClaveIdempotencia is optional: the same key returns the same saga.
	ClaveIdempotencia string
	// HuellaSolicitud is optional: the fingerprint of the request under
	// ClaveIdempotencia (at most 64 characters). The same key with another
	// fingerprint fails with almacen.ErrClaveReutilizada.
	HuellaSolicitud string
	CampaniaID      string
	UsuarioID       string
}

// Iniciar starts a saga, or returns the existing one for a repeated
// idempotency key or saga id (creada == false). A repeated key with another
// fingerprint is a *almacen.ClaveReutilizadaError. The saga is traced in the
// span context of ctx (package traza), or in a new trace when ctx has none.
func (m *Motor) Iniciar(ctx context.Context, sol Solicitud) (id string, creada bool, err error) {
	def, err := m.catalogo.Buscar(sol.Tipo)
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrEntradaInvalida, err)
	}
	if !json.Valid(sol.Datos) {
		return "", false, fmt.Errorf("%w: datos no son JSON válido", ErrEntradaInvalida)
	}
	if len(sol.Datos) > eventos.MaximoEntrada {
		return "", false, &EntradaDemasiadoGrandeError{Bytes: len(sol.Datos)}
	}
	if sol.SagaID == "" {
		sol.SagaID = uuid.NewString()
	}
	ahora := m.ahora().UTC()
	t := saga.Nueva(def, sol.SagaID, sol.Datos, ahora)
	t.Saga.CampaniaID, t.Saga.UsuarioID = sol.CampaniaID, sol.UsuarioID
	if t.Saga.Traceparent = traza.Traceparent(ctx); t.Saga.Traceparent == "" {
		t.Saga.Traceparent = traza.Nueva()
	}
	msgs, err := m.mensajes(t, ahora, "")
	if err != nil {
		return "", false, err
	}
	id, creada, err = m.store.CrearSaga(ctx, t.Saga, almacen.Idempotencia{Clave: sol.ClaveIdempotencia, Huella: sol.HuellaSolicitud}, msgs)
	if err != nil {
		return "", false, fmt.Errorf("guardar saga %s: %w", sol.SagaID, err)
	}
	if creada {
		m.logger.Info("saga iniciada", "saga_id", id, "tipo", sol.Tipo, "campania_id", sol.CampaniaID,
			"trace_id", traza.TraceID(t.Saga.Traceparent))
		m.observar(saga.Saga{}, t)
	}
	return id, creada, nil
}

// AplicarRespuesta feeds one participant reply. A duplicate returns nil and
// changes nothing (see AplicarRespuestas). The commands it causes are
// sent in the span context of ctx (the saga's own when ctx has none).
func (m *Motor) AplicarRespuesta(ctx context.Context, r eventos.Respuesta) error {
	return m.AplicarRespuestas(ctx, []eventos.Respuesta{r}, []string{traza.Traceparent(ctx)})[0]
}

// AplicarRespuestas feeds several replies in order, committed together when
// the store can (group commit), and returns one error per reply, as
// AplicarRespuesta would. trazas, when not nil, holds each reply's
// traceparent (the span of its handling): the commands it causes are sent in
// it; "" (or a nil trazas) sends them in the saga's.
func (m *Motor) AplicarRespuestas(ctx context.Context, rs []eventos.Respuesta, trazas []string) []error {
	es := make([]almacen.Entrada, len(rs))
	hechas := make([]transicionHecha, len(rs))
	for i := range rs {
		r := &rs[i]
		resp := saga.Respuesta{
			Paso: r.Paso, Accion: saga.Accion(r.Accion), Intento: r.Intento, Exito: r.Exito,
			Error: eventos.Valor(r.Error), Datos: datosJSON(r.Datos),
		}
		es[i] = almacen.Entrada{
			SagaID: r.SagaID, Dedup: claveRespuesta(r),
			Fn: m.funcion(&hechas[i], trazaDe(trazas, i), func(def *saga.Definicion, s saga.Saga, ahora time.Time) (saga.Transicion, error) {
				return saga.Aplicar(def, s, acotar(s, resp), ahora), nil
			}),
		}
	}
	errs := m.store.ActualizarLote(ctx, es)
	for i, err := range errs {
		switch {
		case errors.Is(err, almacen.ErrDuplicado):
			m.logger.Debug("respuesta duplicada", "saga_id", rs[i].SagaID, "paso", rs[i].Paso, "id", rs[i].ID,
				"trace_id", traza.TraceID(trazaDe(trazas, i)))
			errs[i] = nil
		case err == nil:
			m.hecha(rs[i].SagaID, hechas[i])
		}
	}
	return errs
}

// claveRespuesta is the inbox key of a reply: none for a reply that names
// its attempt. The saga's state already refuses a redelivered one, as it
// refuses a late one: a step's reply counts only while the step awaits that
// action (running or compensating), and a failed compensation only for the
// attempt in flight, whose number never repeats within a saga (see
// saga.Reintentar). So the redelivery costs one read and writes nothing. A
// reply without an attempt (a participant that does not echo it) would match
// any attempt's failure: the inbox keeps its id, and a redelivery of it is
// dropped before the read.
func claveRespuesta(r *eventos.Respuesta) string {
	if r.Intento > 0 {
		return ""
	}
	return "respuesta:" + r.ID
}

// Reintentar is the operator's retry of a COMPENSACION_FALLIDA saga.
func (m *Motor) Reintentar(ctx context.Context, sagaID string) error {
	return m.transicion(ctx, sagaID, "", func(def *saga.Definicion, s saga.Saga, ahora time.Time) (saga.Transicion, error) {
		return saga.Reintentar(def, s, ahora)
	})
}

// Cancelar is the operator's cancel of a running saga: it stops advancing
// and compensates every started step, then ends CANCELADA (saga.Cancelar).
// It goes through the store like a reply, with the same optimistic version
// check, so a reply and a cancel that race are applied one after the other,
// never both to the same version. A saga already cancelled or compensating
// is left as it is (nil); one that already ended is a
// *saga.NoCancelableError.
func (m *Motor) Cancelar(ctx context.Context, sagaID string) error {
	return m.transicion(ctx, sagaID, "", func(def *saga.Definicion, s saga.Saga, ahora time.Time) (saga.Transicion, error) {
		return saga.Cancelar(def, s, ahora)
	})
}

// VencerPlazos processes up to limite sagas whose deadline passed. It returns
// how many changed.
func (m *Motor) VencerPlazos(ctx context.Context, limite int) (int, error) {
	ahora := m.ahora().UTC()
	// fn may run more than once per saga (a conflicting write is retried):
	// keep only the last run's observation.
	hechos := map[string]func(){}
	n, err := m.store.ProcesarVencidas(ctx, ahora, limite, func(s saga.Saga) (almacen.Cambio, error) {
		def, err := m.catalogo.BuscarVersion(s.Tipo, s.VersionDefinicion)
		if err != nil {
			return almacen.Cambio{}, err
		}
		t := saga.Vencer(def, s, ahora)
		c, err := m.cambio(t, ahora, "")
		if err == nil && t.Cambio {
			antes := s
			hechos[s.ID] = func() { m.observar(antes, t) }
		}
		return c, err
	})
	// Sagas saved before another saga's error still happened: observe them.
	for _, f := range hechos {
		f()
	}
	if err != nil {
		return n, fmt.Errorf("vencer plazos: %w", err)
	}
	return n, nil
}

type paso func(def *saga.Definicion, s saga.Saga, ahora time.Time) (saga.Transicion, error)

// transicion applies f to the saga; its commands are sent in the span context
// of ctx (the saga's when ctx has none).
func (m *Motor) transicion(ctx context.Context, sagaID, dedup string, f paso) error {
	var h transicionHecha
	if err := m.store.Actualizar(ctx, sagaID, dedup, m.funcion(&h, traza.Traceparent(ctx), f)); err != nil {
		return err
	}
	m.hecha(sagaID, h)
	return nil
}

// transicionHecha is what the last run of a transition function decided.
type transicionHecha struct {
	antes saga.Saga
	t     saga.Transicion
}

// funcion turns f into the store's transition function; each run records
// its result in h (the store may run it more than once: the last run is the
// one committed). The commands are sent in traceparent tp ("": the saga's).
func (m *Motor) funcion(h *transicionHecha, tp string, f paso) func(saga.Saga) (almacen.Cambio, error) {
	return func(s saga.Saga) (almacen.Cambio, error) {
		def, err := m.catalogo.BuscarVersion(s.Tipo, s.VersionDefinicion)
		if err != nil {
			return almacen.Cambio{}, err
		}
		ahora := m.ahora().UTC()
		t, err := f(def, s, ahora)
		if err != nil {
			return almacen.Cambio{}, err
		}
		h.antes, h.t = s, t
		return m.cambio(t, ahora, tp)
	}
}

// hecha observes a committed transition.
func (m *Motor) hecha(sagaID string, h transicionHecha) {
	if h.t.Cambio {
		m.observar(h.antes, h.t)
	} else {
		m.logger.Debug(h.t.Motivo, "saga_id", sagaID, "trace_id", traza.TraceID(h.t.Saga.Traceparent))
	}
}

func (m *Motor) observar(antes saga.Saga, t saga.Transicion) {
	m.logger.Info(t.Motivo, "saga_id", t.Saga.ID, "tipo", t.Saga.Tipo, "estado", t.Saga.Estado,
		"trace_id", traza.TraceID(t.Saga.Traceparent))
	if m.observador != nil {
		m.observador.Transicion(antes, t.Saga, t)
	}
}

func (m *Motor) cambio(t saga.Transicion, ahora time.Time, tp string) (almacen.Cambio, error) {
	if !t.Cambio {
		return almacen.Cambio{Saga: t.Saga}, nil
	}
	msgs, err := m.mensajes(t, ahora, tp)
	return almacen.Cambio{Saga: t.Saga, Mensajes: msgs, Guardar: true}, err
}

// mensajes encodes the transition's commands, and its outcome event when the
// saga ended, as outbox rows carrying traceparent tp (the saga's when "";
// none for a saga stored before it had one).
func (m *Motor) mensajes(t saga.Transicion, ahora time.Time, tp string) ([]almacen.Mensaje, error) {
	if tp == "" {
		tp = t.Saga.Traceparent
	}
	var out []almacen.Mensaje
	for _, c := range t.Comandos {
		cmd := eventos.Comando{
			ID: uuid.NewString(), Time: eventos.Millis(ahora), SpecVersion: eventos.SpecVersion,
			Type: eventos.Tipo(c.Nombre), DataContentType: eventos.ContentTypeJSON, ServiceName: coordinador.Servicio,
			SagaID: c.SagaID, TipoSaga: c.Tipo, Paso: c.Paso, Accion: string(c.Accion), Intento: c.Intento,
			ClaveIdempotencia: c.Clave, Datos: string(c.Datos),
		}
		b, err := m.comandos.Codificar(cmd)
		if err != nil {
			return nil, err
		}
		out = append(out, almacen.Mensaje{
			Topico: m.topologia.Comandos(c.Servicio), Clave: c.SagaID, Tipo: cmd.Type, Carga: b, Creado: ahora,
			Propiedades: map[string]string{
				eventos.PropSagaID: c.SagaID, eventos.PropPaso: c.Paso, eventos.PropIntento: strconv.Itoa(c.Intento),
				eventos.PropTipo: cmd.Type,
			},
		})
		if tp != "" {
			out[len(out)-1].Propiedades[eventos.PropTraceparent] = tp
		}
	}
	if t.Terminada {
		ev := Resultado(t.Saga, ahora)
		b, err := m.eventos.Codificar(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, almacen.Mensaje{
			Topico: m.topologia.Eventos(), Clave: t.Saga.ID, Tipo: ev.Type, Carga: b, Creado: ahora,
			Propiedades: map[string]string{eventos.PropSagaID: t.Saga.ID, eventos.PropTipo: ev.Type},
		})
		if tp != "" {
			out[len(out)-1].Propiedades[eventos.PropTraceparent] = tp
		}
	}
	return out, nil
}

// Resultado is the outcome event of a terminal saga.
func Resultado(s saga.Saga, ahora time.Time) eventos.Evento {
	nombre := eventos.SagaCompletada
	switch s.Estado {
	case saga.Compensada:
		nombre = eventos.SagaCompensada
	case saga.CompensacionFallida:
		nombre = eventos.SagaCompensacionFallida
	case saga.Cancelada:
		nombre = eventos.SagaCancelada
	}
	return eventos.Evento{
		ID: s.ID + ":" + string(s.Estado) + ":" + strconv.FormatInt(s.Version+1, 10), Time: eventos.Millis(ahora),
		SpecVersion: eventos.SpecVersion, Type: eventos.Tipo(nombre), DataContentType: eventos.ContentTypeJSON,
		ServiceName: coordinador.Servicio, SagaID: s.ID, TipoSaga: s.Tipo, Estado: string(s.Estado),
		CampaniaID: eventos.Opcional(s.CampaniaID), PasosEjecutados: s.PasosEjecutados(),
		PasoFallido: eventos.Opcional(s.PasoFallido), Compensaciones: append([]string{}, s.Compensaciones...),
		Error: eventos.Opcional(s.Error), DuracionMs: s.Fin.Sub(s.Inicio).Milliseconds(),
	}
}

// trazaDe is trazas[i], "" when trazas has none.
func trazaDe(trazas []string, i int) string {
	if i < len(trazas) {
		return trazas[i]
	}
	return ""
}

func datosJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}
