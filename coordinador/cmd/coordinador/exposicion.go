package main

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"time"

	"github.com/alpespartner/sagas/internal/acceso"
	"github.com/alpespartner/sagas/internal/ciclo"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// exponer decides what the process's listeners serve (docs/production.md,
// Exposure): it returns the handler to serve on the API listener (apiHandler
// without /metrics unless cfg.metricasEnAPI) and, when SAGAS_METRICS_ADDR is
// set, the component that serves reg on a listener of its own behind
// SAGAS_METRICS_TOKEN. It logs a warning for every listener that answers off
// loopback without authentication, and one when /metrics is served nowhere.
func exponer(cfg config, apiHandler http.Handler, reg *prometheus.Registry, logger *slog.Logger) (http.Handler, []ciclo.Parte) {
	for _, ln := range cfg.listeners() {
		if ln.Abierto() {
			logger.Warn(configuracion.AvisoAbierto(ln))
		}
	}
	var partes []ciclo.Parte
	switch {
	case cfg.MetricsAddr != "":
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		srv := &http.Server{Addr: cfg.MetricsAddr, Handler: acceso.Portador(cfg.MetricsToken, mux), ReadHeaderTimeout: 5 * time.Second}
		partes = append(partes, ciclo.Parte{Nombre: "metricas", Componente: servidorMetricas{ciclo.NuevoServidorHTTP(srv, time.Second, logger), logger}})
	case !cfg.metricasEnAPI():
		logger.Warn("/metrics no se sirve: SAGAS_API_HOST no es loopback y SAGAS_METRICS_ADDR no está definida")
	}
	if cfg.metricasEnAPI() {
		return apiHandler, partes
	}
	return sinMetricas(apiHandler), partes
}

// servidorMetricas is the metrics listener; it logs the address it got
// (SAGAS_METRICS_ADDR may ask for port 0).
type servidorMetricas struct {
	*ciclo.ServidorHTTP
	logger *slog.Logger
}

// Correr serves until ctx ends (ciclo.ServidorHTTP.Correr).
func (s servidorMetricas) Correr(ctx context.Context) error {
	go func() {
		select {
		case <-s.Listo():
			s.logger.Info("métricas escuchando", "direccion", s.Direccion(), "rutas", []string{"/metrics"})
		case <-ctx.Done():
		}
	}()
	return s.ServidorHTTP.Correr(ctx)
}

// sinMetricas answers 404 to /metrics and passes every other request to h.
func sinMetricas(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Clean("/"+r.URL.Path) == "/metrics" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
