package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/internal/version"
)

func TestBanderasQueRespondenYTerminan(t *testing.T) {
	casos := []struct {
		nombre   string
		args     []string
		error    bool
		contiene []string
	}{
		{"-h lista las banderas y termina sin error", []string{"-h"}, false, []string{"Usage:", "-check-config", "-version", "Environment", "SAGAS_STORAGE_TYPE"}},
		{"-help es lo mismo que -h", []string{"-help"}, false, []string{"-check-config"}},
		{"-version nombra el binario y su versión", []string{"-version"}, false, []string{"coordinador " + version.Cadena() + "\n"}},
		{"una bandera desconocida es un error", []string{"-no-existe"}, true, []string{"-check-config"}},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			var out bytes.Buffer
			// An environment that would fail validation: these flags answer
			// before the configuration is read.
			getenv := func(k string) string {
				if k == "SAGAS_STORAGE_TYPE" {
					return "postgres"
				}
				return ""
			}
			err := run(context.Background(), append([]string{"coordinador"}, c.args...), getenv, &out, nil)
			if (err != nil) != c.error {
				t.Fatalf("err = %v, want error: %v", err, c.error)
			}
			for _, s := range c.contiene {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}
