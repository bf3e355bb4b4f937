// Command influencer is the saga participant that notifies a campaign's
// influencers (step influencer of the campana saga) and cancels those
// notifications when the saga compensates. With no influencers in the input
// (a legacy CampanaCreada event) it picks them from its own registry by
// segmento_audiencia. Configuration: see package participantes.
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
		fmt.Fprintln(os.Stderr, "influencer:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return participantes.Correr(ctx, args, getenv, os.Stdout, servicio())
}
