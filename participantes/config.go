package participantes

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/eventos"
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
	// Topologia is SAGAS_PULSAR_TENANT / SAGAS_PULSAR_NAMESPACE.
	Topologia eventos.Topologia
	// Almacen is SAGAS_STORAGE_TYPE: sqlite or mysql.
	Almacen string
	// RutaSQLite is ${SAGAS_DATA_DIR}/participante-<servicio>.db.
	RutaSQLite string
	MySQL      ConfigMySQL
	// DireccionHTTP is SAGAS_METRICS_ADDR, where /metrics, /healthz and
	// /efectos/{saga_id} are served (port 0 picks a free port).
	DireccionHTTP string
	Fallos        ConfigFallos
	// NivelLog is SAGAS_LOG_LEVEL.
	NivelLog slog.Level
	// Trabajadores is SAGAS_TRABAJADORES: commands of different sagas
	// processed in parallel.
	Trabajadores int
}

// ConfigMySQL says where the service's own MySQL database lives. The
// database is created when missing.
type ConfigMySQL struct {
	Host      string // SAGAS_DB_HOST
	Puerto    int    // SAGAS_DB_PORT
	Usuario   string // SAGAS_DB_USER
	Clave     string // SAGAS_DB_PASSWORD
	BaseDatos string // participante_<servicio>
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

// nombreValido reports whether s is 1 to max characters among letters,
// digits and the characters in extra.
func nombreValido(s, extra string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// LeerConfig reads the configuration of servicio from getenv and validates
// it, reporting every problem at once; each message names the variable and
// what it allows.
func LeerConfig(servicio string, getenv func(string) string) (Config, error) {
	var errs []error
	env := func(nombre, defecto string) string {
		if v := strings.TrimSpace(getenv(nombre)); v != "" {
			return v
		}
		return defecto
	}
	problema := func(nombre, valor, formato string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", nombre, valor, fmt.Sprintf(formato, args...)))
	}

	c := Config{
		Servicio:       servicio,
		PulsarURL:      env("SAGAS_PULSAR_URL", PulsarURLPorDefecto),
		PulsarAdminURL: env("SAGAS_PULSAR_ADMIN_URL", PulsarAdminURLPorDefecto),
		Topologia: eventos.Topologia{
			Tenant:    env("SAGAS_PULSAR_TENANT", eventos.TopologiaPorDefecto.Tenant),
			Namespace: env("SAGAS_PULSAR_NAMESPACE", eventos.TopologiaPorDefecto.Namespace),
		},
		Almacen:       env("SAGAS_STORAGE_TYPE", AlmacenSQLite),
		RutaSQLite:    filepath.Join(env("SAGAS_DATA_DIR", DirDatosPorDefecto), "participante-"+servicio+".db"),
		DireccionHTTP: env("SAGAS_METRICS_ADDR", DireccionHTTPPorDefecto),
		MySQL: ConfigMySQL{
			Host:      env("SAGAS_DB_HOST", "127.0.0.1"),
			Usuario:   env("SAGAS_DB_USER", "sagas"),
			Clave:     env("SAGAS_DB_PASSWORD", "sagas123"),
			BaseDatos: env("SAGAS_DB_PREFIJO", "participante_") + servicio,
		},
		Trabajadores: TrabajadoresPorDefecto,
	}

	// A value that does not parse is reported here and left at its default,
	// so that Validar does not report it a second time.
	c.MySQL.Puerto = 3306
	if v := env("SAGAS_DB_PORT", ""); v != "" {
		if p, err := strconv.Atoi(v); err != nil || p < 1 || p > 65535 {
			problema("SAGAS_DB_PORT", v, "allowed values are TCP ports 1-65535")
		} else {
			c.MySQL.Puerto = p
		}
	}
	if v := env("SAGAS_TRABAJADORES", ""); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 256 {
			problema("SAGAS_TRABAJADORES", v, "allowed values are integers 1-256")
		} else {
			c.Trabajadores = n
		}
	}
	switch v := env("SAGAS_FALLOS", "no"); v {
	case "no":
	case "semillas":
		c.Fallos.Semillas = true
	default:
		problema("SAGAS_FALLOS", v, "allowed values are no, semillas")
	}
	if v := env("SAGAS_TASA_FALLO", ""); v != "" {
		if t, err := strconv.ParseFloat(v, 64); err != nil || !(t >= 0 && t <= 1) {
			problema("SAGAS_TASA_FALLO", v, "allowed values are numbers from 0 to 1 (0.2 fails one command in five)")
		} else {
			c.Fallos.Tasa = &t
		}
	}
	if v := env("SAGAS_SEMILLA", ""); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			problema("SAGAS_SEMILLA", v, "allowed values are integers")
		}
		c.Fallos.Semilla = uint64(s)
	} else {
		c.Fallos.Semilla = uint64(time.Now().UnixNano())
	}
	if v := env("SAGAS_LATENCIA", ""); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			problema("SAGAS_LATENCIA", v, "allowed values are non-negative Go durations such as 20ms")
		} else {
			c.Fallos.Latencia = d
		}
	}
	switch v := env("SAGAS_LOG_LEVEL", "info"); strings.ToLower(v) {
	case "debug":
		c.NivelLog = slog.LevelDebug
	case "info":
		c.NivelLog = slog.LevelInfo
	case "warn":
		c.NivelLog = slog.LevelWarn
	case "error":
		c.NivelLog = slog.LevelError
	default:
		problema("SAGAS_LOG_LEVEL", v, "allowed values are debug, info, warn, error")
	}
	if err := c.Validar(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// Validar checks the values LeerConfig does not parse itself (tests build a
// Config directly and call it too). Every problem is reported.
func (c Config) Validar() error {
	var errs []error
	problema := func(nombre, valor, formato string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", nombre, valor, fmt.Sprintf(formato, args...)))
	}
	if !nombreValido(c.Servicio, "_.-", 100) {
		errs = append(errs, fmt.Errorf("servicio %q: allowed are letters, digits, _ . -", c.Servicio))
	}
	if u, err := url.Parse(c.PulsarURL); err != nil || (u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl") || u.Host == "" {
		problema("SAGAS_PULSAR_URL", c.PulsarURL, "allowed values are pulsar://host:port or pulsar+ssl://host:port")
	}
	if u, err := url.Parse(c.PulsarAdminURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problema("SAGAS_PULSAR_ADMIN_URL", c.PulsarAdminURL, "allowed values are http://host:port or https://host:port")
	}
	if !nombreValido(c.Topologia.Tenant, "_.-", 100) {
		problema("SAGAS_PULSAR_TENANT", c.Topologia.Tenant, "allowed are letters, digits, _ . -")
	}
	if !nombreValido(c.Topologia.Namespace, "_.-", 100) {
		problema("SAGAS_PULSAR_NAMESPACE", c.Topologia.Namespace, "allowed are letters, digits, _ . -")
	}
	switch c.Almacen {
	case AlmacenSQLite:
		if c.RutaSQLite == "" || strings.ContainsAny(c.RutaSQLite, "?#") {
			problema("SAGAS_DATA_DIR", filepath.Dir(c.RutaSQLite), "allowed values are directory paths without ? or #")
		}
	case AlmacenMySQL:
		if c.MySQL.Host == "" {
			problema("SAGAS_DB_HOST", c.MySQL.Host, "must not be empty with SAGAS_STORAGE_TYPE=mysql")
		}
		if c.MySQL.Usuario == "" {
			problema("SAGAS_DB_USER", c.MySQL.Usuario, "must not be empty with SAGAS_STORAGE_TYPE=mysql")
		}
		if !nombreValido(c.MySQL.BaseDatos, "_", 64) {
			errs = append(errs, fmt.Errorf("base de datos %q: allowed are 1-64 letters, digits and _", c.MySQL.BaseDatos))
		}
	default:
		problema("SAGAS_STORAGE_TYPE", c.Almacen, "allowed values are sqlite, mysql")
	}
	if host, puerto, err := net.SplitHostPort(c.DireccionHTTP); err != nil {
		problema("SAGAS_METRICS_ADDR", c.DireccionHTTP, "allowed values are host:port (port 0 picks a free one)")
	} else if p, err := strconv.Atoi(puerto); err != nil || p < 0 || p > 65535 || (host != "" && strings.ContainsAny(host, "/ ")) {
		problema("SAGAS_METRICS_ADDR", c.DireccionHTTP, "allowed values are host:port with a port 0-65535")
	}
	if c.Trabajadores < 1 {
		problema("SAGAS_TRABAJADORES", strconv.Itoa(c.Trabajadores), "allowed values are integers 1-256")
	}
	return errors.Join(errs...)
}
