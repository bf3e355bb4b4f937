package preparadas

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// A preparation under way when the cache closes must be over when Close
// returns: it holds (or waits for) a connection, which the pool's Close that
// follows would leave open.
func TestCloseEsperaLasPreparacionesEnCurso(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "p.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// The pool's only connection is held, so the preparation waits for it.
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	c := Nueva(db, 0)
	if st := c.Sentencia("SELECT 1"); st != nil {
		t.Fatal("Sentencia prepared in the caller")
	}
	hecho := make(chan struct{})
	go func() {
		c.Close()
		close(hecho)
	}()
	select {
	case <-hecho:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s with a preparation waiting for a connection")
	}
	c.mu.Lock()
	pendientes := len(c.pendiente)
	c.mu.Unlock()
	if pendientes != 0 {
		t.Fatalf("%d preparations still under way after Close", pendientes)
	}
}
