package mysqltx_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/mysqltx"
)

// abrir opens a fresh database through the wrapped connector, with one
// connection, and returns it with the count of commands sent.
func abrir(t *testing.T) (*sql.DB, *atomic.Int64) {
	t.Helper()
	cfg := integracion.BaseMySQL(t, "mysqltx_")
	cfg.MultiStatements, cfg.InterpolateParams = true, true
	n := integracion.ContarComandos(t, cfg)
	con, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(mysqltx.Conector(con))
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return db, n
}

// empezar opens a transaction with the default options.
func empezar(t *testing.T, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func filas(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTransaccionSinViajesPropios(t *testing.T) {
	db, n := abrir(t)
	ctx := context.Background()
	antes := n.Load()
	tx := empezar(t, db)
	res, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?, ?), (?, ?)", 1, 10, 2, 20)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := res.RowsAffected(); a != 2 {
		t.Fatalf("RowsAffected = %d, want 2", a)
	}
	var v int
	if err := tx.QueryRowContext(ctx, "SELECT v FROM t WHERE k = ? FOR UPDATE", 2).Scan(&v); err != nil || v != 20 {
		t.Fatalf("read in the transaction: %d, %v", v, err)
	}
	res, err = tx.ExecContext(mysqltx.ConCommit(ctx), "UPDATE t SET v = v + 1")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := res.RowsAffected(); a != 2 {
		t.Fatalf("RowsAffected with the COMMIT = %d, want the UPDATE's 2", a)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := n.Load() - antes; got != 3 {
		t.Fatalf("commands sent = %d, want 3 (BEGIN and COMMIT travel with the statements)", got)
	}
	// Committed: another connection would see it; check from a fresh
	// transaction of this one, and the values.
	var suma int
	if err := db.QueryRow("SELECT SUM(v) FROM t").Scan(&suma); err != nil || suma != 32 {
		t.Fatalf("sum = %d, %v; want 32", suma, err)
	}
}

// ConResultados reports each statement of a text of several, without the
// START TRANSACTION and COMMIT the package adds, on the first statement of a
// transaction, a middle one and the last.
func TestResultadosDeCadaEnunciado(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	if _, err := db.Exec("CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) AUTO_INCREMENT = 41"); err != nil {
		t.Fatal(err)
	}
	tx := empezar(t, db)
	var got [][2][]int64
	informe := mysqltx.ConResultados(ctx, func(filas, ids []int64) { got = append(got, [2][]int64{filas, ids}) })
	pasos := []struct {
		ctx context.Context
		q   string
	}{
		{informe, "INSERT INTO t VALUES (1, 10), (2, 20);\nINSERT INTO a (v) VALUES (5)"},
		{informe, "UPDATE t SET v = v + 1 WHERE k = 1;\nINSERT INTO a (v) VALUES (6), (7);\nDELETE FROM t WHERE k = 9"},
		{mysqltx.ConCommit(informe), "UPDATE t SET v = 0;\nINSERT INTO a (v) VALUES (8)"},
	}
	for _, p := range pasos {
		if _, err := tx.ExecContext(p.ctx, p.q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	want := "[[[2 1] [0 41]] [[1 2 0] [0 42 0]] [[2 1] [0 44]]]"
	if s := fmt.Sprint(got); s != want {
		t.Fatalf("reported %s, want %s", s, want)
	}
}

func TestIdInsertadoConElCommit(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	if _, err := db.Exec("CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) AUTO_INCREMENT = 41"); err != nil {
		t.Fatal(err)
	}
	tx := empezar(t, db)
	res, err := tx.ExecContext(mysqltx.ConCommit(ctx), "INSERT INTO a (v) VALUES (?)", 7)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := res.LastInsertId(); err != nil || id != 41 {
		t.Fatalf("LastInsertId with the COMMIT = %d, %v; want the INSERT's 41", id, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestRollbackDeshaceElPrimerEnunciado(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	tx := empezar(t, db)
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := filas(t, db); got != 0 {
		t.Fatalf("rows after rollback = %d, want 0: the first statement ran outside the transaction", got)
	}
}

func TestFalloAntesDelCommitNoConfirmaNada(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	if _, err := db.Exec("INSERT INTO t VALUES (5, 5)"); err != nil {
		t.Fatal(err)
	}
	tx := empezar(t, db)
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	// The second statement fails on the duplicate key: the COMMIT after it
	// must not run.
	_, err := tx.ExecContext(mysqltx.ConCommit(ctx), "INSERT INTO t VALUES (2, 2); INSERT INTO t VALUES (5, 6)")
	if err == nil {
		t.Fatal("duplicate key: no error")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := filas(t, db); got != 1 {
		t.Fatalf("rows = %d, want only the one from before the transaction", got)
	}
}

func TestTransaccionVaciaNoEnviaNada(t *testing.T) {
	db, n := abrir(t)
	for _, fin := range []func(*sql.Tx) error{(*sql.Tx).Commit, (*sql.Tx).Rollback} {
		antes := n.Load()
		tx := empezar(t, db)
		if err := fin(tx); err != nil {
			t.Fatal(err)
		}
		if got := n.Load() - antes; got != 0 {
			t.Fatalf("an empty transaction sent %d commands", got)
		}
	}
}

func TestPreparadaComoPrimerEnunciado(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	st, err := db.PrepareContext(ctx, "INSERT INTO t VALUES (?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, confirmar := range []bool{false, true} {
		tx := empezar(t, db)
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, 1, 1); err != nil {
			t.Fatal(err)
		}
		// The second run of the statement is a real prepared execution.
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, 2, 2); err != nil {
			t.Fatal(err)
		}
		if confirmar {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if confirmar {
			want = 2
		}
		if got := filas(t, db); got != want {
			t.Fatalf("commit=%v: rows = %d, want %d", confirmar, got, want)
		}
	}
}

func TestConOpcionesLaAbreElDriver(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	if _, err := db.Exec("INSERT INTO t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (2, 2)"); err == nil {
		t.Fatal("write in a read-only transaction: no error")
	}
	tx.Rollback()
	// A mark outside a lazy transaction changes nothing: autocommit.
	if _, err := db.ExecContext(mysqltx.ConCommit(ctx), "INSERT INTO t VALUES (3, 3)"); err != nil {
		t.Fatal(err)
	}
	if got := filas(t, db); got != 2 {
		t.Fatalf("rows = %d, want 2", got)
	}
}

func TestEnunciadoTrasElCommitEsUnError(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	tx := empezar(t, db)
	defer tx.Rollback()
	if _, err := tx.ExecContext(mysqltx.ConCommit(ctx), "INSERT INTO t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (2, 2)"); err == nil {
		t.Fatal("a statement after the marked one ran outside the transaction without error")
	}
}

func TestConexionPerdidaEnLaTransaccion(t *testing.T) {
	db, _ := abrir(t)
	ctx := context.Background()
	tx := empezar(t, db)
	var id int64
	// The first statement, with the START TRANSACTION in front of it.
	if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	// Another session kills this one: the server rolls the transaction back.
	otra, err := sql.Open("mysql", integracion.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer otra.Close()
	if _, err := otra.Exec("KILL CONNECTION ?", id); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(mysqltx.ConCommit(ctx), "INSERT INTO t VALUES (2, 2)"); err == nil {
		t.Fatal("statement on a killed connection: no error")
	}
	tx.Rollback() // the connection is gone; its error does not matter

	// The pool replaces the connection, and a new lazy transaction works.
	tx = empezar(t, db)
	if _, err := tx.ExecContext(mysqltx.ConCommit(ctx), "INSERT INTO t VALUES (3, 3)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var ks []int
	rows, err := db.Query("SELECT k FROM t ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	if len(ks) != 1 || ks[0] != 3 {
		t.Fatalf("rows %v, want only [3]: the killed transaction must leave nothing", ks)
	}
}
