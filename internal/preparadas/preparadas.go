// Package preparadas caches the prepared statements of a store's hot path,
// for the coordinator's store and the participants' alike.
//
// Parsing SQL is a third of SQLite's CPU time per coordinator transition and
// a seventh of a participant's per command when every statement is prepared
// anew, and about a fifth of MariaDB's; a cached statement is prepared once
// per pooled connection (database/sql keeps it there) and only executed
// afterwards. The round trips are the same.
package preparadas

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// MaxPorDefecto bounds a cache: a hot path has a few dozen statements
// (multi-row INSERTs differ by row count). On MySQL each is prepared once per
// pooled connection: at most the bound × the pool's connections per process
// count against the server's max_prepared_stmt_count (16382 by default).
const MaxPorDefecto = 64

// Ejecutor is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type Ejecutor interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Cache holds up to max prepared statements of one pool, by text. Safe for
// concurrent use. A nil *Cache prepares nothing: its statements run as text.
type Cache struct {
	db  *sql.DB
	max int

	// ctx ends at Close, cancelling the preparations under way; preparando
	// counts them, so that Close returns only once none holds a connection.
	ctx        context.Context
	cancelar   context.CancelFunc
	preparando sync.WaitGroup

	mu        sync.Mutex
	m         map[string]*sql.Stmt
	pendiente map[string]bool // being prepared
	cerrada   bool
}

// Nueva returns an empty cache of db's statements; max <= 0 is MaxPorDefecto.
func Nueva(db *sql.DB, max int) *Cache {
	if max <= 0 {
		max = MaxPorDefecto
	}
	ctx, cancelar := context.WithCancel(context.Background())
	return &Cache{db: db, max: max, ctx: ctx, cancelar: cancelar, m: map[string]*sql.Stmt{}, pendiente: map[string]bool{}}
}

// Sentencia returns the cached prepared statement for q, or nil when it is
// not prepared yet (or the cache is full, or closed): the caller then runs q
// unprepared.
//
// A missing statement is prepared in the background, never by the caller:
// preparing takes a connection from the pool, and a caller inside a
// transaction already holds one. With every pooled connection held by a
// transaction waiting to prepare, the pool would deadlock (seen at a cold
// start under 64 concurrent requests on 32 connections).
func (c *Cache) Sentencia(q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if c.cerrada || c.pendiente[q] || len(c.m)+len(c.pendiente) >= c.max {
		return nil
	}
	c.pendiente[q] = true
	c.preparando.Add(1)
	go func() {
		defer c.preparando.Done()
		pctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		st, err := c.db.PrepareContext(pctx, q)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pendiente, q)
		switch {
		case err != nil:
			// Left unprepared; a later call tries again.
		case c.cerrada:
			st.Close()
		default:
			c.m[q] = st
		}
	}()
	return nil
}

// Preparadas returns how many statements are prepared.
func (c *Cache) Preparadas() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// EnCurso returns how many statements are being prepared.
func (c *Cache) EnCurso() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pendiente)
}

// Close closes the prepared statements; later calls of Sentencia return nil.
// It cancels the preparations under way and returns once they are over, so
// that none holds a connection when the pool closes: database/sql closes a
// connection in use only when it is put back, which for SQLite means after
// the file may be gone (a test's temporary directory, seen as "directory
// not empty"). Close it before the pool.
func (c *Cache) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.cerrada = true
	for _, st := range c.m {
		st.Close()
	}
	c.m = map[string]*sql.Stmt{}
	c.mu.Unlock()
	c.cancelar()
	c.preparando.Wait()
}

// para returns the cached statement for q ready to run in ex (a *sql.Tx or
// the *sql.DB of the cache), or nil: ex then runs q as text.
func (c *Cache) para(ctx context.Context, ex Ejecutor, q string) *sql.Stmt {
	switch e := ex.(type) {
	case *sql.Tx:
		if st := c.Sentencia(q); st != nil {
			return e.StmtContext(ctx, st)
		}
	case *sql.DB:
		return c.Sentencia(q)
	}
	return nil
}

// Exec runs q in ex (a *sql.Tx or the *sql.DB of the cache) through its
// cached prepared statement, or unprepared while there is none.
func (c *Cache) Exec(ctx context.Context, ex Ejecutor, q string, args ...any) (sql.Result, error) {
	if st := c.para(ctx, ex, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return ex.ExecContext(ctx, q, args...)
}

// Query is Exec for queries.
func (c *Cache) Query(ctx context.Context, ex Ejecutor, q string, args ...any) (*sql.Rows, error) {
	if st := c.para(ctx, ex, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return ex.QueryContext(ctx, q, args...)
}

// QueryRow is Exec for a query of one row.
func (c *Cache) QueryRow(ctx context.Context, ex Ejecutor, q string, args ...any) *sql.Row {
	if st := c.para(ctx, ex, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return ex.QueryRowContext(ctx, q, args...)
}

// En returns tx as an Ejecutor whose statements go through the cache: for
// code that takes an Ejecutor and knows nothing of the cache (a
// participant's service functions).
func (c *Cache) En(tx *sql.Tx) Ejecutor {
	if c == nil {
		return tx
	}
	return enTx{tx, c}
}

type enTx struct {
	tx *sql.Tx
	c  *Cache
}

func (t enTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.c.Exec(ctx, t.tx, q, args...)
}

func (t enTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.c.Query(ctx, t.tx, q, args...)
}

func (t enTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.c.QueryRow(ctx, t.tx, q, args...)
}
