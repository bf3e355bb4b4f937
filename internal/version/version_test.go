package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribir(t *testing.T) {
	casos := []struct {
		nombre string
		info   debug.BuildInfo
		quiere string
	}{
		{
			nombre: "con revisión, fecha y cambios sin confirmar",
			info: debug.BuildInfo{GoVersion: "go1.25.0", Main: debug.Module{Path: "github.com/alpespartner/sagas", Version: "(devel)"},
				Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}},
			quiere: "github.com/alpespartner/sagas (devel) revisión abc123+cambios 2026-01-02T03:04:05Z go1.25.0",
		},
		{
			nombre: "con revisión de un árbol limpio",
			info: debug.BuildInfo{GoVersion: "go1.25.0", Main: debug.Module{Path: "m", Version: "v1.2.3"},
				Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}},
			quiere: "m v1.2.3 revisión abc123 go1.25.0",
		},
		{
			nombre: "sin datos de VCS (go test, go run)",
			info:   debug.BuildInfo{GoVersion: "go1.25.0", Main: debug.Module{Path: "m"}},
			quiere: "m go1.25.0",
		},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			if got := describir(&c.info); got != c.quiere {
				t.Fatalf("got %q, want %q", got, c.quiere)
			}
		})
	}
}

func TestCadenaNombraAlModuloYGo(t *testing.T) {
	if got := Cadena(); !strings.Contains(got, "go1.") {
		t.Fatalf("Cadena() = %q", got)
	}
}
