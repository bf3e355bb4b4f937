package motor

import (
	"context"
	"log/slog"
	"time"
)

// loteVencidas is how many due sagas one sweep claims at a time.
const loteVencidas = 200

// vencedor is what the sweeper calls: (*Motor).VencerPlazos.
type vencedor interface {
	VencerPlazos(ctx context.Context, limite int) (int, error)
}

// Temporizador sweeps the store for sagas whose deadline passed and feeds
// them to the engine. Deadlines live in the database, so any replica takes
// over a crashed one's timers.
type Temporizador struct {
	motor  vencedor
	cada   time.Duration
	logger *slog.Logger
}

// NuevoTemporizador builds a sweeper that runs every cada (which must be
// positive); Correr runs it.
func NuevoTemporizador(m *Motor, cada time.Duration, logger *slog.Logger) *Temporizador {
	return nuevoTemporizador(m, cada, logger)
}

func nuevoTemporizador(v vencedor, cada time.Duration, logger *slog.Logger) *Temporizador {
	if logger == nil {
		logger = slog.Default()
	}
	return &Temporizador{motor: v, cada: cada, logger: logger}
}

// Correr sweeps every period until ctx ends; a sweep that finds a full batch
// goes on at once. Errors are logged and the next period tries again.
func (t *Temporizador) Correr(ctx context.Context) error {
	tic := time.NewTicker(t.cada)
	defer tic.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tic.C:
		}
		for ctx.Err() == nil {
			n, err := t.motor.VencerPlazos(ctx, loteVencidas)
			if err != nil {
				if ctx.Err() == nil {
					t.logger.Warn("vencer plazos", "err", err)
				}
				break
			}
			if n < loteVencidas {
				break
			}
		}
	}
}
