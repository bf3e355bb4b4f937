package almacen

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/internal/integracion"
)

func TestSQLiteConfiguraCadaConexion(t *testing.T) {
	db, err := Abrir(t.Context(), Config{Tipo: TipoSQLite, Ruta: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Several connections at once, so that more than one is opened.
	conns := make([]interface{ Close() error }, 3)
	for i := range conns {
		c, err := db.sql.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		var modo string
		var fk, espera, sincro int
		for q, dest := range map[string]any{
			"PRAGMA journal_mode": &modo, "PRAGMA foreign_keys": &fk,
			"PRAGMA busy_timeout": &espera, "PRAGMA synchronous": &sincro,
		} {
			if err := c.QueryRowContext(t.Context(), q).Scan(dest); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if modo != "wal" || fk != 1 || espera < 1000 || sincro != 2 {
			t.Fatalf("conexión %d: journal_mode %s foreign_keys %d busy_timeout %d synchronous %d", i, modo, fk, espera, sincro)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestMySQLConfiguraCadaConexion(t *testing.T) {
	dsn := integracion.MySQLDSN(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = false // Abrir must force it
	db, err := Abrir(t.Context(), Config{Tipo: TipoMySQL, DSN: cfg.FormatDSN(), MaxConexiones: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.sql.Stats().MaxOpenConnections; n != 4 {
		t.Fatalf("MaxOpenConnections %d, quiero 4", n)
	}
	var nivel string
	err = db.sql.QueryRowContext(t.Context(), "SELECT @@SESSION.tx_isolation").Scan(&nivel)
	if err != nil {
		err = db.sql.QueryRowContext(t.Context(), "SELECT @@SESSION.transaction_isolation").Scan(&nivel)
	}
	if err != nil || nivel != "READ-COMMITTED" {
		t.Fatalf("aislamiento %q, %v; quiero READ-COMMITTED", nivel, err)
	}
	var ahora any
	if err := db.sql.QueryRowContext(context.Background(), "SELECT NOW(6)").Scan(&ahora); err != nil {
		t.Fatal(err)
	}
	if _, ok := ahora.(interface{ UnixMicro() int64 }); !ok {
		t.Fatalf("DATETIME leído como %T: parseTime no está forzado", ahora)
	}
}

func TestSentenciasDeUnaMigracion(t *testing.T) {
	got := sentencias("-- comentario; con punto y coma\nCREATE TABLE a (\n  x INT -- dentro\n);\n\n  -- otro\nCREATE INDEX i ON a (x);\nSELECT 1")
	want := []string{"CREATE TABLE a (\n  x INT -- dentro\n)", "CREATE INDEX i ON a (x)", "SELECT 1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sentencias = %q, quiero %q", got, want)
	}
	for _, d := range []string{TipoSQLite, TipoMySQL} {
		ms, err := cargarMigraciones(d)
		if err != nil || len(ms) == 0 {
			t.Fatalf("%s: %d migraciones, %v", d, len(ms), err)
		}
		for _, m := range ms {
			for _, s := range sentencias(m.sql) {
				if strings.Contains(s, ";") {
					t.Errorf("%s: sentencia con ';' dentro: %.60q", m.nombre, s)
				}
			}
		}
	}
}

func TestPatronDePrefijoEscapaComodines(t *testing.T) {
	if got := dialectoSQLite.patron("a*b?c[d]"); got != "a[*]b[?]c[[]d]*" {
		t.Errorf("sqlite: %q", got)
	}
	if got := dialectoMySQL.patron("a%b_c!d"); got != "a!%b!_c!!d%" {
		t.Errorf("mysql: %q", got)
	}
}
