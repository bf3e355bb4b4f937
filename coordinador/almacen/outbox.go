package almacen

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// mensajesPorSentencia bounds a multi-row outbox INSERT (and the ids of one
// DELETE), well under both databases' placeholder limits.
const mensajesPorSentencia = 500

// sentenciasMensajes are the INSERTs that add msgs to the outbox in order
// (so ids follow the order of msgs), one for up to mensajesPorSentencia rows.
// A zero Creado is set to now.
func (db *DB) sentenciasMensajes(msgs []Mensaje) ([]sentencia, error) {
	var ss []sentencia
	ahora := time.Now()
	for len(msgs) > 0 {
		lote := msgs[:min(len(msgs), mensajesPorSentencia)]
		msgs = msgs[len(lote):]
		var q strings.Builder
		q.WriteString("INSERT INTO outbox (topico, clave, tipo, carga, propiedades, creado) VALUES ")
		args := make([]any, 0, 6*len(lote))
		for i := range lote {
			m := &lote[i]
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?)")
			var props any
			if m.Propiedades != nil {
				b, err := json.Marshal(m.Propiedades)
				if err != nil {
					return nil, fmt.Errorf("outbox: propiedades: %w", err)
				}
				props = string(b)
			}
			carga := m.Carga
			if carga == nil {
				carga = []byte{}
			}
			creado := m.Creado
			if creado.IsZero() {
				creado = ahora
			}
			args = append(args, m.Topico, m.Clave, m.Tipo, carga, props, db.d.tiempo(creado))
		}
		ss = append(ss, sentencia{q.String(), args})
	}
	return ss, nil
}

// AlConfirmar makes f receive, once each transaction that wrote outbox rows
// has committed, those rows in id order: the relay publishes them from
// memory (mensajeria.Relay.Confirmados) instead of claiming them with a
// query. The rows stay in the outbox until their publisher deletes them
// (BorrarPublicados); a row nobody deletes is claimed by DrenarOutbox like
// any other, which is what recovery (a restart, another replica) reads.
//
// A row's ID is 0 when the store cannot know it for certain (a multi-row
// INSERT under MySQL's innodb_autoinc_lock_mode=2, or with an
// auto_increment_increment above 1): such rows are left to
// DrenarOutbox. f runs on the committing goroutine and must not block. Set
// it before the store is used.
func (db *DB) AlConfirmar(f func([]Mensaje)) { db.alConfirmar = f }

// confirmados hands msgs, written by a transaction that committed, to
// alConfirmar.
func (db *DB) confirmados(msgs []Mensaje) {
	if db.alConfirmar != nil && len(msgs) > 0 {
		db.alConfirmar(msgs)
	}
}

// conIDs returns a copy of msgs, the rows of the outbox INSERT that ran last
// in a transaction with result res, with their ids (0 when not certain) and
// their creation time.
func (db *DB) conIDs(res sql.Result, msgs []Mensaje, creado time.Time) []Mensaje {
	if len(msgs) == 0 || db.alConfirmar == nil {
		return nil
	}
	out := make([]Mensaje, len(msgs))
	copy(out, msgs)
	for i := range out {
		out[i].ID = 0
		if out[i].Creado.IsZero() {
			out[i].Creado = creado
		}
	}
	// Ids only when one INSERT wrote every row and the ids are consecutive.
	if res == nil || len(msgs) > mensajesPorSentencia || (len(msgs) > 1 && !db.idsConsecutivos) {
		return out
	}
	id, err := res.LastInsertId()
	if err != nil || id <= 0 {
		return out
	}
	// MySQL reports the first row's id, SQLite the last one's.
	primero := id
	if db.d.nombre != TipoMySQL {
		primero = id - int64(len(msgs)) + 1
	}
	for i := range out {
		out[i].ID = primero + int64(i)
	}
	return out
}

// BorrarPublicados deletes the outbox rows ids, which the broker
// acknowledged, and returns how many there were (a row another replica's
// drain published and deleted first is not counted).
func (db *DB) BorrarPublicados(ctx context.Context, ids []int64) (int, error) {
	var n int
	for i := 0; i < len(ids); i += mensajesPorSentencia {
		lote := ids[i:min(i+mensajesPorSentencia, len(ids))]
		args := make([]any, len(lote))
		for j, id := range lote {
			args[j] = id
		}
		res, err := db.escribirSuelto(ctx, db.d.borrarMensajes(len(lote)), args...)
		if err != nil {
			return n, fmt.Errorf("borrar mensajes publicados: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("borrar mensajes publicados: %w", err)
		}
		n += int(k)
	}
	return n, nil
}

// DrenarOutbox publishes up to limite outbox rows in id order and deletes
// those publicar acknowledges. See Store.
//
// MySQL: the rows are claimed with FOR UPDATE SKIP LOCKED in a transaction
// held while publicar runs, so replicas never publish the same row at the
// same time. SQLite: the rows are read, published outside any transaction
// (the write lock is not held while the broker answers) and the acknowledged
// ones deleted; concurrent drains of one DB are serialised.
//
// When publicar fails, the ids it still returned are deleted and its error is
// returned with that count.
func (db *DB) DrenarOutbox(ctx context.Context, limite int, publicar func(context.Context, []Mensaje) ([]int64, error)) (int, error) {
	return db.DrenarOutboxHasta(ctx, time.Time{}, limite, publicar)
}

// DrenarOutboxHasta is DrenarOutbox for the rows created at or before hasta
// (zero: every row). The relay leaves the rows younger than a grace period
// to the replica that wrote them, which publishes them from memory
// (AlConfirmar).
func (db *DB) DrenarOutboxHasta(ctx context.Context, hasta time.Time, limite int, publicar func(context.Context, []Mensaje) ([]int64, error)) (int, error) {
	if limite <= 0 {
		limite = 100
	}
	// Parked rows are never claimed; a refused row waits for its next try.
	args := []any{db.d.tiempo(time.Now())}
	q := "SELECT id, topico, clave, tipo, carga, propiedades, creado, intentos FROM outbox" +
		" WHERE aparcado IS NULL AND (reintentar_desde IS NULL OR reintentar_desde <= ?)"
	if !hasta.IsZero() {
		q += " AND creado <= ?"
		args = append(args, db.d.tiempo(hasta))
	}
	q += " ORDER BY id LIMIT ?" + db.d.reclamar
	args = append(args, limite)
	if db.drenando == nil {
		var n int
		var errPublicar error
		err := db.transaccion(ctx, func(tx *sql.Tx) error {
			msgs, err := leerMensajes(ctx, tx, q, args...)
			if err != nil || len(msgs) == 0 {
				return err
			}
			var ids []int64
			ids, errPublicar = publicar(ctx, msgs)
			n, err = db.borrarConfirmados(ctx, tx, msgs, ids)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("drenar outbox: %w", err)
		}
		if errPublicar != nil {
			return n, fmt.Errorf("drenar outbox: publicar: %w", errPublicar)
		}
		return n, nil
	}

	select {
	case db.drenando <- struct{}{}:
		defer func() { <-db.drenando }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	msgs, err := leerMensajes(ctx, db.sql, q, args...)
	if err != nil || len(msgs) == 0 {
		if err != nil {
			err = fmt.Errorf("drenar outbox: %w", err)
		}
		return 0, err
	}
	ids, errPublicar := publicar(ctx, msgs)
	var n int
	if len(ids) > 0 {
		err = db.transaccion(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = db.borrarConfirmados(ctx, tx, msgs, ids)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("drenar outbox: %w", err)
		}
	}
	if errPublicar != nil {
		return n, fmt.Errorf("drenar outbox: publicar: %w", errPublicar)
	}
	return n, nil
}

func leerMensajes(ctx context.Context, ex ejecutor, q string, args ...any) ([]Mensaje, error) {
	rows, err := ex.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("leer outbox: %w", err)
	}
	defer rows.Close()
	var msgs []Mensaje
	for rows.Next() {
		var (
			m      Mensaje
			carga  crudo
			props  crudo
			creado instante
		)
		if err := rows.Scan(&m.ID, &m.Topico, &m.Clave, &m.Tipo, &carga, &props, &creado, &m.Intentos); err != nil {
			return nil, fmt.Errorf("leer outbox: %w", err)
		}
		m.Carga, m.Creado = carga, creado.tiempo()
		if props != nil {
			if err := json.Unmarshal(props, &m.Propiedades); err != nil {
				return nil, fmt.Errorf("leer outbox: mensaje %d: propiedades: %w", m.ID, err)
			}
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leer outbox: %w", err)
	}
	return msgs, nil
}

// borrarConfirmados deletes the acknowledged ids among the rows claimed
// (others are ignored: an id publicar made up must not delete a row another
// replica holds).
func (db *DB) borrarConfirmados(ctx context.Context, tx *sql.Tx, msgs []Mensaje, confirmados []int64) (int, error) {
	reclamados := make(map[int64]bool, len(msgs))
	for _, m := range msgs {
		reclamados[m.ID] = true
	}
	var ids []any
	for _, id := range confirmados {
		if reclamados[id] {
			ids = append(ids, id)
			delete(reclamados, id) // a repeated id counts once
		}
	}
	var n int
	for i := 0; i < len(ids); i += mensajesPorSentencia {
		lote := ids[i:min(i+mensajesPorSentencia, len(ids))]
		bctx := ctx
		if i+mensajesPorSentencia >= len(ids) {
			bctx = mysqltx.ConCommit(ctx) // the transaction's last statement
		}
		res, err := tx.ExecContext(bctx, db.d.borrarMensajes(len(lote)), lote...)
		if err != nil {
			return 0, fmt.Errorf("borrar mensajes publicados: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("borrar mensajes publicados: %w", err)
		}
		n += int(k)
	}
	return n, nil
}

// Outbox returns the number of rows waiting and the creation time of the
// oldest (zero when empty); parked rows are not waiting (see Aparcados).
func (db *DB) Outbox(ctx context.Context) (int, time.Time, error) {
	var n int
	var masAntiguo instante
	if err := db.sql.QueryRowContext(ctx, "SELECT COUNT(*), MIN(creado) FROM outbox WHERE aparcado IS NULL").Scan(&n, &masAntiguo); err != nil {
		return 0, time.Time{}, fmt.Errorf("estado del outbox: %w", err)
	}
	return n, masAntiguo.tiempo(), nil
}

// RegistrarInbox records clave in the inbox outside any saga transition;
// ErrDuplicado if it is there already.
func (db *DB) RegistrarInbox(ctx context.Context, clave string) error {
	if clave == "" {
		return fmt.Errorf("registrar inbox: %w", invalido("clave vacía"))
	}
	if err := validarClave("clave de inbox", clave); err != nil {
		return fmt.Errorf("registrar inbox: %w", err)
	}
	liberar, err := db.bloquearEscritura(ctx)
	if err != nil {
		return fmt.Errorf("registrar inbox: %w", err)
	}
	defer liberar()
	if err := db.registrarInbox(ctx, db.sql, clave); err != nil {
		return fmt.Errorf("registrar inbox: %w", err)
	}
	return nil
}

func (db *DB) registrarInbox(ctx context.Context, ex ejecutor, clave string) error {
	_, err := db.ejecutar(ctx, ex, insertarInbox, clave, db.d.tiempo(time.Now()))
	return db.errorInbox(clave, err)
}

const insertarInbox = "INSERT INTO inbox (clave, recibido) VALUES (?, ?)"

// errorInbox is the error of recording clave: ErrDuplicado when it was
// there already.
func (db *DB) errorInbox(clave string, err error) error {
	if db.d.duplicado(err) {
		return fmt.Errorf("clave %q: %w", clave, ErrDuplicado)
	}
	if err != nil {
		return fmt.Errorf("inbox: clave %q: %w", clave, err)
	}
	return nil
}

// PurgarInbox deletes the inbox keys recorded before antes and returns how
// many. Keys are only needed while a redelivery is possible; a periodic purge
// (e.g. of keys older than a week) keeps the table small.
func (db *DB) PurgarInbox(ctx context.Context, antes time.Time) (int, error) {
	res, err := db.escribirSuelto(ctx, "DELETE FROM inbox WHERE recibido < ?", db.d.tiempo(antes))
	if err != nil {
		return 0, fmt.Errorf("purgar inbox: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purgar inbox: %w", err)
	}
	return int(n), nil
}

// Rechazo is an outbox row the broker refused (incompatible schema, missing
// topic, permission denied) and how long to wait before trying it again.
type Rechazo struct {
	ID     int64
	Error  string
	Espera time.Duration
}

// Aparcado is a parked outbox row: the broker refused it maxIntentos times,
// so the relay no longer claims it. It is kept for an operator.
type Aparcado struct {
	Mensaje
	Intentos    int
	UltimoError string
	Aparcado    time.Time
}

// maxError bounds the error kept with a refused row.
const maxError = 2000

// RegistrarRechazos counts one more attempt of each refused row, keeps its
// error and when it may be claimed again, and parks the rows that reached
// maxIntentos attempts. It returns the rows it parked.
func (db *DB) RegistrarRechazos(ctx context.Context, rs []Rechazo, maxIntentos int) ([]Aparcado, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	ahora := time.Now()
	ids := make([]any, len(rs))
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		for i, r := range rs {
			ids[i] = r.ID
			motivo := r.Error
			if utf8.RuneCountInString(motivo) > maxError {
				motivo = string([]rune(motivo)[:maxError])
			}
			// aparcado first: MySQL evaluates SET left to right with the
			// new values, SQLite with the old ones; here both see the old
			// intentos.
			if _, err := tx.ExecContext(ctx, "UPDATE outbox SET aparcado = CASE WHEN intentos + 1 >= ? THEN ? ELSE NULL END,"+
				" reintentar_desde = ?, ultimo_error = ?, intentos = intentos + 1 WHERE id = ? AND aparcado IS NULL",
				maxIntentos, db.d.tiempo(ahora), db.d.tiempo(ahora.Add(r.Espera)), motivo, r.ID); err != nil {
				return fmt.Errorf("registrar rechazo del mensaje %d: %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return db.leerAparcados(ctx, "WHERE aparcado = ? AND id IN ("+sqldialecto.Marcadores(len(ids))+") ORDER BY id",
		append([]any{db.d.tiempo(ahora)}, ids...)...)
}

// Aparcados returns up to limite parked outbox rows, oldest first.
func (db *DB) Aparcados(ctx context.Context, limite int) ([]Aparcado, error) {
	if limite <= 0 {
		limite = 100
	}
	return db.leerAparcados(ctx, "WHERE aparcado IS NOT NULL ORDER BY id LIMIT ?", limite)
}

// ContarAparcados returns how many outbox rows are parked.
func (db *DB) ContarAparcados(ctx context.Context) (int, error) {
	var n int
	if err := db.sql.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE aparcado IS NOT NULL").Scan(&n); err != nil {
		return 0, fmt.Errorf("contar mensajes aparcados: %w", err)
	}
	return n, nil
}

// Reenviar clears the parked mark of outbox row id and its attempts, so the
// relay claims and publishes it again, and returns the row as it was
// parked. ErrAparcadoNoEncontrado if no parked row has that id.
func (db *DB) Reenviar(ctx context.Context, id int64) (Aparcado, error) {
	as, err := db.leerAparcados(ctx, "WHERE aparcado IS NOT NULL AND id = ?", id)
	if err != nil {
		return Aparcado{}, err
	}
	if len(as) == 0 {
		return Aparcado{}, fmt.Errorf("mensaje %d: %w", id, ErrAparcadoNoEncontrado)
	}
	var n int64
	err = db.transaccion(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE outbox SET aparcado = NULL, intentos = 0, reintentar_desde = NULL WHERE id = ? AND aparcado IS NOT NULL", id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return Aparcado{}, fmt.Errorf("reenviar mensaje aparcado %d: %w", id, err)
	}
	if n == 0 {
		// Another operator cleared it (or deleted it) between the read and
		// the update.
		return Aparcado{}, fmt.Errorf("mensaje %d: %w", id, ErrAparcadoNoEncontrado)
	}
	return as[0], nil
}

func (db *DB) leerAparcados(ctx context.Context, donde string, args ...any) ([]Aparcado, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT id, topico, clave, tipo, carga, propiedades, creado, intentos, ultimo_error, aparcado FROM outbox "+donde, args...)
	if err != nil {
		return nil, fmt.Errorf("leer mensajes aparcados: %w", err)
	}
	defer rows.Close()
	var as []Aparcado
	for rows.Next() {
		var (
			a              Aparcado
			carga, props   crudo
			creado, cuando instante
			motivo         sql.NullString
		)
		if err := rows.Scan(&a.ID, &a.Topico, &a.Clave, &a.Tipo, &carga, &props, &creado, &a.Intentos, &motivo, &cuando); err != nil {
			return nil, fmt.Errorf("leer mensajes aparcados: %w", err)
		}
		a.Carga, a.Creado, a.UltimoError, a.Aparcado = carga, creado.tiempo(), motivo.String, cuando.tiempo()
		if props != nil {
			if err := json.Unmarshal(props, &a.Propiedades); err != nil {
				return nil, fmt.Errorf("leer mensajes aparcados: mensaje %d: propiedades: %w", a.ID, err)
			}
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leer mensajes aparcados: %w", err)
	}
	return as, nil
}
