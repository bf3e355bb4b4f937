package almacen_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/participantes/almacen"
	"github.com/alpespartner/sagas/participantes/internal/prueba"
)

func esEsquemaError(t *testing.T, err error, contiene ...string) {
	t.Helper()
	var e *basedatos.EsquemaError
	if !errors.As(err, &e) || !basedatos.Definitivo(err) {
		t.Fatalf("err = %v, want a *basedatos.EsquemaError", err)
	}
	for _, c := range contiene {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("%q missing from: %v", c, err)
		}
	}
}

func TestAlmacenDelParticipanteConUsuarioDeMigracionAparte(t *testing.T) {
	ctx := t.Context()
	seg := integracion.MySQLSeguro(t)
	env := seg.Entorno(t)
	l := configuracion.Leer(func(k string) string { return env[k] })
	srv := basedatos.Leer(l, true)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	base := seg.BaseNueva(t, "pa_")
	ejecucion := almacen.Opciones{Tipo: almacen.MySQL, Conexiones: 2, SoloComprobar: true, ComandoMigrar: "prueba -preparar",
		MySQL: almacen.ServidorMySQL{Config: srv.Config(""), BaseDatos: base}}
	migracion := ejecucion
	migracion.MySQL.Config = srv.ConfigMigracion("")
	s := prueba.Servicio()

	// No database yet: the runtime user neither creates it nor starts.
	_, err := almacen.Abrir(ctx, ejecucion, &s)
	esEsquemaError(t, err, base, fmt.Sprintf("versión 0 y este binario necesita %d", almacen.VersionEsquemaRuntime), "ejecute `prueba -preparar`")

	if err := almacen.Migrar(ctx, migracion, &s); err != nil {
		t.Fatalf("Migrar: %v", err)
	}
	if err := almacen.Migrar(ctx, migracion, &s); err != nil {
		t.Fatalf("Migrar twice: %v", err)
	}
	a, err := almacen.Abrir(ctx, ejecucion, &s)
	if err != nil {
		t.Fatalf("runtime after Migrar: %v", err)
	}
	if _, err := a.Efectos(ctx, "s1"); err != nil {
		t.Errorf("read as the runtime user: %v", err)
	}
	a.Close()

	// The service's tables changed (a newer declaration): the runtime
	// refuses the old store until it is migrated again.
	s2 := prueba.Servicio()
	s2.VersionEsquema = 2
	_, err = almacen.Abrir(ctx, ejecucion, &s2)
	esEsquemaError(t, err, "tablas de prueba", "versión 1 y este binario necesita 2")
	if err := almacen.Migrar(ctx, migracion, &s2); err != nil {
		t.Fatalf("Migrar to 2: %v", err)
	}
	if a, err := almacen.Abrir(ctx, ejecucion, &s2); err != nil {
		t.Fatalf("runtime at 2: %v", err)
	} else {
		a.Close()
	}
	// And the older binary now meets a newer schema.
	_, err = almacen.Abrir(ctx, ejecucion, &s)
	esEsquemaError(t, err, "versión 2, más nueva que la 1")
	esEsquemaError(t, almacen.Migrar(ctx, migracion, &s), "más nueva")

	// The runtime user may not change the schema.
	cfg := srv.Config(base)
	con, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(con)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP TABLE inbox"); err == nil {
		t.Error("the runtime user dropped a table")
	}
}
