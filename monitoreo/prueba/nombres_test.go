//go:build !windows

package prueba

import (
	"bufio"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// problemaDeNombre says what is wrong with the name of one of our metric
// families (sagas_*), given its type, or "" when it follows Prometheus'
// conventions: counters end in _total, histograms and summaries in a base
// unit (_seconds, _bytes), an _info gauge names a build; no Spanish unit.
func problemaDeNombre(nombre, tipo string) string {
	for _, unidad := range []string{"segundos", "milisegundos", "minutos", "horas", "milliseconds", "_ms"} {
		if strings.Contains(nombre, unidad) {
			return fmt.Sprintf("%s: unidad %q, se espera la unidad base en inglés (_seconds)", nombre, unidad)
		}
	}
	switch tipo {
	case "counter":
		if !strings.HasSuffix(nombre, "_total") {
			return nombre + ": un contador termina en _total"
		}
	case "histogram", "summary":
		if !strings.HasSuffix(nombre, "_seconds") && !strings.HasSuffix(nombre, "_bytes") {
			return nombre + ": un " + tipo + " termina en su unidad base (_seconds, _bytes)"
		}
	case "gauge":
		if strings.HasSuffix(nombre, "_total") {
			return nombre + ": _total es solo para contadores"
		}
	default:
		return fmt.Sprintf("%s: tipo %q, se espera counter, gauge, histogram o summary", nombre, tipo)
	}
	return ""
}

func TestProblemaDeNombreSigueLasConvencionesDePrometheus(t *testing.T) {
	for _, c := range []struct {
		nombre, tipo string
		valido       bool
	}{
		{"sagas_terminadas_total", "counter", true},
		{"sagas_duracion_seconds", "histogram", true},
		{"sagas_outbox_antiguedad_seconds", "gauge", true},
		{"sagas_en_curso", "gauge", true},
		{"sagas_build_info", "gauge", true},
		{"sagas_duracion_segundos", "histogram", false},
		{"sagas_outbox_antiguedad_segundos", "gauge", false},
		{"sagas_latencia_milliseconds", "histogram", false},
		{"sagas_terminadas", "counter", false},
		{"sagas_duracion", "histogram", false},
		{"sagas_en_curso_total", "gauge", false},
		{"sagas_algo", "untyped", false},
	} {
		if p := problemaDeNombre(c.nombre, c.tipo); (p == "") != c.valido {
			t.Errorf("problemaDeNombre(%q, %q) = %q, se espera válido=%v", c.nombre, c.tipo, p, c.valido)
		}
	}
}

var reBuildInfo = regexp.MustCompile(`^sagas_build_info\{(.*)\} 1$`)

// comprobarMetricasDeProcesos scrapes each process's /metrics (direccion by
// process name) and checks that our families follow the naming conventions,
// that sagas_build_info names the build, and that the Pulsar client's
// metrics are served with the full topic names of namespace ns.
func comprobarMetricasDeProcesos(t *testing.T, direcciones map[string]string, ns string) {
	t.Helper()
	cliente := http.Client{Timeout: 5 * time.Second}
	for proceso, dir := range direcciones {
		resp, err := cliente.Get("http://" + dir + "/metrics")
		if err != nil {
			t.Errorf("%s: %v", proceso, err)
			continue
		}
		tipos := map[string]string{}
		var buildInfo []string
		temasCliente := 0
		lector := bufio.NewScanner(resp.Body)
		lector.Buffer(make([]byte, 0, 1<<16), 1<<20)
		for lector.Scan() {
			linea := lector.Text()
			if resto, ok := strings.CutPrefix(linea, "# TYPE "); ok {
				if nombre, tipo, ok := strings.Cut(resto, " "); ok {
					tipos[nombre] = tipo
				}
				continue
			}
			if m := reBuildInfo.FindStringSubmatch(linea); m != nil {
				buildInfo = append(buildInfo, m[1])
			}
			if strings.HasPrefix(linea, "pulsar_client_messages_received{") && strings.Contains(linea, `topic="persistent://`+ns+`/`) {
				temasCliente++
			}
		}
		resp.Body.Close()
		if err := lector.Err(); err != nil {
			t.Errorf("%s: leer /metrics: %v", proceso, err)
			continue
		}
		propias := 0
		for nombre, tipo := range tipos {
			if !strings.HasPrefix(nombre, "sagas_") {
				continue
			}
			propias++
			if p := problemaDeNombre(nombre, tipo); p != "" {
				t.Errorf("%s: %s", proceso, p)
			}
		}
		if propias == 0 {
			t.Errorf("%s: /metrics no sirve ninguna métrica sagas_*", proceso)
		}
		if len(buildInfo) != 1 || !strings.Contains(buildInfo[0], `goversion="go`) ||
			!strings.Contains(buildInfo[0], `revision="`) || !strings.Contains(buildInfo[0], `version="`) {
			t.Errorf("%s: sagas_build_info %q, se espera una serie {goversion,revision,version} de valor 1", proceso, buildInfo)
		}
		if temasCliente == 0 {
			t.Errorf("%s: /metrics no sirve pulsar_client_messages_received con topic=\"persistent://%s/...\"", proceso, ns)
		}
	}
}

// comprobarUnionPorTopic checks that the topic label of our consumer metrics
// and of the Pulsar client's joins with the broker's: every topic of
// namespace ns they name is a topic of pulsar_msg_backlog.
func (p *clienteProm) comprobarUnionPorTopic(t *testing.T, ns string) {
	t.Helper()
	for _, metrica := range []string{"sagas_mensajes_consumidos_total", "pulsar_client_messages_received"} {
		nuestros := fmt.Sprintf(`sum by (topic) (%s{topic=~"persistent://%s/.*"})`, metrica, regexp.QuoteMeta(ns))
		if n, err := p.escalar("count(" + nuestros + ")"); err != nil || n == 0 {
			t.Errorf("%s: ninguna serie con topic persistent://%s/... (%v)", metrica, ns, err)
			continue
		}
		sueltos, err := p.valores(nuestros + ` unless on (topic) sum by (topic) (pulsar_msg_backlog)`)
		if err != nil || len(sueltos) > 0 {
			t.Errorf("%s: %d tópicos que no están en pulsar_msg_backlog del broker (%v): la etiqueta topic no se une",
				metrica, len(sueltos), err)
		}
	}
}
