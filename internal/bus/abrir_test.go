package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAbrirReintentaLoPasajeroYNoLoDefinitivo(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	intentos := 0
	v, err := Abrir(ctx, log, "productor de x", func() (int, error) {
		if intentos++; intentos < 3 {
			return 0, errors.New("connection closed")
		}
		return 7, nil
	})
	if err != nil || v != 7 || intentos != 3 {
		t.Fatalf("transient failures: got %d, %v after %d attempts; want 7 after 3", v, err, intentos)
	}

	for _, definitivo := range []error{
		fmt.Errorf("productor de x: %w", ErrAutorizacion),
		fmt.Errorf("suscribir: %w", ErrAutenticacion),
		errors.New("server error: TopicNotFound: Topic not found"),
	} {
		intentos = 0
		_, err = Abrir(ctx, log, "productor de x", func() (int, error) { intentos++; return 0, definitivo })
		if err == nil || intentos != 1 {
			t.Errorf("%v: %d attempts, err %v; want one attempt and the error", definitivo, intentos, err)
		}
	}

	cctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	_, err = Abrir(cctx, log, "lector de y", func() (int, error) { return 0, errors.New("connection refused") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("ctx ended: %v, want the deadline and the last error", err)
	}
}
