package preparadas_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/alpespartner/sagas/internal/preparadas"
)

func abrir(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "p.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	return db
}

// esperarPreparada calls Sentencia until the background preparation is done.
func esperarPreparada(t *testing.T, c *preparadas.Cache, q string) *sql.Stmt {
	t.Helper()
	limite := time.Now().Add(5 * time.Second)
	for {
		if st := c.Sentencia(q); st != nil {
			return st
		}
		if time.Now().After(limite) {
			t.Fatalf("%q not prepared after 5 s", q)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEjecutaIgualPreparadaOSinPreparar(t *testing.T) {
	db := abrir(t)
	c := preparadas.Nueva(db, 0)
	defer c.Close()
	ctx := context.Background()
	const ins = "INSERT INTO t (k, v) VALUES (?, ?)"
	const sel = "SELECT v FROM t WHERE k = ?"
	// The first calls run as text (nothing prepared yet), the later ones
	// through the prepared statements; inside a transaction and outside.
	for i := range 20 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ex := c.En(tx)
		if _, err := ex.ExecContext(ctx, ins, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := ex.QueryRowContext(ctx, sel, fmt.Sprint("k", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("in the transaction: read %d, %v; want %d", v, err, i)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			esperarPreparada(t, c, ins)
			esperarPreparada(t, c, sel)
		}
	}
	if n := c.Preparadas(); n != 2 {
		t.Fatalf("%d statements prepared, want 2", n)
	}
	filas, err := c.Query(ctx, db, "SELECT count(*) FROM t WHERE v >= ?", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer filas.Close()
	var n int
	if !filas.Next() {
		t.Fatal("no row")
	}
	if err := filas.Scan(&n); err != nil || n != 20 {
		t.Fatalf("count %d, %v; want 20", n, err)
	}
}

func TestUnaTransaccionDeshechaNoDejaNadaConSentenciasPreparadas(t *testing.T) {
	db := abrir(t)
	c := preparadas.Nueva(db, 0)
	defer c.Close()
	ctx := context.Background()
	const ins = "INSERT INTO t (k, v) VALUES (?, ?)"
	esperarPreparada(t, c, ins)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, tx, ins, "a", 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows after the rollback (%v), want 0", n, err)
	}
}

func TestCacheAcotadaYCerrada(t *testing.T) {
	db := abrir(t)
	c := preparadas.Nueva(db, 3)
	for i := range 3 {
		esperarPreparada(t, c, fmt.Sprintf("SELECT v FROM t WHERE v = %d", i))
	}
	if st := c.Sentencia("SELECT v FROM t WHERE v = 99"); st != nil {
		t.Fatal("a fourth statement was prepared in a cache of 3")
	}
	time.Sleep(20 * time.Millisecond)
	if n := c.Preparadas(); n != 3 {
		t.Fatalf("%d prepared, want 3", n)
	}
	// Full, a statement still runs, unprepared.
	if _, err := c.Exec(context.Background(), db, "INSERT INTO t (k, v) VALUES ('x', 1)"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if st := c.Sentencia("SELECT v FROM t WHERE v = 0"); st != nil {
		t.Fatal("Sentencia returned a statement after Close")
	}
	if n := c.Preparadas(); n != 0 {
		t.Fatalf("%d prepared after Close, want 0", n)
	}
	if _, err := c.Exec(context.Background(), db, "INSERT INTO t (k, v) VALUES ('y', 2)"); err != nil {
		t.Fatalf("after Close a statement runs unprepared: %v", err)
	}
}

func TestCacheNulaEjecutaComoTexto(t *testing.T) {
	db := abrir(t)
	var c *preparadas.Cache
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ex := c.En(tx)
	if _, ok := ex.(*sql.Tx); !ok {
		t.Fatalf("En of a nil cache is %T, want the *sql.Tx itself", ex)
	}
	if _, err := c.Exec(ctx, tx, "INSERT INTO t (k, v) VALUES (?, ?)", "a", 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if c.Sentencia("SELECT 1") != nil || c.Preparadas() != 0 {
		t.Fatal("a nil cache prepared something")
	}
	c.Close()
}
