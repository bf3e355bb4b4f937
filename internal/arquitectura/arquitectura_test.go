package arquitectura

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const modulo = "github.com/alpespartner/sagas"

// std marks a standard-library package in what deps returns.
const std = " (std)"

// deps lists the packages each package of patron imports (test files
// excluded): all of them, as `go list -deps` reports them, or only the direct
// ones.
func deps(t *testing.T, patron string, directas bool) map[string][]string {
	t.Helper()
	paquetes := lista(t, "go", "list", patron)
	out := make(map[string][]string, len(paquetes))
	for _, p := range paquetes {
		if directas {
			out[p] = lista(t, "go", "list", "-f", `{{join .Imports "\n"}}`, p)
		} else {
			out[p] = lista(t, "go", "list", "-deps", "-f", `{{.ImportPath}}{{if .Standard}}`+std+`{{end}}`, p)
		}
	}
	return out
}

func lista(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' })
}

func TestLasDependenciasSiguenLasReglasDeLaArquitectura(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	reglas := []struct {
		nombre   string
		patron   string
		directas bool // only direct imports count (the package may use eventos, whose codecs import more)
		prohibe  func(dep string) bool
	}{
		{"the saga core imports no I/O package and nothing outside the standard library",
			"../../coordinador/saga", false, func(d string) bool {
				if p, ok := strings.CutSuffix(d, std); ok {
					return p == "net" || strings.HasPrefix(p, "net/") || strings.HasPrefix(p, "database/") || p == "os/exec"
				}
				return d != modulo+"/coordinador/saga"
			}},
		{"eventos imports nothing of ours",
			"../../eventos", false, func(d string) bool {
				return strings.HasPrefix(d, modulo+"/") && d != modulo+"/eventos"
			}},
		{"participants never import the coordinator",
			"../../participantes/...", false, func(d string) bool { return strings.HasPrefix(d, modulo+"/coordinador") }},
		{"the coordinator never imports the participants",
			"../../coordinador/...", false, func(d string) bool { return strings.HasPrefix(d, modulo+"/participantes") }},
		{"the coordinator's store never imports the broker adapter",
			"../../coordinador/almacen/...", false, func(d string) bool {
				return strings.HasPrefix(d, modulo+"/internal/bus") || strings.HasPrefix(d, modulo+"/coordinador/mensajeria") ||
					strings.HasPrefix(d, "github.com/apache/pulsar-client-go")
			}},
		{"the participants' inbox rules are pure",
			"../../participantes/bandeja", true, func(d string) bool {
				for _, io := range []string{"net", "database/", "os/exec", "github.com/apache/pulsar-client-go",
					"github.com/labstack/", "github.com/go-sql-driver/", "modernc.org/sqlite", modulo + "/participantes/almacen"} {
					if d == io || strings.HasPrefix(d, io+"/") || (strings.HasSuffix(io, "/") && strings.HasPrefix(d, io)) {
						return true
					}
				}
				return false
			}},
	}
	for _, r := range reglas {
		t.Run(r.nombre, func(t *testing.T) {
			for p, ds := range deps(t, r.patron, r.directas) {
				for _, d := range ds {
					if r.prohibe(d) {
						t.Errorf("%s imports %s", p, d)
					}
				}
			}
		})
	}
}
