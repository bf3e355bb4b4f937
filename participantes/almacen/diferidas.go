package almacen

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// maxDiferidas bounds the text held back by diferidas (bytes of statements
// and of string arguments); beyond it the statements are sent at once, far
// below MySQL's max_allowed_packet.
const maxDiferidas = 256 << 10

// diferidas is the Ejecutor a service's effect runs on with MySQL: the
// statements it executes are held back and sent with the transaction's next
// statement of our own, the inbox row and its COMMIT (registrarVarios), so
// an effect of any number of writes costs no round trip of its own. Order is
// kept: a query, or reading an Exec's result (RowsAffected, LastInsertId),
// first sends what is held, in one round trip. A statement's error then
// comes from whatever sent it; see servicio.Ejecutor.
//
// The held statements are joined into one multi-statement text with their
// arguments in order; the driver interpolates the placeholders of the
// whole text as it would each statement's (interpolateParams, which skips
// a '?' in a literal or a comment).
type diferidas struct {
	tx servicio.Ejecutor
	// retenidas are the statements held back, in order.
	retenidas []diferida
	bytes     int
	// propias is how many of the first retenidas are the store's own, held
	// before the effect ran (aplicarEnUnViaje: the step's lock, the inbox
	// check, the savepoint): descartar keeps them.
	propias int
	// enviadas: statements of the effect were sent already (the savepoint
	// must be rolled back to undo them).
	enviadas bool
}

type diferida struct {
	q    string
	args []any
	res  *resultadoDiferido
}

// tamano is about how many bytes x takes in the text sent.
func (x diferida) tamano() int {
	n := len(x.q)
	for _, a := range x.args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		default:
			n += 8
		}
	}
	return n
}

func (d *diferidas) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r := &resultadoDiferido{d: d, ctx: ctx}
	x := diferida{q, args, r}
	if x.tamano() > maxDiferidas {
		// A large statement runs alone, as it would without this type.
		if err := d.enviar(ctx, len(d.retenidas)); err != nil {
			return nil, err
		}
		d.enviadas = true
		return d.tx.ExecContext(ctx, q, args...)
	}
	d.retenidas = append(d.retenidas, x)
	d.bytes += x.tamano()
	if d.bytes > maxDiferidas {
		if err := d.enviar(ctx, len(d.retenidas)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (d *diferidas) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := d.enviar(ctx, len(d.retenidas)); err != nil {
		return nil, err
	}
	return d.tx.QueryContext(ctx, q, args...)
}

// QueryRowContext sends what is held first. *sql.Row cannot be built with
// an error, so an error sending them reaches Scan through a query that does
// not run: its context has ended with that error.
func (d *diferidas) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if err := d.enviar(ctx, len(d.retenidas)); err != nil {
		return d.tx.QueryRowContext(errContext{ctx, err}, q, args...)
	}
	return d.tx.QueryRowContext(ctx, q, args...)
}

// enviar sends the first n held statements in one round trip; each learns
// its result (mysqltx.ConResultados) or the error.
func (d *diferidas) enviar(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	lote := slices.Clone(d.retenidas[:n])
	d.retenidas = append(d.retenidas[:0], d.retenidas[n:]...)
	d.medir()
	d.enviadas = d.enviadas || n > d.propias
	d.propias = max(d.propias-n, 0)
	q, args := unir(lote, "", nil)
	informado := false
	res, err := d.tx.ExecContext(mysqltx.ConResultados(ctx, func(filas, ids []int64) {
		if len(filas) != len(lote) {
			return
		}
		informado = true
		for i, x := range lote {
			x.res.fijar(resultadoFijo{filas[i], ids[i]}, nil)
		}
	}), q, args...)
	if err != nil {
		for _, x := range lote {
			x.res.fijar(nil, err)
		}
		return err
	}
	if !informado {
		for _, x := range lote[:len(lote)-1] {
			x.res.fijar(nil, errResultadoPerdido)
		}
		lote[len(lote)-1].res.fijar(res, nil)
	}
	return nil
}

// con returns q and args preceded by every held statement, and forgets them:
// the caller sends them. retenidas says whether there were any.
func (d *diferidas) con(q string, args []any) (string, []any, bool) {
	if len(d.retenidas) == 0 {
		return q, args, false
	}
	q, args = unir(d.retenidas, q, args)
	for _, x := range d.retenidas {
		x.res.fijar(nil, errSinResultado)
	}
	d.retenidas, d.bytes, d.propias = d.retenidas[:0], 0, 0
	return q, args, true
}

// retener holds one of the store's own statements, before the effect runs:
// descartar keeps it.
func (d *diferidas) retener(q string, args ...any) {
	x := diferida{q, args, &resultadoDiferido{d: d, ctx: context.Background()}}
	d.retenidas = append(d.retenidas, x)
	d.bytes += x.tamano()
	d.propias = len(d.retenidas)
}

// descartar forgets the effect's held statements (not the store's own,
// propias): the effect is being undone.
func (d *diferidas) descartar() {
	d.retenidas = d.retenidas[:d.propias]
	d.medir()
}

func (d *diferidas) medir() {
	d.bytes = 0
	for _, x := range d.retenidas {
		d.bytes += x.tamano()
	}
}

// unir joins the statements of ds, then q (when not empty), into one text,
// with their arguments in order.
func unir(ds []diferida, q string, ultimos []any) (string, []any) {
	var b strings.Builder
	var args []any
	for i, x := range ds {
		if i > 0 {
			b.WriteString(";\n")
		}
		b.WriteString(x.q)
		args = append(args, x.args...)
	}
	if q != "" {
		if len(ds) > 0 {
			b.WriteString(";\n")
		}
		b.WriteString(q)
		args = append(args, ultimos...)
	}
	return b.String(), args
}

// resultadoDiferido is the result of a held statement: reading it sends the
// statements held up to it, itself included.
type resultadoDiferido struct {
	d     *diferidas
	ctx   context.Context
	listo bool
	res   sql.Result
	err   error
}

func (r *resultadoDiferido) fijar(res sql.Result, err error) {
	r.listo, r.res, r.err = true, res, err
}

func (r *resultadoDiferido) resolver() {
	if r.listo {
		return
	}
	for i, x := range r.d.retenidas {
		if x.res == r {
			if err := r.d.enviar(r.ctx, i+1); err != nil && !r.listo {
				r.fijar(nil, err)
			}
			return
		}
	}
	r.fijar(nil, errSinResultado)
}

var (
	// errResultadoPerdido: the statement was sent with later ones and the
	// driver did not say each one's figures.
	errResultadoPerdido = errors.New("almacen: the statement's result is not known (sent with later statements)")
	// errSinResultado: read after the effect ended.
	errSinResultado = errors.New("almacen: the statement's result is read after the effect ended")
)

func (r *resultadoDiferido) LastInsertId() (int64, error) {
	r.resolver()
	if r.err != nil {
		return 0, r.err
	}
	return r.res.LastInsertId()
}

func (r *resultadoDiferido) RowsAffected() (int64, error) {
	r.resolver()
	if r.err != nil {
		return 0, r.err
	}
	return r.res.RowsAffected()
}

// resultadoFijo is one statement's figures out of a text of several.
type resultadoFijo struct{ filas, id int64 }

func (r resultadoFijo) LastInsertId() (int64, error) { return r.id, nil }
func (r resultadoFijo) RowsAffected() (int64, error) { return r.filas, nil }

// errContext is a context already ended with err, for a query that must not
// run.
type errContext struct {
	context.Context
	err error
}

func (c errContext) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (c errContext) Err() error { return c.err }
