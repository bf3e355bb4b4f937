//go:build !windows

package prueba

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// rutaOperaciones is the runbook the alerts' runbook_url point into.
const rutaOperaciones = "../../docs/operations.md"

var (
	reAlerta     = regexp.MustCompile(`^\s*- alert:\s*(\w+)\s*$`)
	reRunbook    = regexp.MustCompile(`^\s*runbook_url:\s*"?([^"\s]+)"?\s*$`)
	reEncabezado = regexp.MustCompile(`(?m)^## (.+?)\s*$`)
)

// TestCadaAlertaApuntaASuSeccionDelRunbook checks that every rule of
// alertas.yml has a runbook_url docs/operations.md#<name in lower case> and
// that the runbook has that section, a "## <AlertName>" heading.
func TestCadaAlertaApuntaASuSeccionDelRunbook(t *testing.T) {
	reglas, err := os.ReadFile(rutaAlertas)
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile(rutaOperaciones)
	if err != nil {
		t.Fatal(err)
	}
	secciones := map[string]string{} // anchor → heading
	for _, m := range reEncabezado.FindAllStringSubmatch(string(runbook), -1) {
		secciones[ancla(m[1])] = m[1]
	}

	urls := map[string]string{} // alert → runbook_url
	var orden []string
	alerta := ""
	for _, linea := range strings.Split(string(reglas), "\n") {
		if m := reAlerta.FindStringSubmatch(linea); m != nil {
			alerta = m[1]
			orden = append(orden, alerta)
			continue
		}
		if m := reRunbook.FindStringSubmatch(linea); m != nil && alerta != "" {
			if _, ya := urls[alerta]; ya {
				t.Errorf("alerta %s: más de un runbook_url", alerta)
			}
			urls[alerta] = m[1]
		}
	}
	if len(orden) == 0 {
		t.Fatalf("%s: ninguna alerta", rutaAlertas)
	}
	for _, a := range orden {
		want := "docs/operations.md#" + strings.ToLower(a)
		if urls[a] != want {
			t.Errorf("alerta %s: runbook_url %q, se espera %q", a, urls[a], want)
			continue
		}
		if encabezado, ok := secciones[strings.ToLower(a)]; !ok || encabezado != a {
			t.Errorf("alerta %s: %s no tiene la sección \"## %s\" (secciones: %v)", a, rutaOperaciones, a, secciones)
		}
	}
}

// ancla is the anchor GitHub gives a heading: lower case, punctuation other
// than '-' and '_' dropped, spaces as '-'.
func ancla(encabezado string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(encabezado) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestAnclaEsLaDeGitHub(t *testing.T) {
	for _, c := range []struct{ encabezado, want string }{
		{"SagaCompensacionFallida", "sagacompensacionfallida"},
		{"Retrying a COMPENSACION_FALLIDA saga", "retrying-a-compensacion_fallida-saga"},
		{"A stuck saga: which step, and the backlog of its command topic", "a-stuck-saga-which-step-and-the-backlog-of-its-command-topic"},
		{"Topics, subscriptions, backlog and messages", "topics-subscriptions-backlog-and-messages"},
	} {
		if got := ancla(c.encabezado); got != c.want {
			t.Errorf("ancla(%q) = %q, want %q", c.encabezado, got, c.want)
		}
	}
}
