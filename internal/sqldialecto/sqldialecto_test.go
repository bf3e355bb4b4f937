package sqldialecto

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"
)

func TestFilasRepiteLaFilaSeparadaPorComas(t *testing.T) {
	for _, c := range []struct {
		n          int
		fila, want string
	}{
		{0, "(?, ?)", ""},
		{-1, "?", ""},
		{1, "(?, ?)", "(?, ?)"},
		{3, "(?, ?)", "(?, ?), (?, ?), (?, ?)"},
	} {
		if got := Filas(c.n, c.fila); got != c.want {
			t.Errorf("Filas(%d, %q) = %q, want %q", c.n, c.fila, got, c.want)
		}
	}
	if got := Marcadores(3); got != "?, ?, ?" {
		t.Errorf("Marcadores(3) = %q", got)
	}
}

func TestErroresDeMySQLSeClasificanPorSuNumeroAunqueVenganEnvueltos(t *testing.T) {
	envolver := func(n uint16) error { return fmt.Errorf("contexto: %w", &mysql.MySQLError{Number: n}) }
	for _, c := range []struct {
		nombre                  string
		err                     error
		duplicado, reintentable bool
	}{
		{"clave duplicada", envolver(ErClaveDuplicada), true, false},
		{"interbloqueo", envolver(ErInterbloqueo), false, true},
		{"espera de bloqueo agotada", envolver(ErEsperaDeBloqueo), false, true},
		{"otro error del servidor", envolver(1146), false, false},
		{"error que no es de MySQL", errors.New("x"), false, false},
		{"sin error", nil, false, false},
	} {
		if got := DuplicadoMySQL(c.err); got != c.duplicado {
			t.Errorf("%s: DuplicadoMySQL = %v", c.nombre, got)
		}
		if got := ReintentableMySQL(c.err); got != c.reintentable {
			t.Errorf("%s: ReintentableMySQL = %v", c.nombre, got)
		}
		if DuplicadoSQLite(c.err) || ReintentableSQLite(c.err) {
			t.Errorf("%s: a MySQL error classified as a SQLite one", c.nombre)
		}
	}
}

func TestErroresDeSQLiteSeClasificanPorSuCodigo(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (k INT PRIMARY KEY, u INT UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	for nombre, q := range map[string]string{
		"clave primaria": "INSERT INTO t VALUES (1, 2)",
		"unica":          "INSERT INTO t VALUES (2, 1)",
	} {
		_, err := db.Exec(q)
		if !DuplicadoSQLite(fmt.Errorf("envuelto: %w", err)) || ReintentableSQLite(err) || DuplicadoMySQL(err) {
			t.Errorf("%s: %v not classified as a duplicate only", nombre, err)
		}
	}
	_, err = db.Exec("SELECT * FROM no_existe")
	if err == nil || DuplicadoSQLite(err) || ReintentableSQLite(err) {
		t.Errorf("missing table: %v classified as duplicate or retryable", err)
	}
}
