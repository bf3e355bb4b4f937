package participantes

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alpespartner/sagas/internal/acceso"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// RespuestaEfectos is the body of GET /efectos/{saga_id}.
type RespuestaEfectos struct {
	SagaID   string   `json:"saga_id"`
	Servicio string   `json:"servicio"`
	Activos  int      `json:"activos"`
	Efectos  []Efecto `json:"efectos"`
}

// Handler serves /metrics (the participant's registry), /healthz (the store
// answers), /readyz (the store answers and the consumer is subscribed and
// can reply: until then commands wait in the subscription), both as a status
// word, never the error, and /efectos/{saga_id} (the service's effects for a
// saga), all behind the bearer token SAGAS_METRICS_TOKEN when it is set.
func (p *Participante) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.registro, promhttp.HandlerOpts{Registry: p.registro}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.almacen.Ping(ctx); err != nil {
			// The detail goes to the log only: /healthz may be reachable by anyone.
			p.logger.Error("healthz: almacén no disponible", "err", err)
			http.Error(w, "no disponible", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.almacen.Ping(ctx); err != nil {
			p.logger.Error("readyz: almacén no disponible", "err", err)
			http.Error(w, "almacén no disponible", http.StatusServiceUnavailable)
			return
		}
		if !p.Consumiendo() {
			http.Error(w, "consumidor no iniciado", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("listo\n"))
	})
	mux.HandleFunc("GET /efectos/{saga_id}", func(w http.ResponseWriter, r *http.Request) {
		sagaID := r.PathValue("saga_id")
		efs, err := p.Efectos(r.Context(), sagaID)
		if err != nil {
			p.logger.Error("listar efectos", "saga_id", sagaID, "err", err)
			http.Error(w, "no se pudieron leer los efectos", http.StatusInternalServerError)
			return
		}
		cuerpo := RespuestaEfectos{SagaID: sagaID, Servicio: p.servicio.Nombre, Efectos: efs}
		if cuerpo.Efectos == nil {
			cuerpo.Efectos = []Efecto{}
		}
		cuerpo.Activos = servicio.Activos(efs)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(cuerpo)
	})
	return acceso.Portador(p.cfg.TokenHTTP, mux)
}

// Consumiendo reports whether the participant's consumer is subscribed to
// its commands and holds its reply producer.
func (p *Participante) Consumiendo() bool {
	c := p.consumidor.Load()
	if c == nil {
		return false
	}
	select {
	case <-c.Listo():
		return true
	default:
		return false
	}
}
