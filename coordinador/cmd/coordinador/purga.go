package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/bitacora"
	"github.com/alpespartner/sagas/internal/ciclo"
)

// purgador removes, every cfg.IntervaloRetencion, what is older than
// cfg.Retencion and no longer needed: finished sagas with their steps, inbox
// keys and per-saga log files (almacen.DB.Purgar, bitacora.Purgar). Replicas
// may purge at once.
func purgador(cfg config, store *almacen.DB, reloj *almacen.Reloj, bit *bitacora.Bitacora, reg prometheus.Registerer, logger *slog.Logger) ciclo.Componente {
	purgados := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sagas_purgados_total",
		Help: "Rows and files removed by retention (SAGAS_RETENTION), by kind: sagas (with their steps), inbox keys, per-saga log files.",
	}, []string{"tipo"})
	reg.MustRegister(purgados)
	for _, t := range []string{"sagas", "inbox", "bitacora"} {
		purgados.WithLabelValues(t) // export zeros
	}
	return ciclo.Cada("purga", cfg.IntervaloRetencion, func(ctx context.Context) error {
		antes := reloj.Ahora().Add(-cfg.Retencion) // sagas end on the database's clock
		p, err := store.Purgar(ctx, antes)
		archivos, errArchivos := bit.Purgar(time.Now().Add(-cfg.Retencion)) // files on this host's
		purgados.WithLabelValues("sagas").Add(float64(p.Sagas))
		purgados.WithLabelValues("inbox").Add(float64(p.Inbox))
		purgados.WithLabelValues("bitacora").Add(float64(archivos))
		if p.Sagas+p.Inbox+archivos > 0 {
			logger.Info("purga", "antes_de", antes.UTC().Format(time.RFC3339), "sagas", p.Sagas, "inbox", p.Inbox, "archivos", archivos)
		}
		return errors.Join(err, errArchivos)
	}, logger)
}
