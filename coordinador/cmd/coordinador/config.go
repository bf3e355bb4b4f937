package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/mensajeria"
	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/topologia"
	"github.com/alpespartner/sagas/internal/traza"
)

// config is the coordinator's configuration, read once from the environment.
type config struct {
	Almacen        string // sqlite | mysql
	SQLitePath     string
	DB             basedatos.Servidor // SAGAS_DB_DSN or _HOST/_PORT/_USER/_PASSWORD, TLS, migration user
	DBName         string
	DBMaxConns     int
	PulsarURL      string
	PulsarAdminURL string
	Seguridad      bus.Seguridad // SAGAS_PULSAR_AUTH and its family
	Tenant         string
	Namespace      string
	// Provisioning (-preparar).
	Roles     topologia.Roles // SAGAS_PULSAR_ROLES
	Politicas bus.Politicas   // SAGAS_PULSAR_RETENTION_*
	// Particiones is SAGAS_PULSAR_PARTITIONS: the command, reply and event
	// topics' partition count (1: non-partitioned).
	Particiones    int
	APIAddr        string
	APIToken       string
	TokenLectura   string // SAGAS_API_READ_TOKEN: the API's GET routes only
	Replica        string
	LogDir         string // "" = seeds' log files off
	LogLevel       slog.Level
	Puente         bool
	Temporizador   time.Duration
	Trabajadores   int
	Definiciones   string // directory of extra/overriding saga definitions (*.json)
	LegadoCampania string // legacy topic of EventoCampaniaCreada
	LegadoLanzar   string // legacy topic of ComandoLanzarCampaniaCompleta
	PprofAddr      string // where to serve net/http/pprof ("" = off)
	// Retention: SAGAS_RETENTION (0 = off), SAGAS_RETENTION_INTERVAL,
	// SAGAS_LOG_MAX_SIZE_MB.
	Retencion          time.Duration
	IntervaloRetencion time.Duration
	MaxLogGeneralMB    int
	// MetricsAddr is where /metrics gets a listener of its own ("" = on the
	// API listener while that is loopback, else nowhere); MetricsToken the
	// bearer token it requires.
	MetricsAddr  string
	MetricsToken string
	// SinAutenticacion is SAGAS_HTTP_ALLOW_UNAUTHENTICATED: listeners off
	// loopback may answer without a token.
	SinAutenticacion bool

	// Reintentos is SAGAS_MAX_REDELIVERIES and SAGAS_REDELIVERY_DELAY*:
	// the bound and backoff of replies and legacy events that fail
	// transiently, and the spacing of a refused outbox row's attempts.
	Reintentos bus.Reintentos
	// MaxIntentosOutbox is SAGAS_OUTBOX_MAX_ATTEMPTS: refusals of an outbox
	// row before it is parked.
	MaxIntentosOutbox int
	// Traza is OTEL_EXPORTER_OTLP_*: where spans go (none when unset).
	Traza traza.Config
}

// leerConfig reads and validates the environment through the shared table
// (internal/configuracion, docs/configuration.md), reporting every problem at once.
func leerConfig(getenv func(string) string) (config, error) {
	l := configuracion.Leer(getenv)
	c := config{
		Almacen: l.Texto("SAGAS_STORAGE_TYPE"), SQLitePath: l.Texto("SAGAS_DB_PATH"),
		DBName: l.Texto("SAGAS_DB_NAME"), DBMaxConns: l.Entero("SAGAS_DB_MAX_CONNS", 32),
		PulsarURL: l.Texto("SAGAS_PULSAR_URL"), PulsarAdminURL: l.Texto("SAGAS_PULSAR_ADMIN_URL"),
		Tenant: l.Texto("SAGAS_PULSAR_TENANT"), Namespace: l.Texto("SAGAS_PULSAR_NAMESPACE"), APIToken: l.Secreto("SAGAS_API_TOKEN"),
		Replica: l.Texto("SAGAS_REPLICA_ID"), Puente: l.Interruptor("SAGAS_PUENTE"),
		Temporizador: l.Duracion("SAGAS_TIMER_INTERVAL", 250*time.Millisecond), Trabajadores: l.Entero("SAGAS_CONSUMER_WORKERS", 2),
		Definiciones:   l.Texto("SAGAS_DEFINICIONES"),
		LegadoCampania: l.Texto("SAGAS_LEGADO_TOPICO_CAMPANIA"), LegadoLanzar: l.Texto("SAGAS_LEGADO_TOPICO_LANZAR"),
		PprofAddr: l.Texto("SAGAS_PPROF_ADDR"), Particiones: l.Entero("SAGAS_PULSAR_PARTITIONS", 1),
	}
	c.Seguridad = bus.LeerSeguridad(l, c.PulsarURL, c.PulsarAdminURL)
	c.Retencion, c.IntervaloRetencion = l.Duracion("SAGAS_RETENTION", 168*time.Hour), l.Duracion("SAGAS_RETENTION_INTERVAL", 10*time.Minute)
	c.MaxLogGeneralMB = l.Entero("SAGAS_LOG_MAX_SIZE_MB", 100)
	c.Reintentos = bus.LeerReintentos(l)
	c.MaxIntentosOutbox = l.Entero("SAGAS_OUTBOX_MAX_ATTEMPTS", mensajeria.MaxIntentosPorDefecto)
	c.Traza = traza.LeerConfig(l)
	c.Politicas = bus.Politicas{Retencion: l.Duracion("SAGAS_PULSAR_RETENTION_TIME", 24*time.Hour), RetencionMB: l.Entero64("SAGAS_PULSAR_RETENTION_SIZE_MB", 1024)}
	roles, err := topologia.LeerRoles(l.Texto("SAGAS_PULSAR_ROLES"))
	if err != nil {
		l.Problema("SAGAS_PULSAR_ROLES", l.Texto("SAGAS_PULSAR_ROLES"), err.Error())
	}
	c.Roles = roles
	c.APIAddr = net.JoinHostPort(l.Texto("SAGAS_API_HOST"), strconv.Itoa(l.Entero("SAGAS_API_PORT", 8003)))
	if c.SQLitePath == "" {
		c.SQLitePath = filepath.Join(l.Texto("SAGAS_DATA_DIR"), "coordinador.db")
	}
	c.DB = basedatos.Leer(l, c.Almacen == "mysql")
	if c.Replica == "hostname" {
		h, err := os.Hostname()
		if err != nil {
			h = "coordinador"
		}
		c.Replica = "coordinador-" + h
		if err := configuracion.Comprobar("SAGAS_REPLICA_ID", c.Replica); err != nil {
			l.Problema("SAGAS_REPLICA_ID", c.Replica, "the host name makes an invalid replica id; set SAGAS_REPLICA_ID")
		}
	}
	// The read-only token only means something beside the operator's.
	c.TokenLectura = l.Secreto("SAGAS_API_READ_TOKEN")
	switch {
	case c.TokenLectura != "" && c.APIToken == "":
		l.Problema("SAGAS_API_READ_TOKEN", "(set)", "a read-only token needs the operator token SAGAS_API_TOKEN: without it every route, POSTs included, is open to anyone")
	case c.TokenLectura != "" && c.TokenLectura == c.APIToken:
		l.Problema("SAGAS_API_READ_TOKEN", "(set)", "must differ from SAGAS_API_TOKEN: the read-only token would also be the operator's")
	}
	if d := l.Texto("SAGAS_LOG_DIR"); !strings.EqualFold(d, "off") {
		c.LogDir = d
	}
	if err := c.LogLevel.UnmarshalText([]byte(l.Texto("SAGAS_LOG_LEVEL"))); err != nil {
		c.LogLevel = slog.LevelInfo // the reader has reported it
	}
	// Listeners off loopback need credentials or the explicit override.
	c.MetricsAddr, c.MetricsToken = l.Texto("SAGAS_METRICS_ADDR"), l.Secreto("SAGAS_METRICS_TOKEN")
	c.SinAutenticacion = l.Interruptor("SAGAS_HTTP_ALLOW_UNAUTHENTICATED")
	for _, ln := range c.listeners() {
		l.Anotar(configuracion.ComprobarExposicion(ln, c.SinAutenticacion))
	}
	// Checks that need the file system.
	if c.Definiciones != "" {
		if st, err := os.Stat(c.Definiciones); err != nil || !st.IsDir() {
			l.Problema("SAGAS_DEFINICIONES", c.Definiciones, "must be a directory")
		}
	}
	if c.Almacen == "sqlite" {
		if dir := filepath.Dir(c.SQLitePath); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				l.Problema("SAGAS_DB_PATH", c.SQLitePath, "cannot create its directory: "+err.Error())
			}
		}
	}
	// The signature has no room for notices: they go to the default logger,
	// before the coordinator's own exists.
	for _, a := range l.Avisos() {
		slog.Warn(a)
	}
	return c, l.Err()
}

// listeners are the HTTP listeners the configuration opens: the API, and
// the metrics and pprof ones when set.
func (c config) listeners() []configuracion.Listener {
	host, _, _ := net.SplitHostPort(c.APIAddr)
	ls := []configuracion.Listener{{Que: "the API", Variable: "SAGAS_API_HOST", Valor: host, Host: host,
		VariableToken: "SAGAS_API_TOKEN", ConToken: c.APIToken != ""}}
	if c.MetricsAddr != "" {
		host, _, _ := net.SplitHostPort(c.MetricsAddr)
		ls = append(ls, configuracion.Listener{Que: "/metrics", Variable: "SAGAS_METRICS_ADDR", Valor: c.MetricsAddr, Host: host,
			VariableToken: "SAGAS_METRICS_TOKEN", ConToken: c.MetricsToken != ""})
	}
	if c.PprofAddr != "" {
		host, _, _ := net.SplitHostPort(c.PprofAddr)
		ls = append(ls, configuracion.Listener{Que: "pprof", Variable: "SAGAS_PPROF_ADDR", Valor: c.PprofAddr, Host: host})
	}
	return ls
}

// metricasEnAPI reports whether the API listener serves /metrics: only when
// no listener of its own is configured and the API is on loopback, so that
// metrics never answer off loopback without a token meant for them.
func (c config) metricasEnAPI() bool {
	host, _, _ := net.SplitHostPort(c.APIAddr)
	return c.MetricsAddr == "" && configuracion.Loopback(host)
}

// dsn is the MySQL DSN of the configuration.
func (c config) dsn() string {
	return c.DB.DSN(c.DBName) // the runtime user's
}

// almacenConfig is the store's configuration for the runtime: with a
// migration user configured (MySQL), it checks the schema and changes
// nothing.
func (c config) almacenConfig() almacen.Config {
	return almacen.Config{
		Tipo: c.Almacen, Ruta: c.SQLitePath, DSN: c.dsn(), MaxConexiones: c.DBMaxConns,
		SoloComprobar: c.Almacen == "mysql" && c.DB.ConMigracionAparte(),
	}
}
