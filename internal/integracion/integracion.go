// Package integracion gives tests the addresses of the real services
// (Pulsar broker, MariaDB) started by scripts/test.sh.
//
// Under `make test` the variable SAGAS_TEST_REQUIRED=1 is set, so a test that
// needs a service fails instead of skipping when the service is not there. A
// plain `go test ./...` without the services skips those tests with a message
// that says how to run them.
package integracion

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"
)

const howTo = "start the services with `make test` (or scripts/test.sh), which sets %s"

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("SAGAS_TEST_REQUIRED") == "1" {
		t.Fatalf("%s is not set but SAGAS_TEST_REQUIRED=1: integration tests must run", name)
	}
	t.Skipf("integration test skipped: "+howTo, name)
	return ""
}

// PulsarURL returns the broker's binary service URL, e.g. pulsar://127.0.0.1:6650.
func PulsarURL(t testing.TB) string { return need(t, "SAGAS_TEST_PULSAR_URL") }

// PulsarAdminURL returns the broker's admin REST URL, e.g. http://127.0.0.1:8080.
func PulsarAdminURL(t testing.TB) string { return need(t, "SAGAS_TEST_PULSAR_ADMIN_URL") }

// Jaeger returns the path of a Jaeger all-in-one binary (v2, the go.mod
// tool of scripts/jaeger, which scripts/test.sh builds), for the trace tests.
func Jaeger(t testing.TB) string { return need(t, "SAGAS_TEST_JAEGER") }

// MySQLDSN returns a go-sql-driver/mysql DSN for the test MariaDB server
// (database sagas, user sagas). Tests that need isolation create their own
// databases with this user, which has the privileges to do so.
func MySQLDSN(t testing.TB) string { return need(t, "SAGAS_TEST_MYSQL_DSN") }

// BaseMySQL creates an empty database <prefijo><random hex> on the test
// MariaDB server, drops it when the test ends (a failed drop fails the test),
// and returns the configuration that opens it.
func BaseMySQL(t testing.TB, prefijo string) *mysql.Config {
	t.Helper()
	cfg, err := mysql.ParseDSN(MySQLDSN(t))
	if err != nil {
		t.Fatalf("SAGAS_TEST_MYSQL_DSN: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	nombre := prefijo + hex.EncodeToString(b)
	admin := cfg.Clone()
	admin.DBName = ""
	adm, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Exec("CREATE DATABASE " + nombre); err != nil {
		adm.Close()
		t.Fatalf("crear base de datos de prueba: %v", err)
	}
	t.Cleanup(func() {
		if _, err := adm.Exec("DROP DATABASE " + nombre); err != nil {
			t.Errorf("borrar %s: %v", nombre, err)
		}
		adm.Close()
	})
	cfg.DBName = nombre
	return cfg
}

// ContarComandos makes the connections opened from cfg (or from a DSN made
// of it) count the commands the client sends, one per round trip, and
// returns the count. It changes cfg.Net to a dial function registered for
// the test.
func ContarComandos(t testing.TB, cfg *mysql.Config) *atomic.Int64 {
	t.Helper()
	n := new(atomic.Int64)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	red := "contar" + hex.EncodeToString(b)
	mysql.RegisterDialContext(red, func(ctx context.Context, dir string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", dir)
		if err != nil {
			return nil, err
		}
		return contador{c, n}, nil
	})
	t.Cleanup(func() { mysql.DeregisterDialContext(red) })
	cfg.Net = red
	return n
}

// contador counts the commands written: each starts a new packet sequence
// (sequence id 0, byte 3 of the header), written in one Write by the driver.
type contador struct {
	net.Conn
	n *atomic.Int64
}

func (c contador) Write(b []byte) (int, error) {
	if len(b) > 4 && b[3] == 0 {
		c.n.Add(1)
	}
	return c.Conn.Write(b)
}

// Required reports whether integration tests must run (under make test).
func Required() bool { return os.Getenv("SAGAS_TEST_REQUIRED") == "1" }

// BrokerSeguro is the secured broker scripts/test.sh starts (scripts/pulsar.sh
// with PULSAR_SEGURO=1): TLS only, token and mTLS authentication,
// authorization on.
type BrokerSeguro struct {
	URL      string // SAGAS_TEST_PULSAR_SEGURO_URL, e.g. pulsar+ssl://127.0.0.1:6671
	AdminURL string // SAGAS_TEST_PULSAR_SEGURO_ADMIN_URL, e.g. https://127.0.0.1:8471
	// Dir is SAGAS_TEST_PULSAR_SEGURO_DIR, the broker's seguridad/ directory:
	// ca.pem, token-secret.key and, per role, <role>.token, <role>.pem, <role>.key.
	Dir string
}

// PulsarSeguro returns the secured broker's addresses and credentials.
func PulsarSeguro(t testing.TB) BrokerSeguro {
	return BrokerSeguro{
		URL:      need(t, "SAGAS_TEST_PULSAR_SEGURO_URL"),
		AdminURL: need(t, "SAGAS_TEST_PULSAR_SEGURO_ADMIN_URL"),
		Dir:      need(t, "SAGAS_TEST_PULSAR_SEGURO_DIR"),
	}
}

// MariaDBSegura is the MariaDB that requires TLS, started by scripts/test.sh
// (scripts/mariadb.sh with MARIADB_TLS=1): users sagas_migracion (DDL and
// data) and sagas_app (data only), both REQUIRE SSL, with privileges on
// `sagas`, `sagas_%` and `participante_%`.
type MariaDBSegura struct {
	Addr string // SAGAS_TEST_MYSQL_SEGURO_ADDR, e.g. 127.0.0.1:3327
	// Dir is SAGAS_TEST_MYSQL_SEGURO_DIR, the instance's seguridad/
	// directory: ca.pem and <user>.password.
	Dir string
}

// The users of MariaDBSegura.
const (
	UsuarioMigracion = "sagas_migracion"
	UsuarioApp       = "sagas_app"
)

// MySQLSeguro returns the TLS MariaDB's address and credentials directory.
func MySQLSeguro(t testing.TB) MariaDBSegura {
	return MariaDBSegura{Addr: need(t, "SAGAS_TEST_MYSQL_SEGURO_ADDR"), Dir: need(t, "SAGAS_TEST_MYSQL_SEGURO_DIR")}
}

// CA is the file of the CA that signed the server's certificate.
func (m MariaDBSegura) CA() string { return filepath.Join(m.Dir, "ca.pem") }

// ClaveFichero is the file holding usuario's password (no newline).
func (m MariaDBSegura) ClaveFichero(usuario string) string {
	return filepath.Join(m.Dir, usuario+".password")
}

// Clave is usuario's password.
func (m MariaDBSegura) Clave(t testing.TB, usuario string) string {
	t.Helper()
	b, err := os.ReadFile(m.ClaveFichero(usuario))
	if err != nil {
		t.Fatalf("clave de %s: %v", usuario, err)
	}
	return string(b)
}

// BaseNueva returns the name of a database sagas_<prefijo><random hex>
// that does not exist yet, and drops it (as the migration user, over TLS)
// when the test ends if something created it.
func (m MariaDBSegura) BaseNueva(t testing.TB, prefijo string) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	nombre := "sagas_" + prefijo + hex.EncodeToString(b)
	m.BorrarAlTerminar(t, nombre)
	return nombre
}

// BorrarAlTerminar drops database nombre (as the migration user, over TLS)
// when the test ends, if it exists then.
func (m MariaDBSegura) BorrarAlTerminar(t testing.TB, nombre string) {
	t.Helper()
	t.Cleanup(func() {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(m.CA())
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			t.Errorf("borrar %s: CA %s: %v", nombre, m.CA(), err)
			return
		}
		cfg := mysql.NewConfig()
		cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", m.Addr, UsuarioMigracion, m.Clave(t, UsuarioMigracion)
		cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		con, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Errorf("borrar %s: %v", nombre, err)
			return
		}
		db := sql.OpenDB(con)
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS `" + nombre + "`"); err != nil {
			t.Errorf("borrar %s: %v", nombre, err)
		}
	})
}

// Entorno is the environment that points a binary at this server the way
// production does: MySQL over TLS verified with the CA, runtime user
// sagas_app and migration user sagas_migracion, passwords from their files.
func (m MariaDBSegura) Entorno(t testing.TB) map[string]string {
	t.Helper()
	host, puerto, err := net.SplitHostPort(m.Addr)
	if err != nil {
		t.Fatalf("SAGAS_TEST_MYSQL_SEGURO_ADDR=%q: %v", m.Addr, err)
	}
	return map[string]string{
		"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": host, "SAGAS_DB_PORT": puerto,
		"SAGAS_DB_TLS": "on", "SAGAS_DB_TLS_CA_FILE": m.CA(),
		"SAGAS_DB_USER": UsuarioApp, "SAGAS_DB_PASSWORD_FILE": m.ClaveFichero(UsuarioApp),
		"SAGAS_DB_MIGRATION_USER": UsuarioMigracion, "SAGAS_DB_MIGRATION_PASSWORD_FILE": m.ClaveFichero(UsuarioMigracion),
	}
}
