// Package basedatos reads how to reach the MySQL/MariaDB server (address,
// runtime and migration users, TLS) from the environment, the same way for
// the coordinator and the participants, builds the driver's configuration
// from it, and explains a failed connection by its cause.
package basedatos

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/internal/configuracion"
)

// TLS modes of SAGAS_DB_TLS.
const (
	TLSNo           = "off"
	TLSSi           = "on"          // chain and host name verified
	TLSSinVerificar = "skip-verify" // encrypted, nothing verified (tests)
)

// ClaveLocal is the password used when none is set and the server is on
// loopback (the development default of scripts/mariadb.sh).
const ClaveLocal = "sagas123"

// Servidor is how to reach the server: the driver's configuration without a
// database (address, runtime user, TLS) and the migration user.
type Servidor struct {
	base *mysql.Config
	// UsuarioMigracion is SAGAS_DB_MIGRATION_USER: when set, only the
	// provisioning step (-preparar) changes the schema, as this user, and the
	// runtime checks the schema version instead. Empty: one user does both.
	UsuarioMigracion string
	// ClaveMigracion is SAGAS_DB_MIGRATION_PASSWORD (or its _FILE).
	ClaveMigracion string
	// TLS is the mode in use (off, on, skip-verify, or the DSN's tls value).
	TLS string
	// CAFile is SAGAS_DB_TLS_CA_FILE ("" = the system's CAs).
	CAFile string
}

// Leer reads SAGAS_DB_DSN or SAGAS_DB_HOST/PORT/USER/PASSWORD, SAGAS_DB_TLS,
// SAGAS_DB_TLS_CA_FILE and the migration user through l, recording every
// problem there. mysql says whether the store is MySQL: only then are the
// rules between variables (a password off loopback) checked.
func Leer(l *configuracion.Lector, mysqlEnUso bool) Servidor {
	s := Servidor{
		UsuarioMigracion: l.Texto("SAGAS_DB_MIGRATION_USER"),
		ClaveMigracion:   l.Secreto("SAGAS_DB_MIGRATION_PASSWORD"),
		CAFile:           l.Texto("SAGAS_DB_TLS_CA_FILE"),
	}
	modo := l.Texto("SAGAS_DB_TLS")
	dsn := l.Secreto("SAGAS_DB_DSN")
	if dsn != "" {
		s.base = leerDSN(l, dsn)
	} else {
		s.base = mysql.NewConfig()
		s.base.Net = "tcp"
		host := l.Texto("SAGAS_DB_HOST")
		s.base.Addr = net.JoinHostPort(host, strconv.Itoa(l.Entero("SAGAS_DB_PORT", 3306)))
		s.base.User = l.Texto("SAGAS_DB_USER")
		s.base.Passwd = l.Secreto("SAGAS_DB_PASSWORD")
		if s.base.Passwd == "" && mysqlEnUso {
			if Loopback(host) {
				s.base.Passwd = ClaveLocal
			} else {
				l.Problema("SAGAS_DB_PASSWORD", "", fmt.Sprintf("required (or SAGAS_DB_PASSWORD_FILE) when SAGAS_DB_HOST=%s is not loopback: the default %s applies only to 127.0.0.1, ::1 and localhost", host, ClaveLocal))
			}
		}
		if mysqlEnUso && host == "" {
			l.Problema("SAGAS_DB_HOST", host, "must not be empty with SAGAS_STORAGE_TYPE=mysql")
		}
		if mysqlEnUso && s.base.User == "" {
			l.Problema("SAGAS_DB_USER", "", "must not be empty with SAGAS_STORAGE_TYPE=mysql")
		}
	}
	s.base.Timeout = 10 * time.Second
	// A connection the network stopped answering (a partition, a frozen
	// server) fails a statement within this bound instead of the kernel's
	// many minutes; the runtime's statements are short. A DSN's own
	// readTimeout/writeTimeout win; the migration user has none (DDL on a
	// large table may take long).
	if s.base.ReadTimeout == 0 {
		s.base.ReadTimeout = PlazoLectura
	}
	if s.base.WriteTimeout == 0 {
		s.base.WriteTimeout = PlazoLectura
	}
	if s.ClaveMigracion != "" && s.UsuarioMigracion == "" {
		l.Problema("SAGAS_DB_MIGRATION_PASSWORD", "(hidden)", "set, but SAGAS_DB_MIGRATION_USER is not: name the migration user too")
	}
	if s.base.TLSConfig != "" { // the DSN's own tls=...
		if l.Definida("SAGAS_DB_TLS") {
			l.Problema("SAGAS_DB_TLS", modo, "SAGAS_DB_DSN already sets tls="+s.base.TLSConfig+": set only one")
		}
		if s.CAFile != "" {
			l.Problema("SAGAS_DB_TLS_CA_FILE", s.CAFile, "cannot be combined with tls= in SAGAS_DB_DSN: use SAGAS_DB_TLS=on instead of the DSN's tls")
		}
		s.TLS = s.base.TLSConfig
		return s
	}
	s.TLS = modo
	switch modo {
	case TLSSi:
		s.base.TLSConfig = "true"
		if s.CAFile != "" {
			nombre, err := registrarCA(s.CAFile)
			if err != nil {
				l.Problema("SAGAS_DB_TLS_CA_FILE", s.CAFile, err.Error())
			} else {
				s.base.TLSConfig = nombre
			}
		}
	case TLSSinVerificar:
		s.base.TLSConfig = "skip-verify"
		if s.CAFile != "" {
			l.Problema("SAGAS_DB_TLS_CA_FILE", s.CAFile, "has no use with SAGAS_DB_TLS=skip-verify, which verifies nothing: use SAGAS_DB_TLS=on")
		}
	default: // off, or an invalid value the reader has reported
		if s.CAFile != "" {
			l.Problema("SAGAS_DB_TLS_CA_FILE", s.CAFile, "set, but SAGAS_DB_TLS is off: set SAGAS_DB_TLS=on to use it")
		}
	}
	return s
}

// leerDSN parses SAGAS_DB_DSN, which names the server, the user and the
// options but no database: that comes from SAGAS_DB_NAME or, for a
// participant, SAGAS_DB_PREFIJO.
func leerDSN(l *configuracion.Lector, dsn string) *mysql.Config {
	for _, n := range []string{"SAGAS_DB_HOST", "SAGAS_DB_PORT", "SAGAS_DB_USER", "SAGAS_DB_PASSWORD", "SAGAS_DB_PASSWORD_FILE"} {
		if l.Definida(n) {
			l.Problema(n, "", "SAGAS_DB_DSN is set and replaces it: set only one")
		}
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The DSN may hold a password: never in the message.
		l.Problema("SAGAS_DB_DSN", "(hidden)", "not a go-sql-driver/mysql DSN such as user:password@tcp(host:3306)/?tls=true: "+sinDSN(err))
		return mysql.NewConfig()
	}
	if cfg.DBName != "" {
		l.Problema("SAGAS_DB_DSN", "(hidden)", fmt.Sprintf("names database %q: leave it out (…tcp(host:3306)/?…); the database is SAGAS_DB_NAME, or SAGAS_DB_PREFIJO plus the service for a participant", cfg.DBName))
		cfg.DBName = ""
	}
	return cfg
}

// sinDSN keeps the driver's reason, which never quotes the DSN except for
// an unknown tls name.
func sinDSN(err error) string {
	s := err.Error()
	if strings.Contains(s, "@") {
		return "invalid DSN"
	}
	return s
}

// registrarCA registers a TLS configuration that trusts the CAs in ruta
// (chain and host name verified) under a name derived from its content, and
// returns that name for the DSN's tls parameter.
func registrarCA(ruta string) (string, error) {
	pem, err := os.ReadFile(ruta)
	if err != nil {
		return "", fmt.Errorf("cannot read it: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return "", fmt.Errorf("holds no PEM certificate")
	}
	suma := sha256.Sum256(pem)
	nombre := "sagas-ca-" + hex.EncodeToString(suma[:8])
	if err := mysql.RegisterTLSConfig(nombre, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
		return "", err
	}
	return nombre, nil
}

// Loopback reports whether host names this machine: 127.0.0.0/8, ::1 or
// localhost.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// PlazoLectura bounds each read and write on a runtime connection
// (readTimeout, writeTimeout) unless the DSN sets its own.
const PlazoLectura = 30 * time.Second

// Config is the driver's configuration for database base as the runtime
// user (a copy the caller may change).
func (s Servidor) Config(base string) *mysql.Config {
	if s.base == nil { // the zero Servidor
		c := mysql.NewConfig()
		c.DBName = base
		return c
	}
	c := s.base.Clone()
	c.DBName = base
	return c
}

// ConfigMigracion is Config as the migration user, or as the runtime user
// when there is none (single-user mode).
func (s Servidor) ConfigMigracion(base string) *mysql.Config {
	c := s.Config(base)
	c.ReadTimeout, c.WriteTimeout = 0, 0
	if s.UsuarioMigracion != "" {
		c.User, c.Passwd = s.UsuarioMigracion, s.ClaveMigracion
	}
	return c
}

// DSN is Config as a DSN string.
func (s Servidor) DSN(base string) string { return s.Config(base).FormatDSN() }

// DSNMigracion is ConfigMigracion as a DSN string.
func (s Servidor) DSNMigracion(base string) string { return s.ConfigMigracion(base).FormatDSN() }

// ConMigracionAparte reports whether a migration user is configured: the
// runtime then checks the schema and never changes it.
func (s Servidor) ConMigracionAparte() bool { return s.UsuarioMigracion != "" }

// ValidarMigracion checks what the provisioning step needs: with a migration
// user, its password.
func (s Servidor) ValidarMigracion() error {
	if s.UsuarioMigracion != "" && s.ClaveMigracion == "" {
		return fmt.Errorf("SAGAS_DB_MIGRATION_PASSWORD (or SAGAS_DB_MIGRATION_PASSWORD_FILE): required to migrate as SAGAS_DB_MIGRATION_USER=%s", s.UsuarioMigracion)
	}
	return nil
}

// Direccion is the server's address, for messages.
func (s Servidor) Direccion() string { return s.Config("").Addr }

// DesdeConfig is the Servidor of cfg (its database ignored), with no
// migration user: for tests and callers that build the driver's
// configuration themselves.
func DesdeConfig(cfg *mysql.Config) Servidor {
	c := cfg.Clone()
	c.DBName = ""
	return Servidor{base: c, TLS: modoTLS(c.TLSConfig)}
}

// Usuario is the runtime user, for messages.
func (s Servidor) Usuario() string { return s.Config("").User }
