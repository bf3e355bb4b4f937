package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/integracion"
)

func TestConfigMySQLSinClaveFueraDeLoopbackEsUnError(t *testing.T) {
	_, err := leerConfig(entornoDe(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": "sagas-db"}))
	if err == nil || !strings.Contains(err.Error(), "SAGAS_DB_PASSWORD") {
		t.Fatalf("err = %v, want one naming SAGAS_DB_PASSWORD", err)
	}
	c, err := leerConfig(entornoDe(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": "localhost"}))
	if err != nil || !strings.HasPrefix(c.dsn(), "sagas:sagas123@tcp(localhost:3306)/sagas") {
		t.Fatalf("loopback: %v %s", err, c.dsn())
	}
}

func TestConfigTokenDeLaAPIDesdeFicheroYNoLosDos(t *testing.T) {
	ruta := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(ruta, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SAGAS_DB_PATH": t.TempDir() + "/c.db", "SAGAS_API_TOKEN_FILE": ruta}
	c, err := leerConfig(entornoDe(env))
	if err != nil || c.APIToken != "tok-1" {
		t.Fatalf("token %q, err %v", c.APIToken, err)
	}
	env["SAGAS_API_TOKEN"] = "tok-2"
	if _, err := leerConfig(entornoDe(env)); err == nil || !strings.Contains(err.Error(), "set either SAGAS_API_TOKEN or SAGAS_API_TOKEN_FILE, not both") {
		t.Fatalf("both set: %v", err)
	}
}

// TestMigrarAlmacenYLuegoAbrirComoUsuarioDeEjecucion is -preparar's store
// step and the start-up after it, against the MariaDB that requires TLS.
func TestMigrarAlmacenYLuegoAbrirComoUsuarioDeEjecucion(t *testing.T) {
	seg := integracion.MySQLSeguro(t)
	env := seg.Entorno(t)
	env["SAGAS_DB_NAME"] = seg.BaseNueva(t, "cc_")
	cfg, err := leerConfig(entornoDe(env))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Before -preparar: refused at once (no 30 s of retries), naming the step.
	inicio := time.Now()
	_, err = abrirAlmacen(ctx, cfg)
	if !errors.Is(err, basedatos.ErrEsquema) || !strings.Contains(err.Error(), "coordinador -preparar") {
		t.Fatalf("abrirAlmacen before -preparar: %v", err)
	}
	if d := time.Since(inicio); d > 5*time.Second {
		t.Errorf("a schema error was retried for %v", d)
	}
	if err := migrarAlmacen(ctx, cfg); err != nil {
		t.Fatalf("migrarAlmacen: %v", err)
	}
	db, err := abrirAlmacen(ctx, cfg)
	if err != nil {
		t.Fatalf("abrirAlmacen after -preparar: %v", err)
	}
	db.Close()

	// Without the migration password, -preparar says what is missing.
	delete(env, "SAGAS_DB_MIGRATION_PASSWORD_FILE")
	cfg, err = leerConfig(entornoDe(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrarAlmacen(ctx, cfg); err == nil || !strings.Contains(err.Error(), "SAGAS_DB_MIGRATION_PASSWORD") {
		t.Errorf("migrarAlmacen without the password: %v", err)
	}
	// A refused certificate is not retried either.
	env["SAGAS_DB_TLS_CA_FILE"] = filepath.Join(integracion.PulsarSeguro(t).Dir, "ca.pem") // another CA: the broker's
	cfg, err = leerConfig(entornoDe(env))
	if err != nil {
		t.Fatal(err)
	}
	inicio = time.Now()
	if _, err := abrirAlmacen(ctx, cfg); !errors.Is(err, basedatos.ErrCertificado) || time.Since(inicio) > 5*time.Second {
		t.Errorf("untrusted certificate: %v after %v", err, time.Since(inicio))
	}
}
