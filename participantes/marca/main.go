// Command marca is the saga participant that notifies the brand of a
// campaign (step marca of the campana saga) and cancels the notification when
// the saga compensates. With no brand in the input (a legacy CampanaCreada
// event) it picks one from its own registry by canal_publicidad.
// Configuration: see package participantes.
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
		fmt.Fprintln(os.Stderr, "marca:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return participantes.Correr(ctx, args, getenv, os.Stdout, servicio())
}
