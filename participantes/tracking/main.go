// Command tracking is the saga participant that sets up tracking: for a
// campaign (step tracking of the campana saga, InicializarTracking) and for
// the conversions of a full launch (step inicializar_tracking_conversiones,
// InicializarTrackingConversiones). Compensations deactivate the
// configuration. Configuration: see package participantes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alpespartner/sagas/participantes"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracking:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return participantes.Correr(ctx, args, getenv, os.Stdout, servicio())
}
