package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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

func TestMetricaBuildInfoNombraLaCompilacion(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "1b250b5c2f1e0123456789"}}
	sucio := append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, c := range []struct {
		nombre string
		info   debug.BuildInfo
		want   string
	}{
		{"sin vcs", debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "(devel)"}},
			`goversion=go1.24.1 revision=unknown version=devel`},
		{"versión y revisión", debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "v1.2.3"}, Settings: rev},
			`goversion=go1.24.1 revision=1b250b5c2f1e version=v1.2.3`},
		{"árbol con cambios", debug.BuildInfo{GoVersion: "go1.24.1", Main: debug.Module{Version: "(devel)"}, Settings: sucio},
			`goversion=go1.24.1 revision=1b250b5c2f1e+dirty version=devel`},
	} {
		if got := buildInfo(t, metricaDe(&c.info)); got != c.want {
			t.Errorf("%s: sagas_build_info{%s}, want {%s}", c.nombre, got, c.want)
		}
	}
	if got := buildInfo(t, Metrica()); !strings.Contains(got, "goversion=go") {
		t.Errorf("Metrica: sagas_build_info{%s}, want a goversion label", got)
	}
}

// buildInfo registers c and returns the labels of its one series, sorted
// by name, after checking that it is sagas_build_info and that it is 1.
func buildInfo(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || fams[0].GetName() != "sagas_build_info" || len(fams[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want the one series of sagas_build_info", fams)
	}
	m := fams[0].GetMetric()[0]
	if v := m.GetGauge().GetValue(); v != 1 {
		t.Errorf("sagas_build_info = %v, want 1", v)
	}
	var etiquetas []string
	for _, l := range m.GetLabel() {
		etiquetas = append(etiquetas, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(etiquetas, " ")
}
