package motor

import (
	"context"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/prometheus/client_golang/prometheus"
)

// Metricas is an Observador that exports the engine's Prometheus metrics.
// Labels are bounded: tipo, estado, servicio, paso come from the catalogue,
// never a saga id.
type Metricas struct {
	iniciadas      *prometheus.CounterVec
	terminadas     *prometheus.CounterVec
	duracion       *prometheus.HistogramVec
	duracionPaso   *prometheus.HistogramVec
	compensaciones *prometheus.CounterVec
	reintentos     *prometheus.CounterVec
	vencimientos   *prometheus.CounterVec
}

// Lecturas is what the metrics read from the store at scrape time; *almacen.DB
// is one.
type Lecturas interface {
	Contar(ctx context.Context, f almacen.Filtro) (almacen.Resumen, error)
	Outbox(ctx context.Context) (pendientes int, masAntiguo time.Time, err error)
}

// NuevasMetricas registers the engine metrics on reg, plus gauges of in-flight
// sagas and outbox backlog read from store at scrape time (none when store is
// nil).
func NuevasMetricas(reg prometheus.Registerer, store Lecturas) *Metricas {
	m := &Metricas{
		iniciadas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_iniciadas_total", Help: "Sagas started, by tipo.",
		}, []string{"tipo"}),
		terminadas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_terminadas_total", Help: "Sagas that reached a terminal state, by tipo and estado.",
		}, []string{"tipo", "estado"}),
		duracion: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sagas_duracion_seconds", Help: "End-to-end saga duration, by tipo and final estado.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
		}, []string{"tipo", "estado"}),
		duracionPaso: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sagas_paso_duracion_seconds", Help: "Step duration from first command to reply, by tipo, servicio, paso and accion.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"tipo", "servicio", "paso", "accion"}),
		compensaciones: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_compensaciones_total", Help: "Completed step compensations, by tipo and servicio.",
		}, []string{"tipo", "servicio"}),
		reintentos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_reintentos_total", Help: "Commands re-sent (retries after a deadline or a failed compensation), by tipo, servicio and accion.",
		}, []string{"tipo", "servicio", "accion"}),
		vencimientos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_plazos_vencidos_total", Help: "Steps given up after their last attempt timed out, by tipo and servicio.",
		}, []string{"tipo", "servicio"}),
	}
	reg.MustRegister(m.iniciadas, m.terminadas, m.duracion, m.duracionPaso, m.compensaciones, m.reintentos, m.vencimientos)
	if store != nil {
		reg.MustRegister(&gaugesStore{store: store,
			enCurso: prometheus.NewDesc("sagas_en_curso", "Sagas not in a terminal state, by estado.", []string{"estado"}, nil),
			backlog: prometheus.NewDesc("sagas_outbox_pendientes", "Outbox rows not yet acknowledged by the broker.", nil, nil),
			edad:    prometheus.NewDesc("sagas_outbox_antiguedad_seconds", "Age of the oldest unsent outbox row (0 when empty).", nil, nil),
		})
	}
	return m
}

// Transicion implements Observador.
func (m *Metricas) Transicion(antes, despues saga.Saga, t saga.Transicion) {
	tipo := despues.Tipo
	if antes.ID == "" {
		m.iniciadas.WithLabelValues(tipo).Inc()
	}
	for _, c := range t.Comandos {
		if c.Intento > 1 {
			m.reintentos.WithLabelValues(tipo, c.Servicio, string(c.Accion)).Inc()
		}
	}
	for i := range despues.Pasos {
		d := &despues.Pasos[i]
		var a saga.EstadoDePaso
		if i < len(antes.Pasos) {
			a = antes.Pasos[i]
		}
		if a.Estado == saga.PasoEjecutando && d.Estado != saga.PasoEjecutando && !d.Fin.IsZero() {
			m.duracionPaso.WithLabelValues(tipo, d.Servicio, d.Nombre, string(saga.Ejecutar)).Observe(d.Fin.Sub(d.Inicio).Seconds())
			if strings.HasSuffix(d.Error, "(timeout)") {
				m.vencimientos.WithLabelValues(tipo, d.Servicio).Inc()
			}
		}
		if a.Estado == saga.PasoCompensando && d.Estado == saga.PasoCompensado {
			m.compensaciones.WithLabelValues(tipo, d.Servicio).Inc()
			m.duracionPaso.WithLabelValues(tipo, d.Servicio, d.Nombre, string(saga.Compensar)).Observe(d.FinCompensacion.Sub(d.InicioCompensacion).Seconds())
		}
	}
	if t.Terminada {
		m.terminadas.WithLabelValues(tipo, string(despues.Estado)).Inc()
		m.duracion.WithLabelValues(tipo, string(despues.Estado)).Observe(despues.Fin.Sub(despues.Inicio).Seconds())
	}
}

// gaugesStore reads in-flight sagas and outbox backlog at scrape time.
type gaugesStore struct {
	store                  Lecturas
	enCurso, backlog, edad *prometheus.Desc
}

func (g *gaugesStore) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.enCurso
	ch <- g.backlog
	ch <- g.edad
}

func (g *gaugesStore) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	activos := []saga.Estado{saga.Iniciada, saga.EnProgreso, saga.Compensando}
	if r, err := g.store.Contar(ctx, almacen.Filtro{Estados: activos}); err == nil {
		for _, e := range activos {
			ch <- prometheus.MustNewConstMetric(g.enCurso, prometheus.GaugeValue, float64(r[e]), string(e))
		}
	}
	if n, viejo, err := g.store.Outbox(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(g.backlog, prometheus.GaugeValue, float64(n))
		edad := 0.0
		if !viejo.IsZero() {
			edad = time.Since(viejo).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(g.edad, prometheus.GaugeValue, edad)
	}
}
