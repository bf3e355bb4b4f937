package almacen

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Reloj is the database server's clock as seen from this process: the local
// clock plus an offset measured against the server. Every replica computes
// and compares saga deadlines on it, so a replica whose own clock is minutes
// off neither fires deadlines early nor never (the deadlines are stored in,
// and claimed from, the one database). The offset is sampled at start and
// every IntervaloReloj; a failed sample keeps the last offset.
type Reloj struct {
	db      *DB
	local   func() time.Time
	desfase atomic.Int64 // server minus local, nanoseconds
	logger  *slog.Logger
}

// IntervaloReloj is how often Reloj samples the server's clock again.
const IntervaloReloj = 30 * time.Second

// NuevoReloj measures the offset of the server's clock from local (nil:
// time.Now) and returns the clock.
func (db *DB) NuevoReloj(ctx context.Context, local func() time.Time, logger *slog.Logger) (*Reloj, error) {
	if local == nil {
		local = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reloj{db: db, local: local, logger: logger}
	if err := r.medir(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Ahora is the server's time now.
func (r *Reloj) Ahora() time.Time { return r.local().Add(r.Desfase()) }

// Desfase is the server's clock minus the local one at the last sample.
func (r *Reloj) Desfase() time.Duration { return time.Duration(r.desfase.Load()) }

// Correr samples the offset every IntervaloReloj until ctx ends.
func (r *Reloj) Correr(ctx context.Context) error {
	t := time.NewTicker(IntervaloReloj)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.medir(ctx); err != nil && ctx.Err() == nil {
				r.logger.Warn("reloj de la base de datos: se mantiene el desfase anterior", "err", err, "desfase", r.Desfase().String())
			}
		}
	}
}

// medir takes three samples and keeps the one with the shortest round trip:
// the server's time is taken to be read half-way through it.
func (r *Reloj) medir(ctx context.Context) error {
	q, formato := "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')", "2006-01-02 15:04:05.999"
	if r.db.d.nombre == TipoMySQL {
		q, formato = "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')", "2006-01-02 15:04:05.999999"
	}
	mejor, ida := time.Duration(0), time.Duration(-1)
	for range 3 {
		antes := r.local()
		var texto string
		if err := r.db.sql.QueryRowContext(ctx, q).Scan(&texto); err != nil {
			return fmt.Errorf("leer el reloj de la base de datos: %w", err)
		}
		despues := r.local()
		servidor, err := time.ParseInLocation(formato, texto, time.UTC)
		if err != nil {
			return fmt.Errorf("leer el reloj de la base de datos: %q: %w", texto, err)
		}
		if d := despues.Sub(antes); ida < 0 || d < ida {
			ida = d
			mejor = servidor.Sub(antes.Add(d / 2))
		}
	}
	r.desfase.Store(int64(mejor))
	return nil
}
