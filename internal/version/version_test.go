package version

import (
	"runtime/debug"
	"testing"
)

func TestCadenaDeLaInformacionDeCompilacion(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "1b250b5c2f1e0123456789"}}
	sucio := append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, c := range []struct {
		nombre string
		info   debug.BuildInfo
		want   string
	}{
		{"sin vcs", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"versión del módulo", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"revisión", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "devel 1b250b5c2f1e"},
		{"árbol con cambios", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: sucio}, "devel 1b250b5c2f1e+dirty"},
		{"pseudo-versión que ya la nombra", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205-1b250b5c2f1e"}, Settings: rev}, "v0.0.0-20261205-1b250b5c2f1e"},
	} {
		if got := cadenaDe(&c.info); got != c.want {
			t.Errorf("%s: %q, want %q", c.nombre, got, c.want)
		}
	}
	if Cadena() == "" {
		t.Error("empty version")
	}
}
