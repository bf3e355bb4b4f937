// Package participantes is the runtime shared by the saga participants: each
// service (influencer, marca, tracking, afiliados, comisiones, notificaciones)
// is its own process that declares a Servicio and hands it to Correr.
//
// Per command the runtime consumes comandos-<servicio> (Key_Shared by
// saga_id), decodes and validates it (a poison message is dead-lettered),
// records (saga_id, paso, accion) in its inbox in the same local transaction
// as the effect, replies on respuestas-saga after the commit, and acks the
// command only once the broker has acknowledged the reply. A redelivered
// command re-sends the stored reply and changes nothing; a compensation that
// arrives before its action is recorded and answered as done, and the late
// action is refused. Each service keeps its own store (SQLite by default, or a
// MySQL database per service) with domain tables that say what was done.
//
// A service is data plus functions: a Servicio names the service, its
// tables (portable SQL), its seed rows, its operations (command, its
// compensation, and a function for each that runs inside the local
// transaction) and its tables of effects. The command binaries under
// participantes/<servicio> are one call to Correr each.
//
// The runtime has the coordinator's shape: package bandeja holds the inbox
// rules as a pure decision, almacen the SQL store that applies it, mensajeria
// the Pulsar adapter, fallos the failure injection, and servicio the
// declaration types this package re-exports. This package wires them.
//
// Configuration (environment, validated at start with every problem reported
// at once; -check-config validates and exits):
//
//	SAGAS_PULSAR_URL        pulsar://127.0.0.1:6650
//	SAGAS_PULSAR_ADMIN_URL  http://127.0.0.1:8080
//	SAGAS_PULSAR_TENANT     alpespartner
//	SAGAS_PULSAR_NAMESPACE  sagas
//	SAGAS_STORAGE_TYPE      sqlite | mysql (default sqlite)
//	SAGAS_DATA_DIR          .run/data (SQLite file participante-<servicio>.db)
//	SAGAS_DB_HOST, SAGAS_DB_PORT, SAGAS_DB_USER, SAGAS_DB_PASSWORD
//	                        127.0.0.1, 3306, sagas, sagas123 (the password
//	                        default only on loopback; MySQL database
//	                        participante_<servicio>), or SAGAS_DB_DSN;
//	                        SAGAS_DB_TLS, SAGAS_DB_TLS_CA_FILE; *_FILE twins
//	SAGAS_DB_MIGRATION_USER when set, only -preparar changes the schema (as
//	                        this user) and the runtime checks its version
//	SAGAS_DB_PREFIJO        participante_ (MySQL database name prefix)
//	SAGAS_METRICS_ADDR      127.0.0.1:0 (/metrics, /healthz, /readyz, /efectos/{saga_id});
//	                        off loopback it needs SAGAS_METRICS_TOKEN (or
//	                        SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on)
//	SAGAS_METRICS_TOKEN     bearer token of every route there (or _FILE)
//	SAGAS_FALLOS            no | semillas (the seeds' failure rate of the service)
//	SAGAS_TASA_FALLO        0..1, overrides the rate (and turns injection on)
//	SAGAS_SEMILLA           RNG seed of the injection (default from the clock)
//	SAGAS_LATENCIA          delay added to every command, e.g. 20ms
//	SAGAS_LOG_LEVEL         debug | info | warn | error (default info)
//	SAGAS_TRABAJADORES      command workers, 1..256 (default 2); each runs the
//	                        commands queued for it in one transaction
//
// The saga input may force failures: simular_fallo naming a step (or the
// service) fails that step's action, recorded as final; and
// simular_fallo_compensacion fails its compensation every time, never
// recorded, which lets a test or a demo reach COMPENSACION_FALLIDA.
//
// The package imports nothing of the coordinator: the two sides share only
// packages eventos and esquemas.
package participantes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/ciclo"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/alpespartner/sagas/internal/version"
	"github.com/alpespartner/sagas/participantes/almacen"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/fallos"
	"github.com/alpespartner/sagas/participantes/mensajeria"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// The declaration of a service lives in package servicio, so that the
// runtime's store and adapter can use it without importing this package;
// services use it through these names.
type (
	// Servicio declares one participant: its name, its domain tables, the
	// commands it serves and the effects it can list.
	Servicio = servicio.Servicio
	// Operacion is one command a service serves and the command that undoes it.
	Operacion = servicio.Operacion
	// Manejador runs one command inside the local transaction.
	Manejador = servicio.Manejador
	// Ejecutor runs SQL; *sql.Tx and *sql.DB implement it.
	Ejecutor = servicio.Ejecutor
	// Peticion is what a Manejador gets to know about its command.
	Peticion = servicio.Peticion
	// ErrorNegocio is a business failure of an action (see Rechazar).
	ErrorNegocio = servicio.ErrorNegocio
	// Semilla is a set of rows a migration inserts when they are missing.
	Semilla = servicio.Semilla
	// TablaEfectos describes a domain table of effects.
	TablaEfectos = servicio.TablaEfectos
	// Efecto is one row of a table of effects.
	Efecto = servicio.Efecto
	// FalloSemilla is a failure rate and message copied from the seeds.
	FalloSemilla = servicio.FalloSemilla
)

// Results counted by sagas_participante_comandos_total.
const (
	ResultadoExito     = bandeja.ResultadoExito     // replied exito=true
	ResultadoFallo     = bandeja.ResultadoFallo     // replied exito=false (business or injected failure)
	ResultadoDuplicado = bandeja.ResultadoDuplicado // a redelivery: the stored reply was sent again
	ResultadoRechazado = bandeja.ResultadoRechazado // an action that came after its compensation
)

// Momento formats t as stored in the domain and inbox tables: UTC with
// millisecond precision, a fixed width so that the text sorts as time does.
func Momento(t time.Time) string { return servicio.Momento(t) }

// Rechazar returns a business failure with the reason sent in the reply.
func Rechazar(motivo string) error { return servicio.Rechazar(motivo) }

// CambiarEstado moves the rows of one saga step in tabla from estado desde to
// hasta and returns how many changed. tabla is a constant of the caller,
// never input.
func CambiarEstado(ctx context.Context, tx Ejecutor, tabla string, p Peticion, desde, hasta string) (int64, error) {
	return servicio.CambiarEstado(ctx, tx, tabla, p, desde, hasta)
}

// Deshacer is the usual compensation: it moves the step's effect rows in
// tabla from desde to hasta and reports how many, under the key salida.
func Deshacer(tabla, desde, hasta, salida string) Manejador {
	return servicio.Deshacer(tabla, desde, hasta, salida)
}

// Detalle marshals v for a detalle column.
func Detalle(v any) (string, error) { return servicio.Detalle(v) }

// Participante is one service's runtime resources: its store, its metrics
// registry and its failure injector. Build it with Nuevo, serve its Handler,
// run its Consumidor, and Close it last.
type Participante struct {
	cfg         Config
	servicio    Servicio
	logger      *slog.Logger
	registro    *prometheus.Registry
	metricas    *mensajeria.Metricas
	metricasBus *bus.Metricas
	almacen     *almacen.Almacen
	inyector    *fallos.Inyector
	trazador    *traza.Trazador
	// consumidor is the last one Consumidor built: /readyz answers for it.
	consumidor atomic.Pointer[mensajeria.Consumidor]
}

// Nuevo validates the declaration, opens the service's store and migrates
// it. Its metrics go to a registry of its own (Registro).
func Nuevo(ctx context.Context, cfg Config, s Servicio, logger *slog.Logger) (*Participante, error) {
	if err := errors.Join(s.Validar(), cfg.Validar()); err != nil {
		return nil, err
	}
	if cfg.Servicio != s.Nombre {
		return nil, fmt.Errorf("la configuración es de %q y el servicio es %q", cfg.Servicio, s.Nombre)
	}
	trazador, err := traza.Nuevo(cfg.Traza, s.Nombre)
	if err != nil {
		return nil, err
	}
	a, err := almacen.Abrir(ctx, opcionesAlmacen(cfg, false), &s)
	if err != nil {
		return nil, err
	}
	if trazador.Activo() {
		logger.Info("trazas exportadas por OTLP", "endpoint", cfg.Traza.Endpoint)
	}
	logger.Info("almacén abierto", "almacen", a.Tipo(), "donde", a.Donde(), "semilla", cfg.Fallos.Semilla)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Metrica(),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "sagas_participante_acciones_un_viaje_total",
			Help:        "Actions applied in one round trip to MySQL on their first delivery, without reading the step's inbox first.",
			ConstLabels: prometheus.Labels{"servicio": s.Nombre},
		}, func() float64 { n, _ := a.UnViaje(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "sagas_participante_acciones_un_viaje_repetidas_total",
			Help:        "One-round-trip attempts rolled back (the step had inbox rows, or an error) and applied the usual way.",
			ConstLabels: prometheus.Labels{"servicio": s.Nombre},
		}, func() float64 { _, n := a.UnViaje(); return float64(n) }))
	return &Participante{
		cfg: cfg, servicio: s, logger: logger, registro: reg,
		metricas: mensajeria.NuevasMetricas(reg, &s), metricasBus: bus.NuevasMetricas(reg),
		almacen: a, inyector: inyectorDe(s, cfg.Fallos), trazador: trazador,
	}, nil
}

// opcionesAlmacen are the store's options of cfg: for the runtime (with a
// migration user configured, it only checks the schema) or, with
// migracion, for the migration user.
func opcionesAlmacen(cfg Config, migracion bool) almacen.Opciones {
	o := almacen.Opciones{
		Tipo:          cfg.Almacen,
		RutaSQLite:    cfg.RutaSQLite,
		MySQL:         almacen.ServidorMySQL{Config: cfg.MySQL.Servidor.Config(""), BaseDatos: cfg.MySQL.BaseDatos},
		Conexiones:    cfg.Trabajadores + 4,
		SoloComprobar: cfg.MySQL.Servidor.ConMigracionAparte(),
		ComandoMigrar: cfg.Servicio + " -preparar",
	}
	if migracion {
		o.MySQL.Config = cfg.MySQL.Servidor.ConfigMigracion("")
		o.SoloComprobar = false
	}
	return o
}

// Migrar is a participant's -preparar: it creates the service's database
// when missing (MySQL) and brings its schema to the binary's version as the
// migration user (SAGAS_DB_MIGRATION_USER, or SAGAS_DB_USER when none is
// configured), then closes it.
func Migrar(ctx context.Context, cfg Config, s Servicio) error {
	if err := errors.Join(s.Validar(), cfg.Validar()); err != nil {
		return err
	}
	if cfg.Almacen == AlmacenMySQL {
		if err := cfg.MySQL.Servidor.ValidarMigracion(); err != nil {
			return err
		}
	}
	return almacen.Migrar(ctx, opcionesAlmacen(cfg, true), &s)
}

// inyectorDe is the failure injector of s as configured: off unless
// SAGAS_FALLOS or SAGAS_TASA_FALLO turn it on.
func inyectorDe(s Servicio, cfg ConfigFallos) *fallos.Inyector {
	return fallos.NuevoInyector(s.Nombre, cfg.TasaEfectiva(s.FalloSemilla.Tasa), s.FalloSemilla.Mensaje, cfg.Semilla)
}

// Consumidor builds the component that consumes the service's commands
// through cliente; run it with its Correr.
func (p *Participante) Consumidor(cliente pulsar.Client) (*mensajeria.Consumidor, error) {
	c, err := mensajeria.Nuevo(cliente, p.almacen, p.servicio, mensajeria.Opciones{
		Topologia:    p.cfg.Topologia,
		Particiones:  p.cfg.Particiones,
		AdminURL:     p.cfg.PulsarAdminURL,
		Seguridad:    p.cfg.Seguridad,
		Trabajadores: p.cfg.Trabajadores,
		Reintentos:   p.cfg.Reintentos,
		Latencia:     p.cfg.Fallos.Latencia,
		Inyector:     p.inyector,
		Metricas:     p.metricas,
		MetricasBus:  p.metricasBus,
		Logger:       p.logger,
		Trazador:     p.trazador,
	})
	if err != nil {
		return nil, err
	}
	p.consumidor.Store(c)
	return c, nil
}

// Registro is the participant's metrics registry, served on /metrics:
// sagas_build_info, the command path's metrics, and those of the Pulsar
// client Correr opens.
func (p *Participante) Registro() *prometheus.Registry { return p.registro }

// Efectos lists the service's effects for a saga, active or undone.
func (p *Participante) Efectos(ctx context.Context, sagaID string) ([]Efecto, error) {
	return p.almacen.Efectos(ctx, sagaID)
}

// EfectosActivos counts the service's effects in force for a saga: zero
// after every step of the saga was compensated (or never ran).
func (p *Participante) EfectosActivos(ctx context.Context, sagaID string) (int, error) {
	efs, err := p.Efectos(ctx, sagaID)
	if err != nil {
		return 0, err
	}
	return servicio.Activos(efs), nil
}

// Close closes the store. Run it after the consumer has stopped.
func (p *Participante) Close() error {
	return errors.Join(p.trazador.Cerrar(context.Background()), p.almacen.Close())
}

// purgador removes, every SAGAS_RETENTION_INTERVAL, the inbox rows and step
// locks older than SAGAS_RETENTION (almacen.Almacen.Purgar), counting them in
// sagas_participante_purgados_total.
func (p *Participante) purgador() ciclo.Componente {
	purgados := prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "sagas_participante_purgados_total",
		Help:        "Inbox rows removed by retention (SAGAS_RETENTION).",
		ConstLabels: prometheus.Labels{"servicio": p.servicio.Nombre},
	})
	p.registro.MustRegister(purgados)
	return ciclo.Cada("purga", p.cfg.IntervaloRetencion, func(ctx context.Context) error {
		antes := time.Now().Add(-p.cfg.Retencion)
		n, err := p.almacen.Purgar(ctx, antes)
		purgados.Add(float64(n))
		if n > 0 {
			p.logger.Info("purga", "antes_de", antes.UTC().Format(time.RFC3339), "filas_bandeja", n)
		}
		return err
	}, p.logger)
}
