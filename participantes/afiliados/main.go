// Command afiliados is the saga participant that reserves the affiliates
// eligible for a campaign launch (step solicitar_afiliados_elegibles of the
// lanzar-campania-completa saga) from its own registry, and releases them
// when the saga compensates. Configuration: see package participantes.
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
		fmt.Fprintln(os.Stderr, "afiliados:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return participantes.Correr(ctx, args, getenv, os.Stdout, servicio())
}
