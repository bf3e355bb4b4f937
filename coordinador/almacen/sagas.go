package almacen

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// maxIntentos bounds the retries of a transition that lost an optimistic
// version check (or hit a deadlock) before Actualizar gives up with
// ErrConflicto.
const maxIntentos = 10

// errVersion is the internal signal that the saga changed between read and
// write; Actualizar retries on it.
var errVersion = errors.New("versión obsoleta")

// estadosTerminales lists the saga states that saga.Estado.Terminal reports
// as terminal.
var estadosTerminales = func() []any {
	var out []any
	for _, e := range saga.Estados {
		if e.Terminal() {
			out = append(out, string(e))
		}
	}
	return out
}()

// crearSaga is CrearSaga alone in its transaction, for a creation CrearSaga
// already validated.
func (db *DB) crearSaga(ctx context.Context, c *creacion) (string, bool, error) {
	s := &c.s
	// One round trip on MySQL; a taken id or key fails the first statement,
	// and nothing after it runs.
	ss, err := db.sentenciasCreacion([]*creacion{c})
	if err != nil {
		return "", false, err
	}
	for intento := 1; ; intento++ {
		duplicada := false
		var escritos []Mensaje
		err := db.transaccion(ctx, func(tx *sql.Tx) error {
			creado := time.Now()
			res, err := db.ejecutarJuntas(mysqltx.ConCommit(ctx), tx, ss)
			if db.d.duplicado(err) {
				duplicada = true
			}
			if err == nil {
				escritos = db.conIDs(res, c.msgs, creado)
			}
			return err
		})
		if err == nil {
			if db.d.nombre == TipoMySQL {
				db.cache.recordar(s)
			}
			db.confirmados(escritos)
			return s.ID, true, nil
		}
		if !duplicada {
			if db.d.reintentable(err) && intento < maxIntentos {
				if err := esperar(ctx, intento); err != nil {
					return "", false, err
				}
				continue
			}
			return "", false, fmt.Errorf("crear saga %s: %w", s.ID, err)
		}
		// The key or the id is taken: find which saga holds it. The row
		// that clashed may belong to a transaction that then rolled back;
		// if nothing is found, try the insert again.
		id, err := db.sagaExistente(ctx, s.ID, c.idem)
		if err != nil {
			return "", false, fmt.Errorf("crear saga %s: %w", s.ID, err)
		}
		if id != "" {
			return id, false, nil
		}
		if intento >= maxIntentos {
			return "", false, fmt.Errorf("crear saga %s: %w", s.ID, ErrConflicto)
		}
	}
}

// sagaExistente returns the id of the saga created with idem.Clave (a
// *ClaveReutilizadaError when both fingerprints are set and differ), else id
// if that saga exists, else "".
func (db *DB) sagaExistente(ctx context.Context, id string, idem Idempotencia) (string, error) {
	var existente string
	if idem.Clave != "" {
		var huella string
		err := db.sql.QueryRowContext(ctx, "SELECT saga_id, COALESCE(huella_idempotencia, '') FROM sagas WHERE clave_idempotencia = ?",
			idem.Clave).Scan(&existente, &huella)
		if err == nil {
			if huella != "" && idem.Huella != "" && huella != idem.Huella {
				return "", &ClaveReutilizadaError{Clave: idem.Clave, SagaID: existente}
			}
			return existente, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("buscar clave de idempotencia: %w", err)
		}
	}
	err := db.sql.QueryRowContext(ctx, "SELECT saga_id FROM sagas WHERE saga_id = ?", id).Scan(&existente)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("buscar saga: %w", err)
	}
	return existente, nil
}

// sentenciasPasos are the upserts of steps [desde, hasta) of nuevo (at
// least one), whose stored state is viejo's.
func (db *DB) sentenciasPasos(viejo, nuevo *saga.Saga, desde, hasta int) []sentencia {
	var e escrituraPasos
	for i := desde; i < hasta; i++ {
		e.agregar(&db.d, viejo, nuevo, i)
	}
	return e.sentencias(&db.d)
}

// escrituraPasos builds the upserts of changed steps: one statement for all
// of them, and a second only for a step whose input must be cleared. A step
// stored with the same input is sent without it (NULL, which upsertPaso's
// COALESCE reads as "keep"): an input holds the saga's input and the earlier
// steps' outputs, the largest value of a transition, and the step that just
// finished would otherwise send it again.
type escrituraPasos struct {
	q, pleno        strings.Builder
	args, argsPleno []any
}

// agregar adds step i of nuevo, stored as in viejo (i past viejo's steps:
// not stored yet).
func (e *escrituraPasos) agregar(d *dialecto, viejo, nuevo *saga.Saga, i int) {
	p := &nuevo.Pasos[i]
	q, args, entrada := &e.q, &e.args, jsonONulo(p.Entrada)
	switch {
	case i < len(viejo.Pasos) && bytes.Equal(viejo.Pasos[i].Entrada, p.Entrada):
		entrada = nil
	case len(p.Entrada) == 0:
		q, args = &e.pleno, &e.argsPleno // NULL must be written, not kept
	}
	if q.Len() == 0 {
		q.WriteString(insertPasos)
	} else {
		q.WriteString(", ")
	}
	q.WriteString(filaPaso)
	*args = d.valoresPasoCon(*args, nuevo.ID, i, p, entrada)
}

func (e *escrituraPasos) sentencias(d *dialecto) []sentencia {
	var ss []sentencia
	if e.q.Len() > 0 {
		ss = append(ss, sentencia{e.q.String() + d.upsertPaso, e.args})
	}
	if e.pleno.Len() > 0 {
		ss = append(ss, sentencia{e.pleno.String() + d.upsertPasoPleno, e.argsPleno})
	}
	return ss
}

// Actualizar runs one transition in one transaction. See Store. When fn
// fails, everything is rolled back (the inbox entry too, so a redelivery
// will be processed again) and fn's error is returned wrapped. When
// Cambio.Guardar is false, Cambio.Mensajes are ignored.
func (db *DB) Actualizar(ctx context.Context, sagaID, dedup string, fn func(saga.Saga) (Cambio, error)) error {
	if err := validarClave("clave de inbox", dedup); err != nil {
		return fmt.Errorf("actualizar saga %s: %w", sagaID, err)
	}
	for intento := 1; ; intento++ {
		err := db.actualizar(ctx, sagaID, dedup, fn)
		if err == nil || !(errors.Is(err, errVersion) || db.d.reintentable(err)) {
			return err
		}
		if intento >= maxIntentos {
			return fmt.Errorf("actualizar saga %s tras %d intentos: %w (%w)", sagaID, intento, ErrConflicto, err)
		}
		if err := esperar(ctx, intento); err != nil {
			return fmt.Errorf("actualizar saga %s: %w", sagaID, err)
		}
	}
}

// actualizar is one attempt of Actualizar: from the remembered state when
// there is one (actualizarEnCache), else reading the saga locked.
func (db *DB) actualizar(ctx context.Context, sagaID, dedup string, fn func(saga.Saga) (Cambio, error)) error {
	if db.d.nombre == TipoMySQL && dedup == "" {
		if viejo, ok := db.cache.tomar(sagaID); ok && db.actualizarEnCache(ctx, &viejo, fn) {
			return nil
		}
	}
	var escritos []Mensaje
	var estado saga.Saga
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		viejo, err := db.registrarYLeer(ctx, tx, sagaID, dedup)
		if err != nil {
			return err
		}
		c, err := fn(viejo.Clone())
		if err != nil {
			return fmt.Errorf("actualizar saga %s: %w", sagaID, err)
		}
		if !c.Guardar {
			estado = viejo
			return nil
		}
		escritos, err = db.guardar(ctx, tx, &viejo, &c.Saga, c.Mensajes, true)
		estado = c.Saga
		return err
	})
	if err == nil {
		if db.d.nombre == TipoMySQL {
			db.cache.recordar(&estado)
		}
		db.confirmados(escritos)
	}
	return err
}

// actualizarEnCache is actualizar from viejo, the state this process last
// committed, in one round trip (see cacheSagas): the saga's UPDATE guarded
// by its version and checked (verificarFilas), the changed steps, the
// outbox rows and the COMMIT. Only for a transition without an inbox key
// (a key already in the inbox must stop it before fn runs). It returns
// false when nothing was written and the caller must take the usual path:
// the guard failed (the state was stale), fn failed or changed nothing
// (decided on a state that may be stale: the usual path decides again on
// the saga read locked), or the database failed.
func (db *DB) actualizarEnCache(ctx context.Context, viejo *saga.Saga, fn func(saga.Saga) (Cambio, error)) bool {
	c, err := fn(viejo.Clone())
	if err != nil || !c.Guardar {
		return false
	}
	nuevo := c.Saga
	nuevo.ID = viejo.ID
	if validarSaga(&nuevo, viejo) != nil || len(nuevo.Pasos) < len(viejo.Pasos) {
		return false // the usual path reports it
	}
	valores, err := db.d.valoresSaga(&nuevo, viejo.Version+1)
	if err != nil {
		return false
	}
	q, args := updateSaga, valores[1:]
	if mismaIdentidad(viejo, &nuevo) {
		q, args = updateSagaCorto, valores[colsMutables:]
	}
	ss := []sentencia{{q, append(args, viejo.ID, viejo.Version)}, verificarFilas(1)}
	if desde, hasta := pasosCambiados(viejo, &nuevo); desde >= 0 {
		ss = append(ss, db.sentenciasPasos(viejo, &nuevo, desde, hasta)...)
	}
	nuevo.Version = viejo.Version + 1
	return db.escribirDesdeCache(ctx, ss, c.Mensajes, []*saga.Saga{&nuevo})
}

// pasosCambiados is the range [desde, hasta) of nuevo's steps that differ
// from viejo's; desde is -1 when none does. Changed steps are contiguous in
// practice (the current one and its neighbour): one upsert covers them.
func pasosCambiados(viejo, nuevo *saga.Saga) (desde, hasta int) {
	desde, hasta = -1, -1
	for i := range nuevo.Pasos {
		if i >= len(viejo.Pasos) || !pasoIgual(&viejo.Pasos[i], &nuevo.Pasos[i]) {
			if desde < 0 {
				desde = i
			}
			hasta = i + 1
		}
	}
	return desde, hasta
}

// esperar sleeps a short random time before retry number intento, so that
// transactions that collided do not collide again.
func esperar(ctx context.Context, intento int) error {
	d := 100*time.Microsecond + rand.N(time.Duration(intento)*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// registrarYLeer records dedup in the inbox (unless empty) and reads the
// saga locked (leerSaga). On MySQL both travel in one round trip, as text:
// the driver skips the INSERT's empty result and returns the query's rows,
// and a duplicate key stops the query and is its error.
func (db *DB) registrarYLeer(ctx context.Context, tx *sql.Tx, sagaID, dedup string) (saga.Saga, error) {
	if dedup == "" {
		return db.leerSaga(ctx, tx, sagaID, true)
	}
	if db.d.nombre != TipoMySQL {
		if err := db.registrarInbox(ctx, tx, dedup); err != nil {
			return saga.Saga{}, fmt.Errorf("actualizar saga %s: %w", sagaID, err)
		}
		return db.leerSaga(ctx, tx, sagaID, true)
	}
	rows, err := tx.QueryContext(ctx, insertarInbox+";\n"+consultaSagaConPasos+db.d.bloquearLectura,
		dedup, db.d.tiempo(time.Now()), sagaID)
	if db.d.duplicado(err) {
		return saga.Saga{}, fmt.Errorf("actualizar saga %s: %w", sagaID, db.errorInbox(dedup, err))
	}
	if err != nil {
		return saga.Saga{}, fmt.Errorf("actualizar saga %s: inbox %q y lectura: %w", sagaID, dedup, err)
	}
	return db.leerSagaDe(ctx, tx, sagaID, rows)
}

// leerSaga reads one saga with its steps in one query: a consistent
// snapshot in one round trip. It is an inner join on purpose: MySQL sorts a
// LEFT JOIN by the second table's column in an on-disk temporary table (the
// rows carry TEXT columns), while the inner join reads the steps in index
// order. A saga without steps (or no saga) yields no rows; a second query
// tells which. With bloquear, the rows are locked for the transaction
// (MySQL), so that concurrent transitions of one saga queue instead of
// failing their version check and retrying: under load an unlucky writer
// would otherwise lose race after race.
func (db *DB) leerSaga(ctx context.Context, ex ejecutor, id string, bloquear bool) (saga.Saga, error) {
	q := consultaSagaConPasos
	if bloquear {
		q += db.d.bloquearLectura
	}
	rows, err := db.consultar(ctx, ex, q, id)
	if err != nil {
		return saga.Saga{}, fmt.Errorf("leer saga %s: %w", id, err)
	}
	return db.leerSagaDe(ctx, ex, id, rows)
}

// leerSagaDe is leerSaga given the rows of its first query.
func (db *DB) leerSagaDe(ctx context.Context, ex ejecutor, id string, rows *sql.Rows) (saga.Saga, error) {
	sagas, err := leerSagasConPasos(rows)
	if err != nil {
		return saga.Saga{}, fmt.Errorf("leer saga %s: %w", id, err)
	}
	if len(sagas) == 0 {
		rows, err := db.consultar(ctx, ex, consultaSaga, id)
		if err != nil {
			return saga.Saga{}, fmt.Errorf("leer saga %s: %w", id, err)
		}
		if sagas, err = leerSagas(rows); err != nil {
			return saga.Saga{}, fmt.Errorf("leer saga %s: %w", id, err)
		}
	}
	if len(sagas) == 0 {
		return saga.Saga{}, fmt.Errorf("saga %s: %w", id, ErrNoEncontrada)
	}
	return sagas[0], nil
}

// guardar writes nuevo over viejo: the saga row first, with the optimistic
// check on version (so a writer that lost the race stops before touching any
// step row, and row locks are always taken saga first), then the steps that
// changed and msgs into the outbox, together (one round trip on MySQL).
// With ultimo, that round trip also commits the transaction (mysqltx), and
// on MySQL the saga row's UPDATE travels in it too, unchecked: ultimo is
// only for a saga read FOR UPDATE in this transaction (registrarYLeer),
// whose version nobody else can change. It returns msgs as written, for
// AlConfirmar once the transaction commits.
func (db *DB) guardar(ctx context.Context, tx *sql.Tx, viejo, nuevo *saga.Saga, msgs []Mensaje, ultimo bool) ([]Mensaje, error) {
	id := viejo.ID
	nuevo.ID = id
	if err := validarSaga(nuevo, viejo); err != nil {
		return nil, fmt.Errorf("guardar saga %s: %w", id, err)
	}
	valores, err := db.d.valoresSaga(nuevo, viejo.Version+1)
	if err != nil {
		return nil, fmt.Errorf("guardar saga %s: %w", id, err)
	}
	q, args := updateSaga, valores[1:]
	if mismaIdentidad(viejo, nuevo) {
		q, args = updateSagaCorto, valores[colsMutables:]
	}
	var ss []sentencia
	if ultimo && db.d.nombre == TipoMySQL {
		// The row was read FOR UPDATE in this transaction, so the version
		// check cannot fail (as in ActualizarLote, whose upserts check
		// none): the UPDATE travels with the other writes and the COMMIT.
		ss = append(ss, sentencia{q, append(args, id, viejo.Version)})
	} else {
		res, err := db.ejecutar(ctx, tx, q, append(args, id, viejo.Version)...)
		if err != nil {
			return nil, fmt.Errorf("guardar saga %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("guardar saga %s: %w", id, err)
		}
		if n != 1 {
			return nil, fmt.Errorf("guardar saga %s (versión %d): %w", id, viejo.Version, errVersion)
		}
	}
	nuevo.Version = viejo.Version + 1

	if desde, hasta := pasosCambiados(viejo, nuevo); desde >= 0 {
		ss = append(ss, db.sentenciasPasos(viejo, nuevo, desde, hasta)...)
	}
	if len(nuevo.Pasos) < len(viejo.Pasos) {
		ss = append(ss, sentencia{"DELETE FROM pasos_saga WHERE saga_id = ? AND orden > ?", []any{id, len(nuevo.Pasos)}})
	}
	mensajes, err := db.sentenciasMensajes(msgs)
	if err != nil {
		return nil, fmt.Errorf("guardar saga %s: %w", id, err)
	}
	jctx := ctx
	if ultimo {
		jctx = mysqltx.ConCommit(ctx)
	}
	creado := time.Now()
	escrito, err := db.ejecutarJuntas(jctx, tx, append(ss, mensajes...))
	if err != nil {
		return nil, fmt.Errorf("guardar saga %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	return db.conIDs(escrito, msgs, creado), nil
}

// ProcesarVencidas claims due sagas and applies fn to each in one
// transaction. See Store. A saga for which fn (or the validation of its
// result) fails is left unchanged and the others are still saved; those
// errors are returned joined, with the count of sagas changed. A database
// error rolls back everything and returns 0.
func (db *DB) ProcesarVencidas(ctx context.Context, ahora time.Time, limite int, fn func(saga.Saga) (Cambio, error)) (int, error) {
	if limite <= 0 {
		limite = 100
	}
	var (
		cambiadas int
		fallos    []error
		escritos  []Mensaje
		guardadas []saga.Saga
	)
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		cambiadas, fallos, escritos, guardadas = 0, nil, nil, nil
		vencidas, err := db.reclamarVencidas(ctx, tx, ahora, limite)
		if err != nil {
			return err
		}
		for i := range vencidas {
			viejo := &vencidas[i]
			c, err := fn(viejo.Clone())
			if err != nil {
				fallos = append(fallos, fmt.Errorf("saga %s: %w", viejo.ID, err))
				continue
			}
			if !c.Guardar {
				continue
			}
			c.Saga.ID = viejo.ID
			if err := validarSaga(&c.Saga, viejo); err != nil {
				fallos = append(fallos, fmt.Errorf("saga %s: %w", viejo.ID, err))
				continue
			}
			ms, err := db.guardar(ctx, tx, viejo, &c.Saga, c.Mensajes, false)
			if err != nil {
				return err
			}
			escritos = append(escritos, ms...)
			guardadas = append(guardadas, c.Saga)
			cambiadas++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("procesar vencidas: %w", err)
	}
	if db.d.nombre == TipoMySQL {
		for i := range guardadas {
			db.cache.recordar(&guardadas[i])
		}
	}
	db.confirmados(escritos)
	if len(fallos) > 0 {
		return cambiadas, fmt.Errorf("procesar vencidas: %w", errors.Join(fallos...))
	}
	return cambiadas, nil
}

// reclamarVencidas selects (and on MySQL locks, skipping rows other replicas
// hold) up to limite due non-terminal sagas, then their steps: two queries.
//
// A saga with a message still in the outbox is not due: its command has not
// reached the broker (an outage), so no participant could have answered it,
// and counting that time against its attempts would compensate sagas that
// had nothing wrong. Its deadline runs again once the relay published, or
// once it parked the message (the broker refuses it): the step then times
// out and the saga retries, fails and compensates as its definition says.
func (db *DB) reclamarVencidas(ctx context.Context, tx *sql.Tx, ahora time.Time, limite int) ([]saga.Saga, error) {
	args := append([]any{db.d.tiempo(ahora)}, estadosTerminales...)
	args = append(args, limite)
	rows, err := tx.QueryContext(ctx, "SELECT "+selectSaga+" FROM sagas WHERE plazo <= ? AND estado NOT IN ("+
		sqldialecto.Marcadores(len(estadosTerminales))+") AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.clave = sagas.saga_id AND o.aparcado IS NULL)"+
		" ORDER BY plazo LIMIT ?"+db.d.reclamar, args...)
	if err != nil {
		return nil, fmt.Errorf("reclamar sagas vencidas: %w", err)
	}
	sagas, err := leerSagas(rows)
	if err != nil || len(sagas) == 0 {
		return nil, err
	}
	if err := db.cargarPasos(ctx, tx, sagas); err != nil {
		return nil, err
	}
	return sagas, nil
}

// cargarPasos loads the steps of sagas in one query.
func (db *DB) cargarPasos(ctx context.Context, ex ejecutor, sagas []saga.Saga) error {
	ids := make([]any, len(sagas))
	for i := range sagas {
		ids[i] = sagas[i].ID
	}
	rows, err := ex.QueryContext(ctx, "SELECT "+selectPasos+" FROM pasos_saga WHERE saga_id IN ("+
		sqldialecto.Marcadores(len(ids))+") ORDER BY saga_id, orden", ids...)
	if err != nil {
		return fmt.Errorf("leer pasos: %w", err)
	}
	return leerPasos(rows, sagas)
}

// Saga returns one saga with its steps; ErrNoEncontrada if there is none.
func (db *DB) Saga(ctx context.Context, id string) (saga.Saga, error) {
	return db.leerSaga(ctx, db.sql, id, false)
}

// Límites of Filtro.Limite.
const (
	LimitePorDefecto = 100
	LimiteMaximo     = 1000
)

// donde builds the WHERE clause (with its leading " WHERE ") of f.
func (d *dialecto) donde(f Filtro) (string, []any) {
	var conds []string
	var args []any
	if len(f.Estados) > 0 {
		conds = append(conds, "estado IN ("+sqldialecto.Marcadores(len(f.Estados))+")")
		for _, e := range f.Estados {
			args = append(args, string(e))
		}
	}
	if f.Tipo != "" {
		conds = append(conds, "tipo = ?")
		args = append(args, f.Tipo)
	}
	if f.CampaniaID != "" {
		conds = append(conds, "campania_id = ?")
		args = append(args, f.CampaniaID)
	}
	if f.SagaID != "" {
		conds = append(conds, d.prefijo("saga_id"))
		args = append(args, d.patron(f.SagaID))
	}
	if !f.Desde.IsZero() {
		conds = append(conds, "timestamp_inicio >= ?")
		args = append(args, d.tiempo(f.Desde))
	}
	if !f.Hasta.IsZero() {
		conds = append(conds, "timestamp_inicio < ?")
		args = append(args, d.tiempo(f.Hasta))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Listar returns the sagas that f selects, newest first (by
// timestamp_inicio, then saga_id), with their steps when f.ConPasos (one more
// query for the steps of all of them, in the same snapshot).
func (db *DB) Listar(ctx context.Context, f Filtro) ([]saga.Saga, error) {
	limite := f.Limite
	if limite <= 0 {
		limite = LimitePorDefecto
	}
	limite = min(limite, LimiteMaximo)
	where, args := db.d.donde(f)
	args = append(args, limite)
	q := "SELECT " + selectSaga + " FROM sagas" + where + " ORDER BY timestamp_inicio DESC, saga_id DESC LIMIT ?"
	var sagas []saga.Saga
	leer := func(ex ejecutor) error {
		rows, err := ex.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		sagas, err = leerSagas(rows)
		if err != nil || !f.ConPasos || len(sagas) == 0 {
			return err
		}
		return db.cargarPasos(ctx, ex, sagas)
	}
	var err error
	if f.ConPasos {
		err = db.lectura(ctx, func(tx *sql.Tx) error { return leer(tx) })
	} else {
		err = leer(db.sql)
	}
	if err != nil {
		return nil, fmt.Errorf("listar sagas: %w", err)
	}
	return sagas, nil
}

// Contar counts the sagas that f selects by estado (f.Limite and f.ConPasos
// do not apply). States without sagas are absent.
func (db *DB) Contar(ctx context.Context, f Filtro) (Resumen, error) {
	where, args := db.d.donde(f)
	rows, err := db.sql.QueryContext(ctx, "SELECT estado, COUNT(*) FROM sagas"+where+" GROUP BY estado", args...)
	if err != nil {
		return nil, fmt.Errorf("contar sagas: %w", err)
	}
	defer rows.Close()
	r := Resumen{}
	for rows.Next() {
		var e string
		var n int
		if err := rows.Scan(&e, &n); err != nil {
			return nil, fmt.Errorf("contar sagas: %w", err)
		}
		r[saga.Estado(e)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contar sagas: %w", err)
	}
	return r, nil
}

// EnCursoPorVersion counts, by tipo and definition version, the sagas that
// still need their definition: every saga not ended, and those in
// COMPENSACION_FALLIDA, whose operator retry runs their compensations.
func (db *DB) EnCursoPorVersion(ctx context.Context) ([]saga.EnCurso, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT tipo, version_definicion, estado, COUNT(*) FROM sagas"+
		" WHERE estado NOT IN (?, ?) GROUP BY tipo, version_definicion, estado", string(saga.Completada), string(saga.Compensada))
	if err != nil {
		return nil, fmt.Errorf("contar sagas en curso por versión: %w", err)
	}
	defer rows.Close()
	indice := map[[2]string]int{}
	var out []saga.EnCurso
	for rows.Next() {
		var (
			e      saga.EnCurso
			estado string
		)
		if err := rows.Scan(&e.Tipo, &e.Version, &estado, &e.Sagas); err != nil {
			return nil, fmt.Errorf("contar sagas en curso por versión: %w", err)
		}
		if est := saga.Estado(estado); est.Terminal() && est != saga.CompensacionFallida {
			continue
		}
		clave := [2]string{e.Tipo, strconv.Itoa(e.Version)}
		if i, ok := indice[clave]; ok {
			out[i].Sagas += e.Sagas
			continue
		}
		indice[clave] = len(out)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contar sagas en curso por versión: %w", err)
	}
	return out, nil
}
