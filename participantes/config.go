package participantes

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/traza"
)

// Store types.
const (
	AlmacenSQLite = "sqlite"
	AlmacenMySQL  = "mysql"
)

// Config is a participant's configuration, read once from the environment by
// LeerConfig and passed down.
type Config struct {
	Servicio       string
	PulsarURL      string // SAGAS_PULSAR_URL
	PulsarAdminURL string // SAGAS_PULSAR_ADMIN_URL
	// Seguridad is SAGAS_PULSAR_AUTH and its family: credentials and TLS
	// trust for the broker and its admin API.
	Seguridad bus.Seguridad
	// Topologia is SAGAS_PULSAR_TENANT / SAGAS_PULSAR_NAMESPACE.
	Topologia eventos.Topologia
	// Particiones is SAGAS_PULSAR_PARTITIONS: the partition count the
	// start-up check expects of the service's command and reply topics (0
	// counts as 1: non-partitioned).
	Particiones int
	// Almacen is SAGAS_STORAGE_TYPE: sqlite or mysql.
	Almacen string
	// RutaSQLite is ${SAGAS_DATA_DIR}/participante-<servicio>.db.
	RutaSQLite string
	MySQL      ConfigMySQL
	// DireccionHTTP is SAGAS_METRICS_ADDR, where /metrics, /healthz, /readyz and
	// /efectos/{saga_id} are served (port 0 picks a free port).
	DireccionHTTP string
	// TokenHTTP is SAGAS_METRICS_TOKEN (or the content of
	// SAGAS_METRICS_TOKEN_FILE): when set, every route at DireccionHTTP
	// needs it as a bearer token.
	TokenHTTP string
	// DireccionPprof is SAGAS_PPROF_ADDR: where net/http/pprof is served on a
	// listener of its own ("" = off).
	DireccionPprof string
	// SinAutenticacion is SAGAS_HTTP_ALLOW_UNAUTHENTICATED: DireccionHTTP
	// and DireccionPprof may be off loopback without a token.
	SinAutenticacion bool
	Fallos           ConfigFallos
	// NivelLog is SAGAS_LOG_LEVEL.
	NivelLog slog.Level
	// Retencion is SAGAS_RETENTION (0 = off): inbox rows and step locks
	// older than this are purged every IntervaloRetencion
	// (SAGAS_RETENTION_INTERVAL).
	Retencion          time.Duration
	IntervaloRetencion time.Duration
	// Trabajadores is SAGAS_CONSUMER_WORKERS (deprecated alias
	// SAGAS_TRABAJADORES): commands of different sagas processed in parallel.
	Trabajadores int
	// Reintentos is SAGAS_MAX_REDELIVERIES, SAGAS_REDELIVERY_DELAY and
	// SAGAS_REDELIVERY_DELAY_MAX: how a command that failed transiently is
	// retried before it is dead-lettered.
	Reintentos bus.Reintentos
	// Traza is OTEL_EXPORTER_OTLP_*: where the spans of the command path
	// go (none when unset).
	Traza traza.Config
}

// ConfigMySQL says where the service's own MySQL database lives. The
// provisioning step (-preparar) creates it when missing.
type ConfigMySQL struct {
	// Servidor is SAGAS_DB_DSN or SAGAS_DB_HOST/_PORT/_USER/_PASSWORD, with
	// SAGAS_DB_TLS and the migration user.
	Servidor  basedatos.Servidor
	BaseDatos string // SAGAS_DB_PREFIJO + servicio
}

// ConfigFallos configures failure injection, off by default.
type ConfigFallos struct {
	// Semillas is SAGAS_FALLOS=semillas: the seeds' failure rate of the service.
	Semillas bool
	// Tasa is SAGAS_TASA_FALLO: when set, the failure rate, whatever
	// SAGAS_FALLOS says.
	Tasa *float64
	// Semilla is SAGAS_SEMILLA, the RNG seed (from the clock when unset).
	Semilla uint64
	// Latencia is SAGAS_LATENCIA, added to every command.
	Latencia time.Duration
}

// TasaEfectiva is the failure rate of a service whose seeds failed at semilla.
func (f ConfigFallos) TasaEfectiva(semilla float64) float64 {
	switch {
	case f.Tasa != nil:
		return *f.Tasa
	case f.Semillas:
		return semilla
	default:
		return 0
	}
}

// Defaults of the environment variables.
const (
	PulsarURLPorDefecto      = "pulsar://127.0.0.1:6650"
	PulsarAdminURLPorDefecto = "http://127.0.0.1:8080"
	DirDatosPorDefecto       = ".run/data"
	DireccionHTTPPorDefecto  = "127.0.0.1:0"
	TrabajadoresPorDefecto   = 2
)

// LeerConfig reads the configuration of servicio from getenv through the
// shared table (internal/configuracion, docs/configuration.md) and validates it,
// reporting every problem at once; each message names the variable and what
// it allows. A deprecated variable name in use is logged as a warning.
func LeerConfig(servicio string, getenv func(string) string) (Config, error) {
	l := configuracion.Leer(getenv)
	c := Config{
		Servicio:       servicio,
		PulsarURL:      l.Texto("SAGAS_PULSAR_URL"),
		PulsarAdminURL: l.Texto("SAGAS_PULSAR_ADMIN_URL"),
		Topologia: eventos.Topologia{
			Tenant:    l.Texto("SAGAS_PULSAR_TENANT"),
			Namespace: l.Texto("SAGAS_PULSAR_NAMESPACE"),
		},
		Almacen:          l.Texto("SAGAS_STORAGE_TYPE"),
		RutaSQLite:       filepath.Join(l.Texto("SAGAS_DATA_DIR"), "participante-"+servicio+".db"),
		DireccionHTTP:    l.Texto("SAGAS_METRICS_ADDR"),
		TokenHTTP:        l.Secreto("SAGAS_METRICS_TOKEN"),
		DireccionPprof:   l.Texto("SAGAS_PPROF_ADDR"),
		SinAutenticacion: l.Interruptor("SAGAS_HTTP_ALLOW_UNAUTHENTICATED"),
		MySQL: ConfigMySQL{
			BaseDatos: l.Texto("SAGAS_DB_PREFIJO") + servicio,
		},
		Trabajadores:       l.Entero("SAGAS_CONSUMER_WORKERS", TrabajadoresPorDefecto),
		Retencion:          l.Duracion("SAGAS_RETENTION", 168*time.Hour),
		IntervaloRetencion: l.Duracion("SAGAS_RETENTION_INTERVAL", 10*time.Minute),
		Particiones:        l.Entero("SAGAS_PULSAR_PARTITIONS", 1),
		Traza:              traza.LeerConfig(l),
		Fallos: ConfigFallos{
			Semillas: l.Texto("SAGAS_FALLOS") == "semillas",
			Semilla:  uint64(l.Entero64("SAGAS_SEMILLA", time.Now().UnixNano())),
			Latencia: l.Duracion("SAGAS_LATENCIA", 0),
		},
	}
	c.Seguridad = bus.LeerSeguridad(l, c.PulsarURL, c.PulsarAdminURL)
	c.Reintentos = bus.LeerReintentos(l)
	if c.DireccionHTTP == "" {
		c.DireccionHTTP = DireccionHTTPPorDefecto
	}
	if l.Definida("SAGAS_TASA_FALLO") {
		if t := l.Decimal("SAGAS_TASA_FALLO", -1); t >= 0 {
			c.Fallos.Tasa = &t
		}
	}
	c.MySQL.Servidor = basedatos.Leer(l, c.Almacen == AlmacenMySQL)
	switch l.Texto("SAGAS_LOG_LEVEL") {
	case "debug":
		c.NivelLog = slog.LevelDebug
	case "warn":
		c.NivelLog = slog.LevelWarn
	case "error":
		c.NivelLog = slog.LevelError
	default: // info, or an invalid value the reader has reported
		c.NivelLog = slog.LevelInfo
	}
	// The signature has no room for notices: they go to the default logger,
	// before the service's own exists.
	for _, a := range l.Avisos() {
		slog.Warn(a)
	}
	return c, errors.Join(l.Err(), c.validarDerivados())
}

// Validar checks every value of c against the table's allowed values and
// the rules between them (tests build a Config directly and call it too).
// Every problem is reported.
func (c Config) Validar() error {
	var errs []error
	for _, v := range []struct{ nombre, valor string }{
		{"SAGAS_PULSAR_URL", c.PulsarURL},
		{"SAGAS_PULSAR_ADMIN_URL", c.PulsarAdminURL},
		{"SAGAS_PULSAR_TENANT", c.Topologia.Tenant},
		{"SAGAS_PULSAR_NAMESPACE", c.Topologia.Namespace},
		{"SAGAS_STORAGE_TYPE", c.Almacen},
		{"SAGAS_METRICS_ADDR", c.DireccionHTTP},
		{"SAGAS_CONSUMER_WORKERS", strconv.Itoa(c.Trabajadores)},
		{"SAGAS_PULSAR_PARTITIONS", strconv.Itoa(max(c.Particiones, 1))}, // 0: unset, one
	} {
		errs = append(errs, configuracion.Comprobar(v.nombre, v.valor))
	}
	if c.DireccionPprof != "" {
		errs = append(errs, configuracion.Comprobar("SAGAS_PPROF_ADDR", c.DireccionPprof))
	}
	errs = append(errs, c.Seguridad.Validar(c.PulsarURL, c.PulsarAdminURL))
	return errors.Join(append(errs, c.validarDerivados())...)
}

// validarDerivados checks what the table cannot: the service's name and the
// values derived from it, and what the chosen store needs.
func (c Config) validarDerivados() error {
	var errs []error
	problema := func(nombre, valor, formato string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", nombre, valor, fmt.Sprintf(formato, args...)))
	}
	if !configuracion.NombreValido(c.Servicio, "_.-", 100) {
		errs = append(errs, fmt.Errorf("servicio %q: allowed are letters, digits, _ . -", c.Servicio))
	}
	if err := configuracion.Comprobar("SAGAS_METRICS_ADDR", c.DireccionHTTP); err == nil {
		errs = append(errs, configuracion.ComprobarExposicion(c.ListenerHTTP(), c.SinAutenticacion))
	}
	if l, ok := c.ListenerPprof(); ok && configuracion.Comprobar("SAGAS_PPROF_ADDR", c.DireccionPprof) == nil {
		errs = append(errs, configuracion.ComprobarExposicion(l, c.SinAutenticacion))
	}
	switch c.Almacen {
	case AlmacenSQLite:
		if c.RutaSQLite == "" || strings.ContainsAny(c.RutaSQLite, "?#") {
			problema("SAGAS_DATA_DIR", filepath.Dir(c.RutaSQLite), "allowed values are directory paths without ? or #")
		}
	case AlmacenMySQL:
		if c.MySQL.Servidor.Direccion() == "" {
			problema("SAGAS_DB_HOST", "", "must not be empty with SAGAS_STORAGE_TYPE=mysql")
		}
		if !configuracion.NombreValido(c.MySQL.BaseDatos, "_", 64) {
			errs = append(errs, fmt.Errorf("base de datos %q: allowed are 1-64 letters, digits and _", c.MySQL.BaseDatos))
		}
	}
	return errors.Join(errs...)
}

// ListenerHTTP describes the listener at DireccionHTTP, for the exposure
// check and the start-up warning (configuracion.ComprobarExposicion).
func (c Config) ListenerHTTP() configuracion.Listener {
	host, _, _ := net.SplitHostPort(c.DireccionHTTP)
	return configuracion.Listener{
		Que: "/metrics, /healthz, /readyz and /efectos", Variable: "SAGAS_METRICS_ADDR", Valor: c.DireccionHTTP, Host: host,
		VariableToken: "SAGAS_METRICS_TOKEN", ConToken: c.TokenHTTP != "",
	}
}

// ListenerPprof describes the pprof listener at DireccionPprof; false when
// it is off.
func (c Config) ListenerPprof() (configuracion.Listener, bool) {
	if c.DireccionPprof == "" {
		return configuracion.Listener{}, false
	}
	host, _, _ := net.SplitHostPort(c.DireccionPprof)
	return configuracion.Listener{Que: "pprof", Variable: "SAGAS_PPROF_ADDR", Valor: c.DireccionPprof, Host: host}, true
}
