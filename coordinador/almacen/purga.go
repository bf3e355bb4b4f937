package almacen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// Purga counts what one Purgar removed.
type Purga struct {
	Sagas int // finished sagas, each with its steps
	Inbox int // reply keys
}

// LotePurga is how many sagas one purge transaction removes at most: each
// batch holds its locks only briefly, so replicas and the hot path are not
// held up by a large purge.
const LotePurga = 500

// Purgar deletes what is no longer needed once it is older than antes:
// sagas that finished (COMPLETADA, COMPENSADA, CANCELADA) before antes,
// with their steps, and the inbox keys of replies received before antes (a key is only
// needed while the broker may redeliver that reply). Sagas that wait for an
// operator (COMPENSACION_FALLIDA) and sagas in flight are never purged.
// Several replicas may purge at once.
func (db *DB) Purgar(ctx context.Context, antes time.Time) (Purga, error) {
	var p Purga
	for {
		n, err := db.purgarLote(ctx, antes)
		p.Sagas += n
		if err != nil {
			return p, err
		}
		if n < LotePurga {
			break
		}
	}
	n, err := db.PurgarInbox(ctx, antes)
	p.Inbox = n
	return p, err
}

// estadosPurgables are the terminal states that need nothing more: every
// effect is in place or undone (COMPENSACION_FALLIDA waits for an operator).
var estadosPurgables = []any{string(saga.Completada), string(saga.Compensada), string(saga.Cancelada)}

func (db *DB) purgarLote(ctx context.Context, antes time.Time) (int, error) {
	var n int
	err := db.transaccion(ctx, func(tx *sql.Tx) error {
		args := append(append([]any{}, estadosPurgables...), db.d.tiempo(antes), LotePurga)
		filas, err := tx.QueryContext(ctx, "SELECT saga_id FROM sagas WHERE estado IN ("+sqldialecto.Marcadores(len(estadosPurgables))+") AND timestamp_fin < ? ORDER BY timestamp_fin LIMIT ?", args...)
		if err != nil {
			return err
		}
		var ids []any
		for filas.Next() {
			var id string
			if err := filas.Scan(&id); err != nil {
				filas.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := filas.Close(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		lista := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
		// Steps first: SQLite does not enforce the foreign key's cascade.
		if _, err := tx.ExecContext(ctx, "DELETE FROM pasos_saga WHERE saga_id IN "+lista, ids...); err != nil {
			return err
		}
		// The state is checked again: a saga retried meanwhile stays.
		res, err := tx.ExecContext(ctx, "DELETE FROM sagas WHERE saga_id IN "+lista+" AND estado IN ("+sqldialecto.Marcadores(len(estadosPurgables))+")", append(ids, estadosPurgables...)...)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		n = int(m)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("purgar sagas terminadas antes de %s: %w", antes.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
