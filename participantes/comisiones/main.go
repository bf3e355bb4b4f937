// Command comisiones is the saga participant that configures what
// affiliates earn in a campaign launch (step configurar_comisiones_campania
// of the lanzar-campania-completa saga) and reverts that configuration when
// the saga compensates. Configuration: see package participantes.
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
		fmt.Fprintln(os.Stderr, "comisiones:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return participantes.Correr(ctx, args, getenv, os.Stdout, servicio())
}
