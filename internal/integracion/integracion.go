// Package integracion gives tests the addresses of the real services
// (Pulsar broker, MariaDB) started by scripts/test.sh.
//
// Under `make test` the variable SAGAS_TEST_REQUIRED=1 is set, so a test that
// needs a service fails instead of skipping when the service is not there. A
// plain `go test ./...` without the services skips those tests with a message
// that says how to run them.
package integracion

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
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
