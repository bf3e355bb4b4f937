package almacen_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/integracion"
)

// servidorSeguro reads the TLS server's settings the way the binaries do.
func servidorSeguro(t *testing.T) basedatos.Servidor {
	t.Helper()
	env := integracion.MySQLSeguro(t).Entorno(t)
	l := configuracion.Leer(func(k string) string { return env[k] })
	s := basedatos.Leer(l, true)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

func esEsquemaError(t *testing.T, err error, contiene ...string) {
	t.Helper()
	var e *basedatos.EsquemaError
	if !errors.As(err, &e) || !errors.Is(err, basedatos.ErrEsquema) || !basedatos.Definitivo(err) {
		t.Fatalf("err = %v, want a *basedatos.EsquemaError", err)
	}
	for _, c := range contiene {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("%q missing from: %v", c, err)
		}
	}
}

func TestUsuarioDeEjecucionSoloComprobandoYMigracionAparte(t *testing.T) {
	ctx := context.Background()
	srv := servidorSeguro(t)
	base := integracion.MySQLSeguro(t).BaseNueva(t, "co_")
	ejecucion := almacen.Config{Tipo: almacen.TipoMySQL, DSN: srv.DSN(base), SoloComprobar: true}
	migracion := almacen.Config{Tipo: almacen.TipoMySQL, DSN: srv.DSNMigracion(base)}
	n := almacen.VersionEsquema()

	// Nothing provisioned: the runtime refuses, saying what to run.
	_, err := almacen.Abrir(ctx, ejecucion)
	esEsquemaError(t, err, fmt.Sprintf("el esquema de la base de datos %s está en la versión 0 y este binario necesita %d", base, n),
		"ejecute `coordinador -preparar` con el usuario de migración")

	if err := almacen.Migrar(ctx, migracion); err != nil {
		t.Fatalf("Migrar as the migration user: %v", err)
	}
	if err := almacen.Migrar(ctx, migracion); err != nil {
		t.Fatalf("Migrar twice: %v", err)
	}
	db, err := almacen.Abrir(ctx, ejecucion)
	if err != nil {
		t.Fatalf("runtime after Migrar: %v", err)
	}
	crear(t, db, sagaMinima("s-tls-1", time.Now()), "")
	if got := leer(t, db, "s-tls-1"); got.ID != "s-tls-1" {
		t.Errorf("saga read back: %+v", got)
	}
	db.Close()

	// The runtime user has data privileges only: Abrir without SoloComprobar
	// fails at the first DDL, which is why a migration user turns it on.
	crudoApp := crudo(t, ejecucion)
	if _, err := crudoApp.ExecContext(ctx, "CREATE TABLE intrusa (a INT)"); err == nil {
		t.Fatal("the runtime user could run DDL")
	} else {
		t.Logf("DDL as the runtime user: %v", err)
	}
	if _, err := almacen.Abrir(ctx, almacen.Config{Tipo: almacen.TipoMySQL, DSN: srv.DSN(base)}); err == nil {
		t.Error("Abrir that migrates succeeded as the runtime user")
	}

	// An older schema (the last migration not recorded) is refused with the
	// versions.
	crudoMig := crudo(t, migracion)
	if _, err := crudoMig.ExecContext(ctx, "DELETE FROM schema_migrations WHERE version = ?", n); err != nil {
		t.Fatal(err)
	}
	_, err = almacen.Abrir(ctx, ejecucion)
	esEsquemaError(t, err, fmt.Sprintf("está en la versión %d y este binario necesita %d", n-1, n), "coordinador -preparar")
	if _, err := crudoMig.ExecContext(ctx, "INSERT INTO schema_migrations (version, nombre, aplicada) VALUES (?, 'restaurada', 'x')", n); err != nil {
		t.Fatal(err)
	}

	// A newer schema: refused by the runtime and by Migrar alike.
	if _, err := crudoMig.ExecContext(ctx, "INSERT INTO schema_migrations (version, nombre, aplicada) VALUES (?, 'futura', 'x')", n+90); err != nil {
		t.Fatal(err)
	}
	_, err = almacen.Abrir(ctx, ejecucion)
	esEsquemaError(t, err, fmt.Sprintf("está en la versión %d, más nueva que la %d que conoce este binario", n+90, n))
	esEsquemaError(t, almacen.Migrar(ctx, migracion), "más nueva")
}

func TestEsquemaMasNuevoLoRechazaMigrarYAbrirQueMigraLoDejaComoEsta(t *testing.T) {
	c := almacen.Config{Tipo: almacen.TipoSQLite, Ruta: filepath.Join(t.TempDir(), "s.db")}
	db := abrir(t, c)
	db.Close()
	raw, err := sql.Open("sqlite", c.Ruta)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	n := almacen.VersionEsquema()
	if _, err := raw.Exec("INSERT INTO schema_migrations (version, nombre, aplicada) VALUES (?, 'futura', 'x')", n+4); err != nil {
		t.Fatal(err)
	}
	esEsquemaError(t, almacen.Migrar(context.Background(), c), fmt.Sprintf("versión %d, más nueva que la %d", n+4, n))
	// Migrating at start (one user, development) keeps working next to a
	// newer binary's schema, as before.
	if db, err := almacen.Abrir(context.Background(), c); err != nil {
		t.Fatalf("Abrir next to a newer schema: %v", err)
	} else {
		db.Close()
	}
}
