package almacen

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/alpespartner/sagas/participantes/servicio"
)

// Purgar deletes the inbox rows and step locks last written before antes
// and returns how many inbox rows went. A row is what makes a redelivered
// command idempotent and lets a late compensation undo its action, so
// antes must lie further back than any redelivery or compensation can come:
// the coordinator compensates within its step deadlines, but an operator may
// retry a COMPENSACION_FALLIDA saga at any time, and a retry after the purge
// finds no action to undo (docs/operations.md, Retention). The services'
// own tables of effects are domain data and are never purged.
func (a *Almacen) Purgar(ctx context.Context, antes time.Time) (int, error) {
	corte := servicio.Momento(antes)
	var n int64
	err := a.escribir(ctx, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, "DELETE FROM inbox WHERE procesado_en < ?", corte)
		if err != nil {
			return false, err
		}
		if n, err = res.RowsAffected(); err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM bloqueos_paso WHERE actualizado_en < ?", corte); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return 0, fmt.Errorf("purgar bandeja de %s anterior a %s: %w", a.donde, corte, err)
	}
	return int(n), nil
}
