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
	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
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
	APIAddr        string
	APIToken       string
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
		PprofAddr: l.Texto("SAGAS_PPROF_ADDR"),
	}
	c.Seguridad = bus.LeerSeguridad(l, c.PulsarURL, c.PulsarAdminURL)
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
	if d := l.Texto("SAGAS_LOG_DIR"); !strings.EqualFold(d, "off") {
		c.LogDir = d
	}
	if err := c.LogLevel.UnmarshalText([]byte(l.Texto("SAGAS_LOG_LEVEL"))); err != nil {
		c.LogLevel = slog.LevelInfo // the reader has reported it
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
