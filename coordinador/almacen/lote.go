package almacen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
)

// Entrada is one input of ActualizarLote: what Actualizar takes.
type Entrada struct {
	SagaID string
	Dedup  string
	Fn     func(saga.Saga) (Cambio, error)
}

// errLote is the internal signal that the batch transaction must give way to
// one transaction per entry.
var errLote = errors.New("lote no aplicable en una transacción")

// ActualizarLote applies es in order, as Actualizar would one by one, and
// returns one error per entry (nil: applied; ErrDuplicado, ErrNoEncontrada
// or fn's error wrapped, as Actualizar). See Store.
//
// Group commit: all entries share one transaction with a fixed number of
// statements (inbox check, one locking read of every saga with its steps,
// then one multi-row write per table), instead of about seven round trips
// and a commit each. Entries for the same saga see the state the earlier
// ones left. When the batch transaction fails as a whole (a deadlock, an
// inbox key another replica recorded meanwhile, a database error), nothing
// of it is kept and every entry is run again through Actualizar, which
// retries on its own; the result is the same, only slower.
func (db *DB) ActualizarLote(ctx context.Context, es []Entrada) []error {
	errs := make([]error, len(es))
	if len(es) == 1 {
		errs[0] = db.Actualizar(ctx, es[0].SagaID, es[0].Dedup, es[0].Fn)
		return errs
	}
	for i := range es {
		if err := validarClave("clave de inbox", es[i].Dedup); err != nil {
			errs[i] = fmt.Errorf("actualizar saga %s: %w", es[i].SagaID, err)
		}
	}
	var lote []error
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		var err error
		lote, err = db.actualizarLote(ctx, tx, es, errs)
		return err
	})
	if err == nil {
		for i, e := range lote {
			if errs[i] == nil {
				errs[i] = e
			}
		}
		return errs
	}
	if ctx.Err() != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("actualizar saga %s: %w", es[i].SagaID, err)
			}
		}
		return errs
	}
	for i := range es {
		if errs[i] == nil {
			errs[i] = db.Actualizar(ctx, es[i].SagaID, es[i].Dedup, es[i].Fn)
		}
	}
	return errs
}

// actualizarLote is the batch transaction. previos holds entries already
// refused (left alone). It returns the per-entry results, or an error that
// rolls the whole batch back.
func (db *DB) actualizarLote(ctx context.Context, tx *sql.Tx, es []Entrada, previos []error) ([]error, error) {
	errs := make([]error, len(es))
	// Inbox: keys already recorded are duplicates; so is a key repeated in
	// the batch after its first entry.
	var claves []any
	vistas := map[string]bool{}
	for i := range es {
		if previos[i] == nil && es[i].Dedup != "" && !vistas[es[i].Dedup] {
			vistas[es[i].Dedup] = true
			claves = append(claves, es[i].Dedup)
		}
	}
	registradas := map[string]bool{}
	if len(claves) > 0 {
		rows, err := tx.QueryContext(ctx, "SELECT clave FROM inbox WHERE clave IN ("+marcadores(len(claves))+")", claves...)
		if err != nil {
			return nil, fmt.Errorf("leer inbox: %w", err)
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("leer inbox: %w", err)
			}
			registradas[c] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("leer inbox: %w", err)
		}
	}

	// One read of every saga with its steps, locking them on MySQL (in
	// saga_id order, so two batches cannot deadlock on each other).
	var ids []any
	idsVistos := map[string]bool{}
	for i := range es {
		if previos[i] == nil && !idsVistos[es[i].SagaID] {
			idsVistos[es[i].SagaID] = true
			ids = append(ids, es[i].SagaID)
		}
	}
	actual := map[string]*saga.Saga{}
	if len(ids) > 0 {
		rows, err := tx.QueryContext(ctx, "SELECT "+lista("s.", colsSaga)+", "+lista("p.", colsPasoLeidas)+
			" FROM sagas s JOIN pasos_saga p ON p.saga_id = s.saga_id WHERE s.saga_id IN ("+marcadores(len(ids))+
			") ORDER BY s.saga_id, p.orden"+db.d.bloquearLectura, ids...)
		if err != nil {
			return nil, fmt.Errorf("leer sagas: %w", err)
		}
		sagas, err := leerSagasConPasos(rows)
		if err != nil {
			return nil, err
		}
		for i := range sagas {
			actual[sagas[i].ID] = &sagas[i]
		}
	}

	// Apply each entry to the current state of its saga.
	originales := map[string]saga.Saga{}
	var (
		nuevas  []string // changed sagas, first-change order
		msgs    []Mensaje
		inbox   []any
		usadas  = map[string]bool{}
		acortar bool
	)
	for i := range es {
		e := &es[i]
		if previos[i] != nil {
			continue
		}
		if e.Dedup != "" && (registradas[e.Dedup] || usadas[e.Dedup]) {
			errs[i] = fmt.Errorf("clave %q: %w", e.Dedup, ErrDuplicado)
			continue
		}
		viejo, ok := actual[e.SagaID]
		if !ok {
			// No saga, or a saga without steps, which leerSaga tells apart:
			// let the single path decide.
			return nil, errLote
		}
		c, err := e.Fn(viejo.Clone())
		if err != nil {
			errs[i] = fmt.Errorf("actualizar saga %s: %w", e.SagaID, err)
			continue
		}
		if e.Dedup != "" {
			usadas[e.Dedup] = true
			inbox = append(inbox, e.Dedup, db.d.tiempo(time.Now()))
		}
		if !c.Guardar {
			continue
		}
		nuevo := c.Saga
		nuevo.ID = viejo.ID
		if err := validarSaga(&nuevo, viejo); err != nil {
			return nil, fmt.Errorf("guardar saga %s: %w", viejo.ID, err)
		}
		if len(nuevo.Pasos) < len(viejo.Pasos) {
			acortar = true
		}
		if _, ok := originales[viejo.ID]; !ok {
			originales[viejo.ID] = *viejo
			nuevas = append(nuevas, viejo.ID)
		}
		nuevo.Version = viejo.Version + 1
		actual[viejo.ID] = &nuevo
		msgs = append(msgs, c.Mensajes...)
	}
	if acortar {
		// Steps removed: rare enough to leave to the single path.
		return nil, errLote
	}

	if len(inbox) > 0 {
		q := "INSERT INTO inbox (clave, recibido) VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?), ", len(inbox)/2), ", ")
		if _, err := tx.ExecContext(ctx, q, inbox...); err != nil {
			if db.d.duplicado(err) {
				return nil, errLote // another replica recorded a key meanwhile
			}
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	if len(nuevas) > 0 {
		if err := db.guardarLote(ctx, tx, nuevas, originales, actual); err != nil {
			return nil, err
		}
	}
	if err := db.insertarMensajes(ctx, tx, msgs); err != nil {
		return nil, err
	}
	return errs, nil
}

// guardarLote writes the changed sagas with one multi-row upsert of the saga
// rows and one of the steps that changed. The rows were read (and on MySQL
// locked) in this transaction, so the upsert always updates.
func (db *DB) guardarLote(ctx context.Context, tx *sql.Tx, ids []string, originales map[string]saga.Saga, actual map[string]*saga.Saga) error {
	var q strings.Builder
	q.WriteString("INSERT INTO sagas (" + selectSaga + ") VALUES ")
	args := make([]any, 0, len(ids)*len(colsSaga))
	fila := "(" + marcadores(len(colsSaga)) + ")"
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(fila)
		s := actual[id]
		v, err := db.d.valoresSaga(s, s.Version)
		if err != nil {
			return fmt.Errorf("guardar saga %s: %w", id, err)
		}
		args = append(args, v...)
	}
	q.WriteString(db.d.upsertSaga)
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("guardar %d sagas: %w", len(ids), err)
	}

	q.Reset()
	q.WriteString(insertPasos)
	args = args[:0]
	n := 0
	for _, id := range ids {
		viejo, nuevo := originales[id], actual[id]
		for i := range nuevo.Pasos {
			if i < len(viejo.Pasos) && pasoIgual(&viejo.Pasos[i], &nuevo.Pasos[i]) {
				continue
			}
			if n > 0 {
				q.WriteString(", ")
			}
			q.WriteString(filaPaso)
			args = db.d.valoresPaso(args, id, i, &nuevo.Pasos[i])
			n++
		}
	}
	if n == 0 {
		return nil
	}
	q.WriteString(db.d.upsertPaso)
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("guardar pasos de %d sagas: %w", len(ids), err)
	}
	return nil
}
