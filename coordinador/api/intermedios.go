package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// metricas are the API's Prometheus series.
type metricas struct {
	peticiones *prometheus.CounterVec
	duracion   *prometheus.HistogramVec
}

func nuevasMetricas(r prometheus.Registerer) (*metricas, error) {
	m := &metricas{
		peticiones: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_http_peticiones_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duracion: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sagas_http_duracion_seconds",
			Help: "HTTP request duration by route template and method (POSTs with ?esperar= last until the saga ends).",
			// Up to EsperaMaxima: a POST may wait for its saga.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{m.peticiones, m.duracion} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("registrar métricas HTTP: %w", err)
		}
	}
	return m, nil
}

// rutaSinCoincidencia labels requests no route matched, so a scan of
// random paths cannot create series.
const rutaSinCoincidencia = "sin_ruta"

// medir records every request under its route template (never the raw
// path). It hands errors to the error handler itself, so it sees the final
// status, and turns a handler's panic into a 500.
func (s *servidor) medir(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		inicio := time.Now()
		err := recuperar(next, c)
		if err != nil {
			c.Error(err)
		}
		ruta := c.Path()
		if ruta == "" || errors.Is(err, echo.ErrNotFound) {
			ruta = rutaSinCoincidencia
		}
		metodo, codigo, duracion := metodoConocido(c.Request().Method), c.Response().Status, time.Since(inicio)
		s.metricas.peticiones.WithLabelValues(ruta, metodo, strconv.Itoa(codigo)).Inc()
		s.metricas.duracion.WithLabelValues(ruta, metodo).Observe(duracion.Seconds())
		if ctx := c.Request().Context(); s.logger.Enabled(ctx, slog.LevelDebug) {
			s.logger.DebugContext(ctx, "petición HTTP", "ruta", ruta, "metodo", metodo, "codigo", codigo, "duracion", duracion)
		}
		return nil
	}
}

func recuperar(next echo.HandlerFunc, c echo.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pánico en %s %s: %v", c.Request().Method, c.Path(), r)
		}
	}()
	return next(c)
}

// metodoConocido bounds the method label to the standard methods.
func metodoConocido(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTRO"
}

// limitarCuerpo refuses a body whose declared length passes the limit
// without reading it, and caps what a handler can read from the others. It
// guards the routes that read a body; the others never read one.
func (s *servidor) limitarCuerpo(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.limite {
			return &http.MaxBytesError{Limit: s.limite}
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(c.Response().Writer, r.Body, s.limite)
		}
		return next(c)
	}
}

// permiso is what a route needs from the caller's token.
type permiso int

const (
	// leer: the GET routes, with the operator token or the read-only one.
	leer permiso = iota
	// operar: the POST routes (start, retry), with the operator token only.
	operar
)

// autenticar requires a bearer token when the operator token is set: the
// operator token opens every route; the read-only token, when set, opens
// the routes that need leer and answers 403 on the others. Both sides are
// hashed first, so the comparisons are constant-time whatever the lengths.
func (s *servidor) autenticar(p permiso) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if len(s.token) == 0 {
			return next
		}
		operador := sha256.Sum256(s.token)
		var lector [sha256.Size]byte
		if len(s.tokenLectura) > 0 {
			lector = sha256.Sum256(s.tokenLectura)
		}
		return func(c echo.Context) error {
			dado, ok := portador(c.Request().Header.Get(echo.HeaderAuthorization))
			h := sha256.Sum256([]byte(dado))
			esOperador := subtle.ConstantTimeCompare(h[:], operador[:]) == 1
			esLector := len(s.tokenLectura) > 0 && subtle.ConstantTimeCompare(h[:], lector[:]) == 1
			switch {
			case !ok || !esOperador && !esLector:
				return errNoAutorizado
			case esLector && p == operar:
				return errSoloLectura
			}
			return next(c)
		}
	}
}

// portador extracts the token of an "Authorization: Bearer <token>" header
// (the scheme is case-insensitive).
func portador(h string) (string, bool) {
	const esquema = "bearer "
	if len(h) <= len(esquema) || !strings.EqualFold(h[:len(esquema)], esquema) {
		return "", false
	}
	return strings.TrimSpace(h[len(esquema):]), true
}
