package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
)

// salud is the body of /healthz and /readyz.
type salud struct {
	Estado string `json:"estado"` // ok | no_listo
	// Comprobaciones maps each readiness check to "ok" or "falla".
	Comprobaciones map[string]string `json:"comprobaciones,omitempty"`
	// Causas names, for each failed check, the class of its error
	// (tiempo_agotado, conexion_rechazada, conexion_cortada,
	// conexion_invalida, red or error); never the error's text.
	Causas map[string]string `json:"causas,omitempty"`
}

// vivo is GET /healthz: the process answers.
func (s *servidor) vivo(c echo.Context) error {
	return c.JSON(http.StatusOK, salud{Estado: "ok"})
}

// listo is GET /readyz: 200 only when every check answers in time, else 503
// naming the ones that failed (their errors go to the log, not to callers).
func (s *servidor) listo(c echo.Context) error {
	comprobaciones := map[string]Comprobacion{"base_de_datos": s.baseDatos, "broker": s.broker}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.plazoSalud)
	defer cancel()
	var (
		mu        sync.Mutex
		wg        sync.WaitGroup
		resultado = salud{Estado: "ok", Comprobaciones: map[string]string{}}
	)
	for nombre, probar := range comprobaciones {
		if probar == nil {
			continue
		}
		wg.Go(func() {
			err := probar(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.logger.Warn("comprobación de disponibilidad fallida", "comprobacion", nombre, "error", err)
				resultado.Estado, resultado.Comprobaciones[nombre] = "no_listo", "falla"
				clase := claseFalla(err)
				if clase == "" {
					clase = "error"
				}
				if resultado.Causas == nil {
					resultado.Causas = map[string]string{}
				}
				resultado.Causas[nombre] = clase
				return
			}
			resultado.Comprobaciones[nombre] = "ok"
		})
	}
	wg.Wait()
	if resultado.Estado != "ok" {
		c.Response().Header().Set("Retry-After", strconv.Itoa(SegundosReintento))
		return c.JSON(http.StatusServiceUnavailable, resultado)
	}
	return c.JSON(http.StatusOK, resultado)
}

// openAPI is GET /openapi.json: the document as this deployment makes it
// true (documentoServido).
func (s *servidor) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.documento)
}
