package almacen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	if db.d.nombre == TipoMySQL && db.actualizarLoteEnCache(ctx, es, errs) {
		return errs
	}
	var escritos []Mensaje
	var estados map[string]*saga.Saga
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		var err error
		escritos, estados, err = db.actualizarLote(ctx, tx, es, errs)
		return err
	})
	if err == nil {
		if db.d.nombre == TipoMySQL {
			for _, s := range estados {
				db.cache.recordar(s)
			}
		}
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
// MySQL: the inbox keys, the locking read, the writes (BEGIN and COMMIT
// travel with them). It returns the outbox rows written and the state of
// every saga read, as committed if the transaction commits.
func (db *DB) actualizarLote(ctx context.Context, tx *sql.Tx, es []Entrada, previos []error) ([]Mensaje, map[string]*saga.Saga, error) {
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
			return nil, nil, fmt.Errorf("inbox: %w", err)
		}
		if nuevas, err := res.RowsAffected(); err != nil || nuevas != int64(n) {
			return nil, nil, errLote
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
			return nil, nil, fmt.Errorf("leer sagas: %w", err)
		}
		sagas, err := leerSagasConPasos(rows)
		if err != nil {
			return nil, nil, err
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
			return nil, nil, errLote
		}
		c, err := e.Fn(viejo.Clone())
		if err != nil {
			// Its inbox key must not stay: let the single path run it.
			return nil, nil, errLote
		}
		if !c.Guardar {
			continue
		}
		nuevo := c.Saga
		nuevo.ID = viejo.ID
		if err := validarSaga(&nuevo, viejo); err != nil {
			return nil, nil, errLote
		}
		if len(nuevo.Pasos) < len(viejo.Pasos) {
			return nil, nil, errLote // steps removed: rare, left to the single path
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
	if pesoLote(nuevas, actual, msgs) > bytesPorLote && len(nuevas) > 1 {
		return nil, nil, errLote
	}

	var ss []sentencia
	if len(nuevas) > 0 {
		var err error
		if ss, err = db.sentenciasLote(nuevas, originales, actual); err != nil {
			return nil, nil, err
		}
	}
	mensajes, err := db.sentenciasMensajes(msgs)
	if err != nil {
		return nil, nil, err
	}
	creado := time.Now()
	res, err := db.ejecutarJuntas(mysqltx.ConCommit(ctx), tx, append(ss, mensajes...))
	if err != nil {
		return nil, nil, fmt.Errorf("guardar %d sagas: %w", len(nuevas), err)
	}
	if len(msgs) == 0 {
		return nil, actual, nil
	}
	return db.conIDs(res, msgs, creado), actual, nil
}

// sentenciasLote are the writes of the changed sagas: one multi-row upsert
// of the saga rows and those of the steps that changed (escrituraPasos:
// one, or two when a step input is cleared). The rows were read (and
// on MySQL locked) in this transaction, so the upserts always update.
func (db *DB) sentenciasLote(ids []string, originales map[string]saga.Saga, actual map[string]*saga.Saga) ([]sentencia, error) {
	sagas, err := db.sentenciaSagas(ids, originales, actual, 0)
	if err != nil {
		return nil, err
	}
	return append([]sentencia{sagas}, db.sentenciasPasosLote(ids, originales, actual)...), nil
}

// sentenciaSagas is a multi-row upsert of the saga rows ids. With saltos 0
// it overwrites every existing row; with saltos > 0, only a row whose
// version is the one written minus saltos (upsertSagaGuardado). When no
// saga's identity changed from originales, it writes colsSagaLote.
func (db *DB) sentenciaSagas(ids []string, originales map[string]saga.Saga, actual map[string]*saga.Saga, saltos int) (sentencia, error) {
	cols, asignadas, sufijo := colsSaga, colsSaga[1:], db.d.upsertSaga
	if todasMismaIdentidad(ids, originales, actual) {
		cols, asignadas, sufijo = colsSagaLote, colsSaga[colsMutables:], db.d.upsertSagaLote
	}
	if saltos > 0 {
		sufijo = upsertSagaGuardado(asignadas, saltos)
	}
	var q strings.Builder
	q.WriteString("INSERT INTO sagas (" + lista("", cols) + ") VALUES ")
	args := make([]any, 0, len(ids)*len(cols))
	fila := "(" + sqldialecto.Marcadores(len(cols)) + ")"
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(fila)
		s := actual[id]
		v, err := db.d.valoresSaga(s, s.Version)
		if err != nil {
			return sentencia{}, fmt.Errorf("guardar saga %s: %w", id, err)
		}
		if len(cols) != len(colsSaga) {
			v = valoresSagaLote(v)
		}
		args = append(args, v...)
	}
	q.WriteString(sufijo)
	return sentencia{q.String(), args}, nil
}

func todasMismaIdentidad(ids []string, originales map[string]saga.Saga, actual map[string]*saga.Saga) bool {
	for _, id := range ids {
		viejo := originales[id]
		if !mismaIdentidad(&viejo, actual[id]) {
			return false
		}
	}
	return true
}

// sentenciasPasosLote are the upserts of the steps of ids that changed
// (escrituraPasos); none when no step did.
func (db *DB) sentenciasPasosLote(ids []string, originales map[string]saga.Saga, actual map[string]*saga.Saga) []sentencia {
	var e escrituraPasos
	for _, id := range ids {
		viejo, nuevo := originales[id], actual[id]
		for i := range nuevo.Pasos {
			if i < len(viejo.Pasos) && pasoIgual(&viejo.Pasos[i], &nuevo.Pasos[i]) {
				continue
			}
			e.agregar(&db.d, &viejo, nuevo, i)
		}
	}
	return e.sentencias(&db.d)
}

// upsertSagaGuardado ends a multi-row INSERT of saga rows (MySQL) so that
// an existing row is overwritten only if its version is the one written
// minus saltos (the transitions applied to it in the batch); otherwise it
// is left as it is. Every assignment of cols tests the row's version
// before the last one changes it (MySQL assigns left to right).
func upsertSagaGuardado(cols []string, saltos int) string {
	return " ON DUPLICATE KEY UPDATE " + asignar(cols,
		"%c = IF(version = VALUES(version) - "+strconv.Itoa(saltos)+", VALUES(%c), %c)")
}

func init() {
	if colsSaga[len(colsSaga)-1] != "version" || colsSagaLote[len(colsSagaLote)-1] != "version" {
		panic("almacen: version must be the last of colsSaga and colsSagaLote (upsertSagaGuardado)")
	}
}

// actualizarLoteEnCache is ActualizarLote from the states this process
// last committed, in one round trip (see cacheSagas): each group of saga
// rows guarded by version and checked (verificarFilas), the steps, the
// outbox rows and the COMMIT. Only for entries without inbox keys (a key
// already in the inbox must stop its entry before fn runs). It applies the
// entries not refused in errs, and returns false when it wrote nothing and
// the caller must take the usual path: an inbox key, a saga not remembered,
// an entry whose fn failed or changed nothing (decided on a state that may
// be stale), a stale state, a database error.
func (db *DB) actualizarLoteEnCache(ctx context.Context, es []Entrada, errs []error) bool {
	originales := map[string]saga.Saga{}
	actual := map[string]*saga.Saga{}
	for i := range es {
		if errs[i] != nil {
			continue
		}
		if es[i].Dedup != "" {
			return false
		}
		id := es[i].SagaID
		if _, ok := originales[id]; ok {
			continue
		}
		s, ok := db.cache.tomar(id)
		if !ok {
			return false
		}
		originales[id] = s
		actual[id] = &s
	}
	saltos := map[string]int{}
	var (
		nuevas []string
		msgs   []Mensaje
	)
	for i := range es {
		e := &es[i]
		if errs[i] != nil {
			continue
		}
		viejo := actual[e.SagaID]
		c, err := e.Fn(viejo.Clone())
		if err != nil || !c.Guardar {
			return false
		}
		nuevo := c.Saga
		nuevo.ID = viejo.ID
		if validarSaga(&nuevo, viejo) != nil || len(nuevo.Pasos) < len(viejo.Pasos) {
			return false
		}
		if saltos[viejo.ID] == 0 {
			nuevas = append(nuevas, viejo.ID)
		}
		saltos[viejo.ID]++
		nuevo.Version = viejo.Version + 1
		actual[viejo.ID] = &nuevo
		msgs = append(msgs, c.Mensajes...)
	}
	if pesoLote(nuevas, actual, msgs) > bytesPorLote && len(nuevas) > 1 {
		return false
	}

	var ss []sentencia
	// In saga_id order, as the usual path locks them; one guarded upsert
	// per number of transitions a saga took in the batch (nearly always
	// one: a single statement).
	slices.Sort(nuevas)
	porSaltos := map[int][]string{}
	var grupos []int
	for _, id := range nuevas {
		k := saltos[id]
		if porSaltos[k] == nil {
			grupos = append(grupos, k)
		}
		porSaltos[k] = append(porSaltos[k], id)
	}
	slices.Sort(grupos)
	for _, k := range grupos {
		s, err := db.sentenciaSagas(porSaltos[k], originales, actual, k)
		if err != nil {
			return false
		}
		// An updated row counts 2 (INSERT ... ON DUPLICATE KEY UPDATE); a
		// row left as it was counts 0 (1 with CLIENT_FOUND_ROWS), an
		// inserted one (the saga was purged) 1.
		ss = append(ss, s, verificarFilas(2*len(porSaltos[k])))
	}
	ss = append(ss, db.sentenciasPasosLote(nuevas, originales, actual)...)
	escritas := make([]*saga.Saga, len(nuevas))
	for i, id := range nuevas {
		escritas[i] = actual[id]
	}
	return db.escribirDesdeCache(ctx, ss, msgs, escritas)
}

// pesoLote is the size of the variable data a batch writes.
func pesoLote(ids []string, actual map[string]*saga.Saga, msgs []Mensaje) int {
	peso := 0
	for _, id := range ids {
		s := actual[id]
		peso += len(s.Datos)
		for i := range s.Pasos {
			peso += len(s.Pasos[i].Entrada) + len(s.Pasos[i].Salida)
		}
	}
	for i := range msgs {
		peso += len(msgs[i].Carga)
	}
	return peso
}
