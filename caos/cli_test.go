package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestAyudaListaFlagsYVariablesYSaleSinError(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"caos", arg}, sinEntorno, &out); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"-corto", "-plan", "-version", "SAGAS_CACHE_DIR", "SAGAS_PULSAR_AUTH", "SAGAS_PULSAR_TOKEN_FILE"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: help does not list %s:\n%s", arg, want, out.String())
			}
		}
	}
}

func TestVersionImprimeLaVersionSinPrepararNada(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"caos", "-version"}, sinEntorno, &out); err != nil || !strings.HasPrefix(out.String(), "caos ") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("%v %q", err, out.String())
	}
}

func sinEntorno(string) string { return "" }
