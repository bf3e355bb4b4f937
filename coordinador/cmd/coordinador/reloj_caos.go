//go:build caos

package main

import (
	"fmt"
	"os"
	"time"
)

// variableDesfaseReloj skews this process's clock, only in binaries built
// with -tags caos (the chaos run's skew plan): production binaries do not
// contain this file and ignore the variable.
const variableDesfaseReloj = "SAGAS_CAOS_DESFASE_RELOJ"

func init() {
	v := os.Getenv(variableDesfaseReloj)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "coordinador: %s=%q: not a duration (e.g. -5m): %v\n", variableDesfaseReloj, v, err)
		os.Exit(2)
	}
	relojLocal = func() time.Time { return time.Now().Add(d) }
	fmt.Fprintf(os.Stderr, "coordinador: build caos: reloj local desfasado %s (%s)\n", d, variableDesfaseReloj)
}
