// Package mysqltx wraps a go-sql-driver/mysql connector so that a
// transaction costs no round trips of its own: START TRANSACTION travels
// with the transaction's first statement, and COMMIT, when the caller marks
// its last statement with ConCommit, travels with that one.
//
// A transaction of three statements is then three round trips instead of
// five. On a loaded machine a round trip is mostly waiting for two processes
// to be scheduled (the client's and the server's thread), so this is CPU and
// latency, not only network.
//
// The connector must have multiStatements and interpolateParams enabled:
// the piggybacked statements are sent as one text query. Prepared
// statements run as before, except the first of a transaction, which runs
// as text with the START TRANSACTION in front of it. A transaction begun
// with options (an isolation level, read-only) is begun by the driver as
// usual. Semantics do not change: the statements run in the same order on
// the same connection, and a failure stops the query at the failing
// statement, so a COMMIT after it never runs and Rollback sends ROLLBACK.
package mysqltx

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/go-sql-driver/mysql"
)

const (
	inicio = "START TRANSACTION;\n"
	commit = ";\nCOMMIT"
)

type claveCommit struct{}

type claveResultados struct{}

// ConResultados marks ctx so that an ExecContext on a wrapped connection
// reports to f, once it succeeded, each statement's affected rows and insert
// id, in order, leaving out the START TRANSACTION and COMMIT this package
// adds: a text of several statements (multiStatements) otherwise says only
// its last one's. Elsewhere f is never called.
func ConResultados(ctx context.Context, f func(filas, ids []int64)) context.Context {
	return context.WithValue(ctx, claveResultados{}, f)
}

// informar gives ConResultados's function res's per-statement figures, the
// added START TRANSACTION (inicio) and COMMIT (fin) left out.
func informar(ctx context.Context, res driver.Result, inicio, fin bool) {
	f, ok := ctx.Value(claveResultados{}).(func(filas, ids []int64))
	if !ok {
		return
	}
	m, ok := res.(mysql.Result)
	if !ok {
		return
	}
	filas, ids := m.AllRowsAffected(), m.AllLastInsertIds()
	if inicio && len(filas) > 0 {
		filas, ids = filas[1:], ids[1:]
	}
	if fin && len(filas) > 0 {
		filas, ids = filas[:len(filas)-1], ids[:len(ids)-1]
	}
	f(filas, ids)
}

// ConCommit marks ctx so that the next ExecContext in a transaction commits
// it in the same round trip; Tx.Commit then sends nothing. The result's
// RowsAffected and LastInsertId are the statement's (not the COMMIT's).
// Outside a wrapped MySQL transaction the mark does nothing, so callers can
// pass it on any store.
func ConCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, claveCommit{}, true)
}

// Conector wraps c, a go-sql-driver/mysql connector.
func Conector(c driver.Connector) driver.Connector { return conector{c} }

type conector struct{ driver.Connector }

func (c conector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	b, err := envolver(dc)
	if err != nil {
		dc.Close()
		return nil, err
	}
	return b, nil
}

// base is what the driver's connection implements and this package uses.
type base interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

func envolver(dc driver.Conn) (*conn, error) {
	b, ok := dc.(base)
	if !ok {
		return nil, errors.New("mysqltx: the driver's connection lacks a method this package needs")
	}
	return &conn{base: b}, nil
}

// conn is one connection. database/sql never uses a connection from two
// goroutines at once, so its fields need no lock.
type conn struct {
	base
	// pendiente: a lazy transaction was begun and START TRANSACTION is not
	// sent yet.
	pendiente bool
	// confirmada: the transaction was committed by a ConCommit statement.
	confirmada bool
	// enTx: a lazy transaction is open (ConCommit only applies then).
	enTx bool
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.Isolation != 0 || opts.ReadOnly {
		return c.base.BeginTx(ctx, opts)
	}
	if !c.base.IsValid() {
		return nil, driver.ErrBadConn
	}
	c.pendiente, c.confirmada, c.enTx = true, false, true
	return tx{c}, nil
}

// Begin is the pre-context interface driver.Conn requires; database/sql
// calls BeginTx.
func (c *conn) Begin() (driver.Tx, error) { //nolint:staticcheck // required by driver.Conn
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// enviarInicio sends the owed START TRANSACTION on its own.
func (c *conn) enviarInicio(ctx context.Context) error {
	if !c.pendiente {
		return nil
	}
	c.pendiente = false
	_, err := c.base.ExecContext(ctx, "START TRANSACTION", nil)
	return err
}

// errConfirmada refuses a statement after the one that committed: it would
// run outside the transaction.
var errConfirmada = errors.New("mysqltx: statement after the transaction's COMMIT (ConCommit marks the last one)")

func (c *conn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if c.confirmada {
		return nil, errConfirmada
	}
	conCommit := c.enTx && ctx.Value(claveCommit{}) != nil
	if !c.pendiente && !conCommit {
		res, err := c.base.ExecContext(ctx, q, args)
		if err == nil {
			informar(ctx, res, false, false)
		}
		return res, err
	}
	texto, conInicio := q, c.pendiente
	if c.pendiente {
		texto = inicio + texto
	}
	if conCommit {
		texto += commit
	}
	res, err := c.base.ExecContext(ctx, texto, args)
	if errors.Is(err, driver.ErrSkip) {
		// Nothing was sent (the driver could not interpolate the arguments);
		// database/sql prepares q instead, so the transaction must exist now.
		if err := c.enviarInicio(ctx); err != nil {
			return nil, err
		}
		return nil, driver.ErrSkip
	}
	// Sent: the transaction exists (or the connection is broken).
	c.pendiente = false
	if err != nil {
		return nil, err
	}
	informar(ctx, res, conInicio, conCommit)
	if conCommit {
		c.confirmada, c.enTx = true, false
		return sinCommit{res}, nil
	}
	return res, nil
}

func (c *conn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if c.confirmada {
		return nil, errConfirmada
	}
	if !c.pendiente {
		return c.base.QueryContext(ctx, q, args)
	}
	// The driver skips the OK result of START TRANSACTION and returns the
	// query's rows.
	rows, err := c.base.QueryContext(ctx, inicio+q, args)
	if errors.Is(err, driver.ErrSkip) {
		if err := c.enviarInicio(ctx); err != nil {
			return nil, err
		}
		return nil, driver.ErrSkip
	}
	c.pendiente = false
	return rows, err
}

func (c *conn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.base.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &stmt{Stmt: st, c: c, q: q}, nil
}

func (c *conn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *conn) ResetSession(ctx context.Context) error {
	c.pendiente, c.confirmada, c.enTx = false, false, false
	return c.base.ResetSession(ctx)
}

// tx ends a lazy transaction.
type tx struct{ c *conn }

func (t tx) Commit() error { return t.terminar("COMMIT") }

func (t tx) Rollback() error { return t.terminar("ROLLBACK") }

func (t tx) terminar(q string) error {
	c := t.c
	defer func() { c.pendiente, c.confirmada, c.enTx = false, false, false }()
	if c.pendiente || c.confirmada {
		// Nothing was sent, or the COMMIT already went with the last statement.
		return nil
	}
	_, err := c.base.ExecContext(context.Background(), q, nil)
	return err
}

// stmt is a prepared statement of a wrapped connection. The first statement
// of a lazy transaction runs as text with START TRANSACTION in front;
// database/sql checks its arguments with the driver's own rules either way.
type stmt struct {
	driver.Stmt
	c *conn
	q string
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.c.confirmada {
		return nil, errConfirmada
	}
	if s.c.pendiente || (s.c.enTx && ctx.Value(claveCommit{}) != nil) {
		res, err := s.c.ExecContext(ctx, s.q, args)
		if !errors.Is(err, driver.ErrSkip) {
			return res, err
		}
		// START TRANSACTION was sent; fall through to the prepared statement.
	}
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.c.confirmada {
		return nil, errConfirmada
	}
	if s.c.pendiente {
		rows, err := s.c.QueryContext(ctx, s.q, args)
		if !errors.Is(err, driver.ErrSkip) {
			return rows, err
		}
	}
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// sinCommit reports the affected rows and the insert id of the statement
// before the COMMIT, not the COMMIT's (0).
type sinCommit struct{ driver.Result }

func (r sinCommit) LastInsertId() (int64, error) {
	return r.antesDelCommit(mysql.Result.AllLastInsertIds, r.Result.LastInsertId)
}

func (r sinCommit) RowsAffected() (int64, error) {
	return r.antesDelCommit(mysql.Result.AllRowsAffected, r.Result.RowsAffected)
}

// antesDelCommit is the value todos gives the statement before the COMMIT,
// or propio's when the result does not say per statement.
func (r sinCommit) antesDelCommit(todos func(mysql.Result) []int64, propio func() (int64, error)) (int64, error) {
	if m, ok := r.Result.(mysql.Result); ok {
		if a := todos(m); len(a) >= 2 {
			return a[len(a)-2], nil
		}
	}
	return propio()
}
