// Package api is the coordinator's HTTP API (echo): the seeds' endpoints to
// start and query sagas, the v1 resources for operators and the BFF, health,
// readiness, Prometheus metrics and the OpenAPI document.
//
// Starting a saga is asynchronous: a POST answers 202 with the saga id and a
// Location to poll. With ?esperar=<duration> it answers when the saga ends
// (200, the seeds' terminal shape), or 202 with the current state when the wait
// runs out. Waiting is event-driven through Esperas, never a poll loop.
//
// Every error leaves through one function (the echo HTTPErrorHandler) in one
// JSON format: {"error": "...", "campos": [{"campo": "...", "error": "..."}]}.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/inspector"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.opentelemetry.io/otel/attribute"
)

// Defaults and limits of the API.
const (
	// DireccionPorDefecto is the seeds' port.
	DireccionPorDefecto = ":8003"
	// LimiteCuerpoPorDefecto bounds request bodies (1 MiB).
	LimiteCuerpoPorDefecto = 1 << 20
	// EsperaMaxima bounds ?esperar=. An http.Server's WriteTimeout must be
	// longer than this (ServidorHTTP takes care of it).
	EsperaMaxima = 120 * time.Second
	// PlazoSaludPorDefecto bounds each readiness check.
	PlazoSaludPorDefecto = 2 * time.Second
)

// Iniciador starts sagas, retries stuck ones and cancels running ones
// (*motor.Motor).
type Iniciador interface {
	Iniciar(ctx context.Context, sol motor.Solicitud) (id string, creada bool, err error)
	Reintentar(ctx context.Context, sagaID string) error
	Cancelar(ctx context.Context, sagaID string) error
}

// Consultas reads sagas (the almacen.Store).
type Consultas interface {
	Saga(ctx context.Context, id string) (saga.Saga, error)
	Listar(ctx context.Context, f almacen.Filtro) ([]saga.Saga, error)
	Contar(ctx context.Context, f almacen.Filtro) (almacen.Resumen, error)
}

// Esperas lets a request wait for a saga to end (*motor.Avisos).
// Esperar registers a waiter whose channel is closed when the saga may have
// become terminal; cancel removes the waiter and must always be called.
type Esperas interface {
	Esperar(sagaID string) (aviso <-chan struct{}, cancel func())
}

// Comprobacion is one readiness check: nil when the dependency answers.
type Comprobacion func(ctx context.Context) error

// Opciones configure Nuevo. Iniciador, Consultas, Esperas and Outbox are required.
type Opciones struct {
	Iniciador Iniciador
	Consultas Consultas
	Esperas   Esperas
	// Outbox lists and re-sends parked outbox rows.
	Outbox Outbox
	// BaseDatos and Broker are the readiness checks of /readyz (for example
	// the store's Ping and a broker round trip). A nil check is not run.
	BaseDatos Comprobacion
	Broker    Comprobacion
	// PlazoSalud bounds each readiness check; default PlazoSaludPorDefecto.
	PlazoSalud time.Duration
	// PlazoAlmacen bounds each store call of a handler (a start, a read);
	// past it the answer is 503 with Retry-After. Default
	// PlazoAlmacenPorDefecto.
	PlazoAlmacen time.Duration
	// Registro receives the HTTP metrics and is served at /metrics; when nil
	// a private registry is used.
	Registro *prometheus.Registry
	// Token, when not empty, is the operator's bearer token, which every
	// route but /healthz, /readyz, /metrics, /openapi.json and the
	// inspector's page requires (SAGAS_API_TOKEN).
	Token string
	// TokenLectura, when not empty, is a second bearer token that opens the
	// GET routes only; the POSTs answer 403 to it (SAGAS_API_READ_TOKEN).
	// It needs Token and must differ from it.
	TokenLectura string
	// LimiteCuerpo bounds request bodies in bytes; default LimiteCuerpoPorDefecto.
	LimiteCuerpo int64
	// Catalogo is the engine's catalogue: the step names simular_fallo may
	// name and the tipos listings filter by; default saga.CatalogoPorDefecto().
	Catalogo saga.Catalogo
	Logger   *slog.Logger
	// Reloj is the clock of the audit log; default time.Now.
	Reloj func() time.Time
	// Trazador makes the span of each POST (nil: none). Either way a POST
	// runs in the trace of its traceparent header, or in a new one.
	Trazador *traza.Trazador
}

// servidor holds the handlers' dependencies.
type servidor struct {
	iniciador  Iniciador
	consultas  Consultas
	esperas    Esperas
	outbox     Outbox
	baseDatos  Comprobacion
	broker     Comprobacion
	plazoSalud time.Duration
	// plazoAlmacen bounds each store call of a handler.
	plazoAlmacen time.Duration
	token        []byte
	// tokenLectura opens the GET routes only.
	tokenLectura []byte
	limite       int64
	catalogo     saga.Catalogo
	// nombresPasos and sujeto are derived once from catalogo and token.
	nombresPasos map[string][]string
	// esquemas are the compiled input schemas of the tipos the generic
	// route starts.
	esquemas map[string]*jsonschema.Schema
	sujeto   string
	// documento is the OpenAPI document served at /openapi.json.
	documento []byte
	logger    *slog.Logger
	ahora     func() time.Time
	metricas  *metricas
	trazador  *traza.Trazador
}

// Nuevo builds the API's echo instance with every route registered. Serve it
// with ServidorHTTP (or any http.Server whose WriteTimeout exceeds
// EsperaMaxima). It fails when a required dependency is missing or the
// metrics cannot be registered.
func Nuevo(o Opciones) (*echo.Echo, error) {
	var faltan []error
	if o.Iniciador == nil {
		faltan = append(faltan, errors.New("falta Iniciador"))
	}
	if o.Consultas == nil {
		faltan = append(faltan, errors.New("falta Consultas"))
	}
	if o.Esperas == nil {
		faltan = append(faltan, errors.New("falta Esperas"))
	}
	if o.Outbox == nil {
		faltan = append(faltan, errors.New("falta Outbox"))
	}
	switch {
	case o.TokenLectura != "" && o.Token == "":
		faltan = append(faltan, errors.New("TokenLectura (SAGAS_API_READ_TOKEN) sin Token (SAGAS_API_TOKEN): un token de solo lectura no protege nada si las demás rutas quedan abiertas"))
	case o.TokenLectura != "" && o.TokenLectura == o.Token:
		faltan = append(faltan, errors.New("TokenLectura (SAGAS_API_READ_TOKEN) es igual a Token (SAGAS_API_TOKEN): el token de solo lectura debe ser otro"))
	}
	if o.LimiteCuerpo < 0 || o.PlazoSalud < 0 || o.PlazoAlmacen < 0 {
		faltan = append(faltan, errors.New("LimiteCuerpo, PlazoSalud y PlazoAlmacen no pueden ser negativos"))
	}
	if err := errors.Join(faltan...); err != nil {
		return nil, fmt.Errorf("api: opciones inválidas: %w", err)
	}
	s := &servidor{
		iniciador: o.Iniciador, consultas: o.Consultas, esperas: o.Esperas,
		baseDatos: o.BaseDatos, broker: o.Broker, plazoSalud: o.PlazoSalud,
		limite: o.LimiteCuerpo, catalogo: o.Catalogo, logger: o.Logger, ahora: o.Reloj, trazador: o.Trazador,
	}
	plazoAlmacen := o.PlazoAlmacen
	if plazoAlmacen == 0 {
		plazoAlmacen = PlazoAlmacenPorDefecto
	}
	s.iniciador = iniciadorConPlazo{o.Iniciador, plazoAlmacen}
	s.outbox, s.plazoAlmacen = o.Outbox, plazoAlmacen
	s.consultas = consultasConPlazo{o.Consultas, plazoAlmacen}
	if o.Token != "" {
		s.token = []byte(o.Token)
	}
	if o.TokenLectura != "" {
		s.tokenLectura = []byte(o.TokenLectura)
	}
	if s.plazoSalud == 0 {
		s.plazoSalud = PlazoSaludPorDefecto
	}
	if s.limite == 0 {
		s.limite = LimiteCuerpoPorDefecto
	}
	if s.catalogo == nil {
		s.catalogo = saga.CatalogoPorDefecto()
	}
	s.nombresPasos, s.sujeto = nombresPasos(s.catalogo), sujeto(s.token)
	esquemas, err := CompilarEsquemas(s.catalogo)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.esquemas = esquemas
	documento, err := documentoServido(len(s.token) > 0, s.tipos(), s.nombresPasos)
	if err != nil {
		return nil, err
	}
	s.documento = documento
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.ahora == nil {
		s.ahora = time.Now
	}
	registro := o.Registro
	if registro == nil {
		registro = prometheus.NewRegistry()
	}
	m, err := nuevasMetricas(registro)
	if err != nil {
		return nil, err
	}
	s.metricas = m

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.manejarError
	// Metrics are outermost: they see the status the error handler chose.
	// The token is checked before the body is read, so a caller without
	// one learns nothing about the body limit.
	e.Use(s.medir, s.trazar)

	e.GET("/healthz", s.vivo)
	e.GET("/readyz", s.listo)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(registro, promhttp.HandlerOpts{})))
	e.GET("/openapi.json", s.openAPI)

	e.POST(rutaCampana, s.iniciarCampana, s.autenticar(operar), s.limitarCuerpo)
	e.GET("/saga/:id_saga/estado", s.estado, s.autenticar(leer))
	e.POST(rutaLanzamiento, s.iniciarLanzamiento, s.autenticar(operar), s.limitarCuerpo)
	e.GET("/api/v1/sagas", s.listar, s.autenticar(leer))
	e.GET("/api/v1/sagas/activas", s.activas, s.autenticar(leer))
	e.GET("/api/v1/sagas/:saga_id", s.detalle, s.autenticar(leer))
	e.POST(rutaGenerica, s.iniciarGenerico, s.autenticar(operar), s.limitarCuerpo)
	e.POST("/api/v1/sagas/:saga_id/reintentar", s.reintentar, s.autenticar(operar))
	e.POST("/api/v1/sagas/:saga_id/cancelar", s.cancelar, s.autenticar(operar))
	e.GET("/api/v1/campanias", s.campanias, s.autenticar(leer))
	e.GET("/api/v1/outbox/aparcados", s.aparcados, s.autenticar(leer))
	e.POST("/api/v1/outbox/aparcados/:id/reenviar", s.reenviar, s.autenticar(operar))
	inspector.Rutas(e)
	return e, nil
}

// trazar runs each POST (what starts or changes a saga) in the trace of its
// W3C traceparent header, or in a new trace when the header is absent or
// invalid, within a server span when spans are exported. The engine stores
// that context with the saga it starts. A POST on an existing saga (a
// retry) runs in that saga's trace instead, so one saga stays one trace.
func (s *servidor) trazar(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodPost {
			return next(c)
		}
		ruta, tp := c.Path(), r.Header.Get("traceparent")
		if id := c.Param("saga_id"); id != "" && formatoID.MatchString(id) {
			if sg, err := s.consultas.Saga(r.Context(), id); err == nil && sg.Traceparent != "" {
				tp = sg.Traceparent
			}
		}
		ctx, span := s.trazador.IniciarEn(r.Context(), tp, r.Method+" "+ruta, traza.Servidor,
			traza.Atributos(attribute.String("http.request.method", r.Method), attribute.String("http.route", ruta),
				attribute.String("url.path", r.URL.Path)))
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		if span.IsRecording() {
			codigo := c.Response().Status
			var he *echo.HTTPError
			if err != nil && errors.As(err, &he) {
				codigo = he.Code
			}
			span.SetAttributes(attribute.Int("http.response.status_code", codigo))
			traza.Fallo(span, err)
			span.End()
		}
		return err
	}
}

// ServidorHTTP returns an http.Server for the API with timeouts that suit it:
// short for reading a request, longer than EsperaMaxima for writing the
// answer of a POST with ?esperar=.
func ServidorHTTP(direccion string, h http.Handler) *http.Server {
	if direccion == "" {
		direccion = DireccionPorDefecto
	}
	return &http.Server{
		Addr:              direccion,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      EsperaMaxima + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
