package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// config is the coordinator's configuration, read once from the environment.
type config struct {
	Almacen        string // sqlite | mysql
	SQLitePath     string
	DBHost         string
	DBPort         int
	DBName         string
	DBUser         string
	DBPassword     string
	DBMaxConns     int
	PulsarURL      string
	PulsarAdminURL string
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

// variables documents every setting: name, default, meaning. The README's
// configuration table follows it.
var variables = [][3]string{
	{"SAGAS_STORAGE_TYPE", "sqlite", "sqlite (embedded, one replica) or mysql"},
	{"SAGAS_DB_PATH", ".run/data/coordinador.db", "SQLite file"},
	{"SAGAS_DB_HOST", "127.0.0.1", "MySQL host (compose: sagas-db)"},
	{"SAGAS_DB_PORT", "3306", "MySQL port"},
	{"SAGAS_DB_NAME", "sagas", "MySQL database"},
	{"SAGAS_DB_USER", "sagas", "MySQL user"},
	{"SAGAS_DB_PASSWORD", "sagas123", "MySQL password"},
	{"SAGAS_DB_MAX_CONNS", "32", "MySQL connection pool size"},
	{"SAGAS_PULSAR_URL", "pulsar://127.0.0.1:6650", "broker binary protocol URL"},
	{"SAGAS_PULSAR_ADMIN_URL", "http://127.0.0.1:8080", "broker admin REST URL"},
	{"SAGAS_PULSAR_TENANT", "alpespartner", "tenant of our topics"},
	{"SAGAS_PULSAR_NAMESPACE", "sagas", "namespace of our topics"},
	{"SAGAS_API_HOST", "0.0.0.0", "HTTP listen host"},
	{"SAGAS_API_PORT", "8003", "HTTP port (API, /metrics, /healthz, /readyz)"},
	{"SAGAS_API_TOKEN", "", "if set, POSTs and saga reads need Authorization: Bearer <token>"},
	{"SAGAS_REPLICA_ID", "hostname", "stable replica id (producer names for broker de-duplication)"},
	{"SAGAS_LOG_DIR", "logs/sagas", "seeds' per-saga log files; \"off\" disables them"},
	{"SAGAS_LOG_LEVEL", "info", "debug, info, warn, error"},
	{"SAGAS_PUENTE", "on", "consume the legacy choreography topics (on/off)"},
	{"SAGAS_TIMER_INTERVAL", "250ms", "how often deadlines are swept"},
	{"SAGAS_CONSUMER_WORKERS", "2", "reply workers; each applies the replies queued for it in one transaction (per saga in order)"},
	{"SAGAS_DEFINICIONES", "", "directory of saga definitions (*.json) that add to or replace the built-in ones"},
	{"SAGAS_LEGADO_TOPICO_CAMPANIA", "persistent://public/default/eventos-campania", "legacy topic of EventoCampaniaCreada"},
	{"SAGAS_PPROF_ADDR", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); off when empty"},
	{"SAGAS_LEGADO_TOPICO_LANZAR", "persistent://public/default/comando-lanzar-campania-completa", "legacy topic of ComandoLanzarCampaniaCompleta"},
}

// leerConfig reads and validates the environment, reporting every problem at once.
func leerConfig(getenv func(string) string) (config, error) {
	v := func(name string) string {
		if s := strings.TrimSpace(getenv(name)); s != "" {
			return s
		}
		for _, d := range variables {
			if d[0] == name {
				return d[1]
			}
		}
		return ""
	}
	var errs []error
	entero := func(name string, lo, hi int) int {
		n, err := strconv.Atoi(v(name))
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s=%q: must be an integer between %d and %d", name, v(name), lo, hi))
		}
		return n
	}
	onOff := func(name string) bool {
		switch strings.ToLower(v(name)) {
		case "on", "true", "1", "yes":
			return true
		case "off", "false", "0", "no":
			return false
		}
		errs = append(errs, fmt.Errorf("%s=%q: allowed values are on, off", name, v(name)))
		return false
	}
	urlCon := func(name string, esquemas ...string) string {
		s := v(name)
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || !contiene(esquemas, u.Scheme) {
			errs = append(errs, fmt.Errorf("%s=%q: must be a URL with scheme %s and a host", name, s, strings.Join(esquemas, " or ")))
		}
		return s
	}
	c := config{
		Almacen: strings.ToLower(v("SAGAS_STORAGE_TYPE")), SQLitePath: v("SAGAS_DB_PATH"),
		DBHost: v("SAGAS_DB_HOST"), DBName: v("SAGAS_DB_NAME"), DBUser: v("SAGAS_DB_USER"), DBPassword: getenvOr(getenv, "SAGAS_DB_PASSWORD", "sagas123"),
		PulsarURL: urlCon("SAGAS_PULSAR_URL", "pulsar", "pulsar+ssl"), PulsarAdminURL: urlCon("SAGAS_PULSAR_ADMIN_URL", "http", "https"),
		Tenant: v("SAGAS_PULSAR_TENANT"), Namespace: v("SAGAS_PULSAR_NAMESPACE"), APIToken: getenv("SAGAS_API_TOKEN"),
		Replica: v("SAGAS_REPLICA_ID"), Puente: onOff("SAGAS_PUENTE"),
	}
	if c.Almacen != "sqlite" && c.Almacen != "mysql" {
		errs = append(errs, fmt.Errorf("SAGAS_STORAGE_TYPE=%q: allowed values are sqlite, mysql", getenv("SAGAS_STORAGE_TYPE")))
	}
	c.DBPort = entero("SAGAS_DB_PORT", 1, 65535)
	c.DBMaxConns = entero("SAGAS_DB_MAX_CONNS", 1, 1000)
	c.Trabajadores = entero("SAGAS_CONSUMER_WORKERS", 1, 1024)
	port := entero("SAGAS_API_PORT", 0, 65535)
	c.APIAddr = net.JoinHostPort(v("SAGAS_API_HOST"), strconv.Itoa(port))
	if c.Replica == "hostname" {
		h, err := os.Hostname()
		if err != nil {
			h = "coordinador"
		}
		c.Replica = "coordinador-" + h
	}
	for _, n := range []struct{ name, val string }{{"SAGAS_PULSAR_TENANT", c.Tenant}, {"SAGAS_PULSAR_NAMESPACE", c.Namespace}, {"SAGAS_REPLICA_ID", c.Replica}} {
		if strings.ContainsAny(n.val, "/ :") {
			errs = append(errs, fmt.Errorf("%s=%q: must not contain '/', ':' or spaces", n.name, n.val))
		}
	}
	c.LegadoCampania, c.LegadoLanzar = v("SAGAS_LEGADO_TOPICO_CAMPANIA"), v("SAGAS_LEGADO_TOPICO_LANZAR")
	for _, n := range [][2]string{{"SAGAS_LEGADO_TOPICO_CAMPANIA", c.LegadoCampania}, {"SAGAS_LEGADO_TOPICO_LANZAR", c.LegadoLanzar}} {
		if !strings.HasPrefix(n[1], "persistent://") || strings.Count(n[1], "/") != 4 {
			errs = append(errs, fmt.Errorf("%s=%q: must be persistent://tenant/namespace/topic", n[0], n[1]))
		}
	}
	c.PprofAddr = v("SAGAS_PPROF_ADDR")
	c.Definiciones = v("SAGAS_DEFINICIONES")
	if c.Definiciones != "" {
		if st, err := os.Stat(c.Definiciones); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("SAGAS_DEFINICIONES=%q: must be a directory", c.Definiciones))
		}
	}
	if d := v("SAGAS_LOG_DIR"); !strings.EqualFold(d, "off") {
		c.LogDir = d
	}
	if err := c.LogLevel.UnmarshalText([]byte(v("SAGAS_LOG_LEVEL"))); err != nil {
		errs = append(errs, fmt.Errorf("SAGAS_LOG_LEVEL=%q: allowed values are debug, info, warn, error", v("SAGAS_LOG_LEVEL")))
	}
	d, err := time.ParseDuration(v("SAGAS_TIMER_INTERVAL"))
	if err != nil || d < 10*time.Millisecond || d > time.Minute {
		errs = append(errs, fmt.Errorf("SAGAS_TIMER_INTERVAL=%q: must be a duration between 10ms and 1m", v("SAGAS_TIMER_INTERVAL")))
	}
	c.Temporizador = d
	if c.Almacen == "sqlite" {
		if dir := filepath.Dir(c.SQLitePath); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs = append(errs, fmt.Errorf("SAGAS_DB_PATH=%q: cannot create its directory: %v", c.SQLitePath, err))
			}
		}
	}
	return c, errors.Join(errs...)
}

func getenvOr(getenv func(string) string, name, def string) string {
	if s := getenv(name); s != "" {
		return s
	}
	return def
}

func contiene(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// dsn is the MySQL DSN of the configuration.
func (c config) dsn() string {
	m := mysql.NewConfig()
	m.User, m.Passwd, m.Net, m.Addr, m.DBName = c.DBUser, c.DBPassword, "tcp", net.JoinHostPort(c.DBHost, strconv.Itoa(c.DBPort)), c.DBName
	m.ParseTime = true
	m.Timeout = 5 * time.Second
	return m.FormatDSN()
}
