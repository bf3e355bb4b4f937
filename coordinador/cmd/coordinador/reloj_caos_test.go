//go:build caos

package main

import (
	"os"
	"testing"
	"time"
)

// Run with: SAGAS_CAOS_DESFASE_RELOJ=-5m go test -tags caos -run DesfaseReloj ./coordinador/cmd/coordinador
func TestDesfaseRelojDeLaBuildCaos(t *testing.T) {
	v := os.Getenv(variableDesfaseReloj)
	if v == "" {
		t.Skip(variableDesfaseReloj + " not set")
	}
	want, err := time.ParseDuration(v)
	if err != nil {
		t.Fatal(err)
	}
	if relojLocal == nil {
		t.Fatalf("%s=%s but relojLocal is not set", variableDesfaseReloj, v)
	}
	if d := relojLocal().Sub(time.Now()); (d - want).Abs() > time.Second {
		t.Fatalf("%s=%s: the local clock is off by %s", variableDesfaseReloj, v, d)
	}
}
