package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Abrir calls abrir (creating a producer or a subscription) until it
// succeeds, fails for a reason another attempt cannot fix (authorization,
// authentication, TLS, a topic the broker does not have), or ctx ends. It
// waits 500 ms after the first failure, doubling to MaxEsperaReconexion, and
// logs each retry. A broker that goes away while a process opens its
// producers and subscriptions therefore only delays the start; the process
// used to exit, and under make run nothing started it again.
func Abrir[T any](ctx context.Context, logger *slog.Logger, que string, abrir func() (T, error)) (T, error) {
	if logger == nil {
		logger = slog.Default()
	}
	for espera := 500 * time.Millisecond; ; espera = min(2*espera, MaxEsperaReconexion) {
		v, err := abrir()
		if err == nil {
			return v, nil
		}
		if c := conCausa(err); errors.Is(c, ErrAutorizacion) || errors.Is(c, ErrAutenticacion) ||
			errors.Is(c, ErrTLS) || errors.Is(c, ErrTopicoInexistente) {
			return v, c
		}
		logger.Warn("abrir "+que+"; se reintentará", "err", err, "espera", espera.String())
		t := time.NewTimer(espera)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("abrir %s: %w (último error: %w)", que, ctx.Err(), err)
		case <-t.C:
		}
	}
}
