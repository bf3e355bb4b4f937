package almacen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/sqldialecto"
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
// statements (the inbox keys, one locking read of every saga with its steps,
// then one multi-row write per table, sent together), instead of about
// seven round trips and a commit each. Entries for the same saga see the
// state the earlier ones left. Anything unusual (a key already in the inbox,
// a missing saga, an error of fn, a deadlock, a database error) rolls the
// batch back and every entry runs again through Actualizar, which retries on
// its own and reports per entry; the result is the same, only slower.
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
	var escritos []Mensaje
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		var err error
		escritos, err = db.actualizarLote(ctx, tx, es, errs)
		return err
	})
	if err == nil {
		db.confirmados(escritos)
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

// actualizarLote is the batch transaction: every entry not refused in
// previos is applied, or an error rolls the whole batch back. Round trips on
// MySQL: the inbox keys, the locking read, the writes; plus BEGIN and COMMIT.
func (db *DB) actualizarLote(ctx context.Context, tx *sql.Tx, es []Entrada, previos []error) ([]Mensaje, error) {
	// Inbox first, all keys at once, skipping those already there: if any
	// was (a redelivery, or a key repeated in the batch), the single path
	// sorts the batch out. A failed entry's key is rolled back with the
	// batch, so a redelivery is processed again.
	var inbox []any
	ahora := db.d.tiempo(time.Now())
	for i := range es {
		if previos[i] == nil && es[i].Dedup != "" {
			inbox = append(inbox, es[i].Dedup, ahora)
		}
	}
	if n := len(inbox) / 2; n > 0 {
		res, err := tx.ExecContext(ctx, db.d.insertarIgnorando+" inbox (clave, recibido) VALUES "+
			sqldialecto.Filas(n, "(?, ?)"), inbox...)
		if err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
		if nuevas, err := res.RowsAffected(); err != nil || nuevas != int64(n) {
			return nil, errLote
		}
	}

	// One read of every saga with its steps, locking them on MySQL (in
	// saga_id order, so two batches cannot deadlock on each other). The
	// order names the steps' columns: MySQL then walks the steps' unique
	// index in order; ordered by s.saga_id it copied every row, TEXT
	// columns included, into an on-disk temporary table to sort it, once
	// per batch.
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
		rows, err := tx.QueryContext(ctx, selectSagaConPasos+" WHERE s.saga_id IN ("+sqldialecto.Marcadores(len(ids))+
			") ORDER BY p.saga_id, p.orden"+db.d.bloquearLectura, ids...)
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
		nuevas []string // changed sagas, first-change order
		msgs   []Mensaje
	)
	for i := range es {
		e := &es[i]
		if previos[i] != nil {
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
			// Its inbox key must not stay: let the single path run it.
			return nil, errLote
		}
		if !c.Guardar {
			continue
		}
		nuevo := c.Saga
		nuevo.ID = viejo.ID
		if err := validarSaga(&nuevo, viejo); err != nil {
			return nil, errLote
		}
		if len(nuevo.Pasos) < len(viejo.Pasos) {
			return nil, errLote // steps removed: rare, left to the single path
		}
		if _, ok := originales[viejo.ID]; !ok {
			originales[viejo.ID] = *viejo
			nuevas = append(nuevas, viejo.ID)
		}
		nuevo.Version = viejo.Version + 1
		actual[viejo.ID] = &nuevo
		msgs = append(msgs, c.Mensajes...)
	}

	// A batch too large for one query is left to the single path.
	peso := 0
	for _, id := range nuevas {
		s := actual[id]
		peso += len(s.Datos)
		for i := range s.Pasos {
			peso += len(s.Pasos[i].Entrada) + len(s.Pasos[i].Salida)
		}
	}
	for i := range msgs {
		peso += len(msgs[i].Carga)
	}
	if peso > bytesPorLote && len(nuevas) > 1 {
		return nil, errLote
	}

	var ss []sentencia
	if len(nuevas) > 0 {
		var err error
		if ss, err = db.sentenciasLote(nuevas, originales, actual); err != nil {
			return nil, err
		}
	}
	mensajes, err := db.sentenciasMensajes(msgs)
	if err != nil {
		return nil, err
	}
	creado := time.Now()
	res, err := db.ejecutarJuntas(mysqltx.ConCommit(ctx), tx, append(ss, mensajes...))
	if err != nil {
		return nil, fmt.Errorf("guardar %d sagas: %w", len(nuevas), err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	return db.conIDs(res, msgs, creado), nil
}

// sentenciasLote are the writes of the changed sagas: one multi-row upsert
// of the saga rows and one of the steps that changed. The rows were read (and
// on MySQL locked) in this transaction, so the upserts always update.
func (db *DB) sentenciasLote(ids []string, originales map[string]saga.Saga, actual map[string]*saga.Saga) ([]sentencia, error) {
	var q strings.Builder
	q.WriteString("INSERT INTO sagas (" + selectSaga + ") VALUES ")
	args := make([]any, 0, len(ids)*len(colsSaga))
	fila := "(" + sqldialecto.Marcadores(len(colsSaga)) + ")"
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(fila)
		s := actual[id]
		v, err := db.d.valoresSaga(s, s.Version)
		if err != nil {
			return nil, fmt.Errorf("guardar saga %s: %w", id, err)
		}
		args = append(args, v...)
	}
	q.WriteString(db.d.upsertSaga)
	ss := []sentencia{{q.String(), args}}

	q.Reset()
	q.WriteString(insertPasos)
	var argsPasos []any
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
			argsPasos = db.d.valoresPaso(argsPasos, id, i, &nuevo.Pasos[i])
			n++
		}
	}
	if n > 0 {
		q.WriteString(db.d.upsertPaso)
		ss = append(ss, sentencia{q.String(), argsPasos})
	}
	return ss, nil
}
