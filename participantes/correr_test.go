package participantes_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/internal/version"
	"github.com/alpespartner/sagas/participantes"
	"github.com/alpespartner/sagas/participantes/internal/prueba"
)

func TestBanderasQueRespondenYTerminanSinLeerLaConfiguracion(t *testing.T) {
	casos := []struct {
		nombre   string
		args     []string
		error    bool
		contiene []string
	}{
		{"-h lista las banderas y las variables y termina sin error", []string{"-h"},
			false, []string{"Usage:", "-check-config", "-version", "Environment", "SAGAS_STORAGE_TYPE", "SAGAS_FALLOS"}},
		{"-version nombra el servicio y la versión", []string{"-version"}, false, []string{" " + version.Cadena() + "\n"}},
		{"una bandera desconocida es un error", []string{"-no-existe"}, true, []string{"-check-config"}},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			var out bytes.Buffer
			// A configuration that would fail: these flags answer before it is read.
			getenv := func(k string) string {
				if k == "SAGAS_STORAGE_TYPE" {
					return "postgres"
				}
				return ""
			}
			s := prueba.Servicio()
			err := participantes.Correr(context.Background(), append([]string{s.Nombre}, c.args...), getenv, &out, s)
			if (err != nil) != c.error {
				t.Fatalf("err = %v, want error: %v", err, c.error)
			}
			for _, w := range c.contiene {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
