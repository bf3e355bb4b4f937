package mensajeria

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// Metricas are the counters and histograms of a participant's command path.
type Metricas struct {
	lotes      *prometheus.CounterVec
	comandos   *prometheus.CounterVec
	duracion   *prometheus.HistogramVec
	inyectados *prometheus.CounterVec
	invalidos  *prometheus.CounterVec
}

// NuevasMetricas registers the metrics of s's command path in reg, every
// series at zero from the start, so rates and alerts work before the first
// command.
func NuevasMetricas(reg prometheus.Registerer, s *servicio.Servicio) *Metricas {
	m := &Metricas{
		lotes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_participante_lotes_total",
			Help: "Batches of several commands, by service and result: confirmado (one transaction), uno_a_uno (rolled back and run one command at a time).",
		}, []string{"servicio", "resultado"}),
		comandos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagas_participante_comandos_total",
			Help: "Commands processed by a participant, by service, command, action and result (exito, fallo, duplicado, rechazado).",
		}, []string{"servicio", "comando", "accion", "resultado"}),
		duracion: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagas_participante_duracion_seconds",
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
	reg.MustRegister(m.lotes, m.comandos, m.duracion, m.inyectados, m.invalidos)
	m.inyectados.WithLabelValues(s.Nombre)
	m.lotes.WithLabelValues(s.Nombre, "confirmado")
	m.lotes.WithLabelValues(s.Nombre, "uno_a_uno")
	for _, op := range s.Operaciones {
		for _, r := range []string{bandeja.ResultadoExito, bandeja.ResultadoFallo, bandeja.ResultadoDuplicado, bandeja.ResultadoRechazado} {
			m.comandos.WithLabelValues(s.Nombre, op.Comando, eventos.Ejecutar, r)
			m.comandos.WithLabelValues(s.Nombre, op.Compensacion, eventos.Compensar, r)
		}
	}
	return m
}
