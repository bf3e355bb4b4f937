//go:build !windows

package prueba

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
)

// Files under test, relative to this package. SAGAS_TABLERO names another
// dashboard file to test instead (e.g. a draft copy).
const (
	rutaTableroPorDefecto = "../grafana/dashboards/sagas.json"
	rutaDatasource        = "../grafana/provisioning/datasources/prometheus.yml"
	rutaAlertas           = "../alertas.yml"
)

// participantes are the services built from ./participantes/<nombre>.
var participantes = []string{"influencer", "marca", "tracking", "afiliados", "comisiones", "notificaciones"}

// --- the dashboard -------------------------------------------------------------

type tablero struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *fuente         `json:"datasource"`
	Query      json.RawMessage `json:"query"` // a string or {"query": "..."}
	AllValue   string          `json:"allValue"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

// consulta returns the variable's query text.
func (v variable) consulta() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	json.Unmarshal(v.Query, &o)
	return o.Query
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *fuente        `json:"datasource"`
	GridPos    map[string]int `json:"gridPos"`
	Targets    []objetivo     `json:"targets"`
	Panels     []panel        `json:"panels"` // the panels of a collapsed row
}

type objetivo struct {
	RefID      string  `json:"refId"`
	Expr       string  `json:"expr"`
	Datasource *fuente `json:"datasource"`
}

type fuente struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// consulta is one PromQL expression of the dashboard and where it is.
type consulta struct {
	panel, refID, expr string
}

func (c consulta) String() string { return fmt.Sprintf("panel %q, consulta %s", c.panel, c.refID) }

func leerTablero(t *testing.T) tablero {
	t.Helper()
	ruta := rutaTableroPorDefecto
	if r := os.Getenv("SAGAS_TABLERO"); r != "" {
		ruta = r
	}
	b, err := os.ReadFile(ruta)
	if err != nil {
		t.Fatal(err)
	}
	var tb tablero
	if err := json.Unmarshal(b, &tb); err != nil {
		t.Fatalf("%s no es JSON válido: %v", ruta, err)
	}
	return tb
}

// todos returns every panel, those inside collapsed rows included.
func (tb tablero) todos() []panel {
	var out []panel
	var recorrer func([]panel)
	recorrer = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			recorrer(p.Panels)
		}
	}
	recorrer(tb.Panels)
	return out
}

func (tb tablero) consultas() []consulta {
	var out []consulta
	for _, p := range tb.todos() {
		for _, o := range p.Targets {
			out = append(out, consulta{panel: p.Title, refID: o.RefID, expr: o.Expr})
		}
	}
	return out
}

// Grafana's variables as they appear in expressions.
var (
	reIntervalo = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)
	reVariable  = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)
	reMetrica   = regexp.MustCompile(`\b(?:sagas|pulsar)_[a-zA-Z0-9_]+`)
	reEtiquetas = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s*,\s*(\w+)\s*\)`)
	reSelector  = regexp.MustCompile(`\b((?:sagas|pulsar)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
)

// sustituir replaces Grafana's interval variables by 1m and each template
// variable by valores[name]. It returns the names it did not know.
func sustituir(expr string, valores map[string]string) (string, []string) {
	expr = reIntervalo.ReplaceAllString(expr, "1m")
	var desconocidas []string
	expr = reVariable.ReplaceAllStringFunc(expr, func(m string) string {
		g := reVariable.FindStringSubmatch(m)
		nombre := g[1] + g[2] + g[3]
		v, ok := valores[nombre]
		if !ok {
			desconocidas = append(desconocidas, m)
			return m
		}
		return v
	})
	return expr, desconocidas
}

// metricas lists the metric names an expression (or alert rule) reads;
// histograms appear under their exported names (..._bucket).
func metricas(expr string) []string {
	ms := reMetrica.FindAllString(expr, -1)
	slices.Sort(ms)
	return slices.Compact(ms)
}

// --- unit test: the dashboard's shape ---------------------------------------

// panelesRequeridos are the views the dashboard must offer: a description and
// a pattern one of its expressions must match.
var panelesRequeridos = []struct{ que, patron string }{
	{"throughput de sagas por flujo", `sum by \(tipo\) \(rate\(sagas_terminadas_total`},
	{"éxito vs compensación", `sum by \(estado\) \(rate\(sagas_terminadas_total`},
	{"latencia extremo a extremo p50", `histogram_quantile\(0\.50?, sum by \(le\) \(rate\(sagas_duracion_seconds_bucket`},
	{"latencia extremo a extremo p95", `histogram_quantile\(0\.95, sum by \(le\) \(rate\(sagas_duracion_seconds_bucket`},
	{"latencia extremo a extremo p99", `histogram_quantile\(0\.99, sum by \(le\) \(rate\(sagas_duracion_seconds_bucket`},
	{"duración p95 por paso y servicio", `histogram_quantile\(0\.95, sum by \(le, servicio[^)]*\) \(rate\(sagas_paso_duracion_seconds_bucket`},
	{"sagas en curso", `sagas_en_curso`},
	{"backlog del outbox", `sagas_outbox_pendientes`},
	{"antigüedad del outbox", `sagas_outbox_antiguedad_seconds`},
	{"lag del outbox", `sagas_outbox_lag_seconds_bucket`},
	{"dead letters", `sagas_dead_letters_total`},
	{"reintentos", `sagas_reintentos_total`},
	{"plazos vencidos", `sagas_plazos_vencidos_total`},
	{"compensaciones", `sagas_compensaciones_total`},
	{"comandos de participantes por resultado", `by \([^)]*resultado[^)]*\) \(rate\(sagas_participante_comandos_total`},
	{"peticiones HTTP por ruta y código", `by \(route, method, code\) \(rate\(sagas_http_peticiones_total`},
	{"procesamiento por mensaje, por tópico", `by \(le, topic\) \(rate\(sagas_mensaje_procesamiento_seconds_bucket`},
	{"procesamiento por lote, por tópico", `by \(le, topic\) \(rate\(sagas_lote_procesamiento_seconds_bucket`},
	{"backlog de Pulsar por tópico del namespace", `by \(topic\) \(pulsar_msg_backlog\{[^}]*namespace=~"\$namespace"[^}]*\}`},
	{"publicación en Pulsar", `pulsar_rate_in\{[^}]*namespace=~"\$namespace"[^}]*\}`},
	{"despacho de Pulsar", `pulsar_rate_out\{[^}]*namespace=~"\$namespace"[^}]*\}`},
	{"cliente Pulsar por tópico", `by \(topic\) \(rate\(pulsar_client_messages_published\{`},
	{"backlog del broker unido a nuestros consumidores por topic", `pulsar_msg_backlog\{[^}]*\}\) and on \(topic\) sum by \(topic\) \(sagas_mensajes_consumidos_total`},
}

// fuenteVariable is how panels, queries and query variables name their
// datasource: the dashboard's datasource variable.
const fuenteVariable = "${datasource}"

// filtroJob is the job filter each metric's selectors must carry: ours and
// the Pulsar client's come from our processes ($job), the broker's from its
// own job ($job_pulsar).
func filtroJob(metrica string) string {
	if strings.HasPrefix(metrica, "sagas_") || strings.HasPrefix(metrica, "pulsar_client_") {
		return `job=~"$job"`
	}
	return `job=~"$job_pulsar"`
}

// sinJob lists the selectors of expr that lack their job filter.
func sinJob(expr string) []string {
	var falta []string
	for _, m := range reSelector.FindAllStringSubmatch(expr, -1) {
		if !strings.Contains(m[2], filtroJob(m[1])) {
			falta = append(falta, m[0])
		}
	}
	return falta
}

// comprobarVariables checks the variables that let the dashboard import into
// an existing Grafana: $datasource (any Prometheus), and $job and
// $job_pulsar (several values, All included) that scope every query.
func comprobarVariables(t *testing.T, tb tablero) {
	t.Helper()
	porNombre := map[string]variable{}
	for _, v := range tb.Templating.List {
		porNombre[v.Name] = v
	}
	if v, ok := porNombre["datasource"]; !ok || v.Type != "datasource" || v.consulta() != "prometheus" {
		t.Errorf("falta la variable datasource de tipo datasource y consulta prometheus (%+v)", v)
	}
	for nombre, metrica := range map[string]string{"job": "sagas_build_info", "job_pulsar": "pulsar_version_info"} {
		v, ok := porNombre[nombre]
		if !ok {
			t.Errorf("falta la variable %s", nombre)
			continue
		}
		if want := "label_values(" + metrica + ", job)"; v.Type != "query" || v.consulta() != want || !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s: %+v, se espera de tipo query, %s, multi e includeAll con allValue .*", nombre, v, want)
		}
	}
}

// tiposDePanel are Grafana's built-in panels: no external plugin needed.
var tiposDePanel = []string{"row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap", "barchart", "piechart", "state-timeline"}

func TestTableroTieneLosPanelesRequeridos(t *testing.T) {
	tb := leerTablero(t)
	if tb.UID == "" || tb.Title == "" {
		t.Errorf("el tablero necesita uid y title (uid=%q title=%q)", tb.UID, tb.Title)
	}
	if tb.SchemaVersion < 36 || tb.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d: se espera ~39 (Grafana 10/11)", tb.SchemaVersion)
	}

	// The datasource is a variable, so the dashboard imports into any
	// Grafana; in compose it resolves to the provisioned default datasource.
	prov, err := os.ReadFile(rutaDatasource)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^\s*type:\s*prometheus\s*$`, `(?m)^\s*isDefault:\s*true\s*$`} {
		if !regexp.MustCompile(re).Match(prov) {
			t.Errorf("%s: falta %s: la variable $datasource del tablero toma el datasource por defecto", rutaDatasource, re)
		}
	}
	mismaFuente := func(f *fuente) bool { return f != nil && f.Type == "prometheus" && f.UID == fuenteVariable }
	comprobarVariables(t, tb)

	ids := map[int]string{}
	for _, p := range tb.todos() {
		if !slices.Contains(tiposDePanel, p.Type) {
			t.Errorf("panel %q: tipo %q no es un panel incluido en Grafana", p.Title, p.Type)
		}
		if otro, ok := ids[p.ID]; ok || p.ID == 0 {
			t.Errorf("panel %q: id %d repetido o vacío (también %q)", p.Title, p.ID, otro)
		}
		ids[p.ID] = p.Title
		if p.GridPos["w"] <= 0 || p.GridPos["h"] <= 0 || p.GridPos["x"]+p.GridPos["w"] > 24 {
			t.Errorf("panel %q: gridPos %v fuera de la rejilla de 24 columnas", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %d: necesita título y al menos una consulta", p.ID)
		}
		if !mismaFuente(p.Datasource) {
			t.Errorf("panel %q: datasource %+v, se espera {prometheus %s}", p.Title, p.Datasource, fuenteVariable)
		}
		for _, o := range p.Targets {
			if !mismaFuente(o.Datasource) || strings.TrimSpace(o.Expr) == "" || o.RefID == "" {
				t.Errorf("panel %q, consulta %q: necesita refId, expr y el datasource %s", p.Title, o.RefID, fuenteVariable)
			}
		}
	}

	definidas := map[string]string{}
	for _, v := range tb.Templating.List {
		definidas[v.Name] = ".*"
		if v.Type == "query" && !mismaFuente(v.Datasource) {
			t.Errorf("variable %s: datasource %+v, se espera %s", v.Name, v.Datasource, fuenteVariable)
		}
	}
	for _, c := range tb.consultas() {
		if _, desconocidas := sustituir(c.expr, definidas); len(desconocidas) > 0 {
			t.Errorf("%s usa variables no definidas en templating: %v", c, desconocidas)
		}
		if falta := sinJob(c.expr); len(falta) > 0 {
			t.Errorf("%s: selectores sin el filtro de su job: %v\n  expr: %s", c, falta, c.expr)
		}
	}
	for _, v := range tb.Templating.List {
		if v.Name == "job" || v.Name == "job_pulsar" {
			continue
		}
		if falta := sinJob(v.consulta()); len(falta) > 0 {
			t.Errorf("variable %s: selectores sin el filtro de su job: %v", v.Name, falta)
		}
	}

	for _, r := range panelesRequeridos {
		re := regexp.MustCompile(r.patron)
		if !slices.ContainsFunc(tb.consultas(), func(c consulta) bool { return re.MatchString(c.expr) }) {
			t.Errorf("falta el panel requerido %q: ninguna expresión coincide con %s", r.que, r.patron)
		}
	}
}

// --- integration test: every expression returns data ------------------------

// TestCadaConsultaDelTableroDevuelveDatos runs the system (coordinator and
// participants as processes on the test broker, SQLite), scrapes it with a
// real Prometheus, drives a small load with successes, compensations, failed
// compensations, timeouts, a poison message and bad HTTP requests, and then
// evaluates every expression of the dashboard: each must return data, or the
// panel would be empty in production. The alert rules must load, evaluate and
// read only metrics that exist.
func TestCadaConsultaDelTableroDevuelveDatos(t *testing.T) {
	pulsarURL, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	binProm, err := exec.LookPath("prometheus")
	if err != nil {
		if integracion.Required() {
			t.Fatal("no está el binario prometheus: scripts/test.sh instala el paquete Debian `prometheus`")
		}
		t.Skip("prueba omitida: falta el binario prometheus (apt-get install prometheus)")
	}
	inicio := time.Now()
	tb := leerTablero(t)
	raiz, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	alertas, err := filepath.Abs(rutaAlertas)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// Binaries, built as `make run` builds them.
	bin := filepath.Join(dir, "bin") + string(filepath.Separator)
	build := exec.Command("go", "build", "-o", bin, "./coordinador/cmd/coordinador", "./participantes/...")
	build.Dir = raiz
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("binarios compilados en %s", time.Since(inicio).Round(time.Millisecond))

	s := &sistema{t: t, dir: dir, salidas: map[string]chan struct{}{}}
	ns := "mon" + aleatorio()
	topo := eventos.Topologia{Tenant: eventos.TopologiaPorDefecto.Tenant, Namespace: ns}
	comun := map[string]string{
		"SAGAS_PULSAR_URL": pulsarURL, "SAGAS_PULSAR_ADMIN_URL": adminURL,
		"SAGAS_PULSAR_TENANT": topo.Tenant, "SAGAS_PULSAR_NAMESPACE": ns,
		"SAGAS_STORAGE_TYPE": "sqlite", "SAGAS_DATA_DIR": filepath.Join(dir, "datos"),
		"SAGAS_LOG_LEVEL": "warn", "SAGAS_FALLOS": "no",
	}

	// The coordinator, with deadlines short enough to see retries, timeouts
	// and failed compensations within seconds.
	defs := escribirDefiniciones(t, dir)
	api := "127.0.0.1:" + puertoLibre(t)
	entornoCoordinador := map[string]string{
		"SAGAS_DB_PATH": filepath.Join(dir, "datos", "coordinador.db"), "SAGAS_DEFINICIONES": defs,
		"SAGAS_API_HOST": "127.0.0.1", "SAGAS_API_PORT": strings.TrimPrefix(api, "127.0.0.1:"),
		"SAGAS_LOG_DIR": "off", "SAGAS_PUENTE": "off", "SAGAS_TIMER_INTERVAL": "50ms",
		"SAGAS_REPLICA_ID": "coordinador-" + ns,
	}
	// The operator's provisioning step first, as `make run` does.
	preparar := exec.Command(filepath.Join(bin, "coordinador"), "-preparar")
	preparar.Env = os.Environ()
	for _, e := range []map[string]string{comun, entornoCoordinador} {
		for k, v := range e {
			preparar.Env = append(preparar.Env, k+"="+v)
		}
	}
	if out, err := preparar.CombinedOutput(); err != nil {
		t.Fatalf("coordinador -preparar: %v\n%s", err, out)
	}
	s.iniciar(filepath.Join(bin, "coordinador"), "coordinador", comun, entornoCoordinador)
	metricasDe := map[string]string{"coordinador": api}
	for _, p := range participantes {
		extra := map[string]string{"SAGAS_METRICS_ADDR": "127.0.0.1:" + puertoLibre(t), "SAGAS_TRABAJADORES": "16"}
		if p == "notificaciones" {
			// Slower than its step's deadlines: every lanzar-campania-completa
			// saga retries the step, then times out and compensates.
			extra["SAGAS_LATENCIA"] = "600ms"
		}
		metricasDe[p] = extra["SAGAS_METRICS_ADDR"]
		s.iniciar(filepath.Join(bin, p), p, comun, extra)
	}

	// Ready: the API answers /readyz, each participant its /healthz and has
	// subscribed to its command topic.
	s.esperar(60*time.Second, "coordinador listo", func() error { return obtener("http://"+api+"/readyz", nil) })
	for _, p := range participantes {
		sus := fmt.Sprintf("%s/admin/v2/persistent/%s/%s/comandos-%s/subscriptions", adminURL, topo.Tenant, ns, p)
		s.esperar(60*time.Second, p+" listo", func() error {
			if err := obtener("http://"+metricasDe[p]+"/healthz", nil); err != nil {
				return err
			}
			var subs []string
			if err := obtener(sus, &subs); err != nil {
				return err
			}
			if !slices.Contains(subs, "participante-"+p) {
				return fmt.Errorf("suscripciones de comandos-%s: %v", p, subs)
			}
			return nil
		})
	}
	t.Logf("sistema listo a los %s", time.Since(inicio).Round(time.Millisecond))

	// Prometheus scrapes everything every second and loads the alert rules.
	prom := "127.0.0.1:" + puertoLibre(t)
	admin, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	config := configPrometheus(alertas, metricasDe, admin.Host)
	rutaConfig := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(rutaConfig, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	s.iniciarComando("prometheus", exec.Command(binProm, "--config.file="+rutaConfig,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+prom, "--log.level=warn"))
	p := &clienteProm{base: "http://" + prom}
	s.esperar(30*time.Second, "prometheus listo", func() error { return obtener(p.base+"/-/ready", nil) })
	s.esperar(30*time.Second, "todos los targets up", p.targetsArriba)

	// Load.
	enviarVeneno(t, pulsarURL, topo.Comandos("marca"))
	peticionesMalas(t, "http://"+api)
	estados := cargar(t, "http://"+api)
	t.Logf("carga terminada a los %s: %v", time.Since(inicio).Round(time.Millisecond), estados)
	for _, e := range []string{"COMPLETADA", "COMPENSADA", "COMPENSACION_FALLIDA"} {
		if estados[e] == 0 {
			t.Errorf("ninguna saga terminó %s (%v): la carga no cubre lo que el tablero muestra", e, estados)
		}
	}

	// Enough scrapes: every saga counted, the dead letter counted, our topics
	// in the broker's metrics, then two more scrapes so that every series,
	// the newest included, has two samples for rate().
	total := 0
	for _, n := range estados {
		total += n
	}
	s.esperar(30*time.Second, "métricas raspadas", func() error {
		for _, c := range []struct {
			expr   string
			minimo float64
		}{
			{`sum(sagas_terminadas_total)`, float64(total)},
			{`sum(sagas_dead_letters_total)`, 1},
			{fmt.Sprintf(`count(pulsar_msg_backlog{namespace="%s"})`, topo.NS()), 1},
		} {
			v, err := p.escalar(c.expr)
			if err != nil {
				return err
			}
			if v < c.minimo {
				return fmt.Errorf("%s = %v, se espera >= %v", c.expr, v, c.minimo)
			}
		}
		return nil
	})
	time.Sleep(2500 * time.Millisecond)

	// Every expression of the dashboard returns data.
	valores := map[string]string{}
	for _, v := range tb.Templating.List {
		valores[v.Name] = ".*"
	}
	// The broker holds every test's namespaces: the Pulsar panels must show ours.
	valores["namespace"] = regexp.QuoteMeta(topo.NS())
	consultas := tb.consultas()
	for _, c := range consultas {
		expr, desconocidas := sustituir(c.expr, valores)
		if len(desconocidas) > 0 {
			t.Errorf("%s: variables desconocidas %v\n  expr: %s", c, desconocidas, c.expr)
			continue
		}
		if err := p.tieneDatos(expr); err != nil {
			t.Errorf("%s: %v%s\n  expr: %s", c, err, p.faltantes(expr), expr)
		}
	}
	for _, v := range tb.Templating.List {
		m := reEtiquetas.FindStringSubmatch(v.consulta())
		if m == nil {
			continue
		}
		selector, _ := sustituir(m[1], valores)
		vals, err := p.valoresEtiqueta(m[2], selector)
		if err != nil || len(vals) == 0 {
			t.Errorf("variable %s: %s no devuelve valores (%v)%s", v.Name, v.consulta(), err, p.faltantes(m[1]))
		}
	}
	p.comprobarAlertas(t)
	comprobarMetricasDeProcesos(t, metricasDe, topo.NS())
	p.comprobarUnionPorTopic(t, topo.NS())
	t.Logf("%d consultas del tablero evaluadas; total %s", len(consultas), time.Since(inicio).Round(time.Millisecond))
}

// escribirDefiniciones writes saga definitions with short deadlines:
// compensations retry every 100-200 ms three times (COMPENSACION_FALLIDA in
// well under a second), and the notificaciones step waits 200 ms twice for a
// participant that takes 600 ms (a retry, then a timeout).
func escribirDefiniciones(t *testing.T, dir string) string {
	t.Helper()
	defs := filepath.Join(dir, "definiciones")
	if err := os.Mkdir(defs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*saga.Definicion{saga.Campana(), saga.LanzarCampaniaCompleta()} {
		d.IntentosCompensacion = 3
		d.PlazoCompensacion = saga.Duracion(5 * time.Second)
		d.EsperaCompensacion = saga.Duracion(100 * time.Millisecond)
		d.EsperaMaxima = saga.Duracion(200 * time.Millisecond)
		for i := range d.Pasos {
			d.Pasos[i].Plazo = saga.Duracion(5 * time.Second)
			if d.Pasos[i].Servicio == "notificaciones" {
				d.Pasos[i].Plazo, d.Pasos[i].Intentos = saga.Duracion(200*time.Millisecond), 2
			}
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(defs, d.Tipo+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return defs
}

func configPrometheus(alertas string, metricasDe map[string]string, broker string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	fmt.Fprintf(&b, "rule_files:\n  - %q\n", alertas)
	fmt.Fprintf(&b, "scrape_configs:\n")
	fmt.Fprintf(&b, "  - job_name: coordinador\n    static_configs:\n      - targets: [%q]\n", metricasDe["coordinador"])
	fmt.Fprintf(&b, "  - job_name: participantes\n    static_configs:\n")
	for _, p := range participantes {
		fmt.Fprintf(&b, "      - targets: [%q]\n        labels: {servicio_proceso: %q}\n", metricasDe[p], p)
	}
	fmt.Fprintf(&b, "  - job_name: pulsar\n    metrics_path: /metrics/\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [%q]\n", broker)
	return b.String()
}

// --- load --------------------------------------------------------------------

const cuerpoCampana = `{"nombre":"Campaña %d","tipo":"influencer_marketing","presupuesto":50000,` +
	`"marca":{"id_marca":"6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60","nombre_marca":"Alpes"},` +
	`"influencers":[{"nombre":"Tech","plataforma":"Instagram"}]%s}`

const cuerpoLanzamiento = `{"nombre":"Lanzamiento %d","tipo":"afiliados","canal_publicidad":"web","objetivo":"ventas",` +
	`"fecha_inicio":"2030-01-01T00:00:00Z","fecha_fin":"2030-02-01T00:00:00Z","presupuesto":1000,"moneda":"COP",` +
	`"comision":{"tipo":"porcentaje","valor":10},"criterios_afiliados":{"categorias":["tecnologia","moda"],"min_seguidores":10,"maximo":5},` +
	`"canales_notificacion":["email"]%s}`

// cargar starts 40 sagas, 10 at a time, each waiting for its end: 28 of the
// campana flow (every 7th fails at tracking and compensates, every 7th from
// the 4th also fails compensating influencer) and 12 of
// lanzar-campania-completa (each times out at notificaciones). It returns
// how many ended in each state.
func cargar(t *testing.T, api string) map[string]int {
	t.Helper()
	type pedido struct{ ruta, cuerpo string }
	var pedidos []pedido
	for i := range 28 {
		extra := ""
		switch i % 7 {
		case 0:
			extra = `,"simular_fallo":"tracking"`
		case 3:
			extra = `,"simular_fallo":"marca","simular_fallo_compensacion":"influencer"`
		}
		pedidos = append(pedidos, pedido{"/campana-saga", fmt.Sprintf(cuerpoCampana, i, extra)})
	}
	for i := range 12 {
		pedidos = append(pedidos, pedido{"/api/v1/comandos/lanzar-campania-completa", fmt.Sprintf(cuerpoLanzamiento, i, "")})
	}
	var (
		mu      sync.Mutex
		estados = map[string]int{}
		wg      sync.WaitGroup
		turnos  = make(chan struct{}, 10)
	)
	cliente := &http.Client{Timeout: 60 * time.Second}
	for _, pd := range pedidos {
		wg.Add(1)
		turnos <- struct{}{}
		go func() {
			defer func() { <-turnos; wg.Done() }()
			resp, err := cliente.Post(api+pd.ruta+"?esperar=45s", "application/json", strings.NewReader(pd.cuerpo))
			if err != nil {
				t.Errorf("POST %s: %v", pd.ruta, err)
				return
			}
			defer resp.Body.Close()
			var r struct {
				IDSaga string `json:"id_saga"`
				Estado string `json:"estado"`
			}
			cuerpo, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || json.Unmarshal(cuerpo, &r) != nil {
				t.Errorf("POST %s: %s %s (se espera 200 con la saga terminada)", pd.ruta, resp.Status, cuerpo)
				return
			}
			mu.Lock()
			estados[r.Estado]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return estados
}

// peticionesMalas sends requests the API must refuse, for the 4xx panels.
func peticionesMalas(t *testing.T, api string) {
	t.Helper()
	for _, c := range []struct {
		metodo, ruta, cuerpo string
		codigo               int
	}{
		{http.MethodPost, "/campana-saga", `{}`, http.StatusBadRequest},
		{http.MethodPost, "/campana-saga", `{"nombre": `, http.StatusBadRequest},
		{http.MethodGet, "/api/v1/sagas/00000000-0000-0000-0000-000000000000", "", http.StatusNotFound},
		{http.MethodGet, "/no-existe", "", http.StatusNotFound},
	} {
		req, err := http.NewRequest(c.metodo, api+c.ruta, strings.NewReader(c.cuerpo))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.metodo, c.ruta, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.codigo {
			t.Errorf("%s %s: %s, se espera %d", c.metodo, c.ruta, resp.Status, c.codigo)
		}
	}
}

// enviarVeneno publishes bytes that are not a command (no schema, not Avro)
// to a command topic: the participant must dead-letter it.
func enviarVeneno(t *testing.T, pulsarURL, topico string) {
	t.Helper()
	cliente, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: pulsarURL, OperationTimeout: 30 * time.Second,
		Logger: pulsarlog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cliente.Close()
	productor, err := cliente.CreateProducer(pulsar.ProducerOptions{Topic: topico, DisableBatching: true})
	if err != nil {
		t.Fatalf("productor sin esquema en %s: %v", topico, err)
	}
	defer productor.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := productor.Send(ctx, &pulsar.ProducerMessage{Key: "veneno-" + aleatorio(), Payload: []byte("esto no es un comando")}); err != nil {
		t.Fatalf("publicar mensaje venenoso en %s: %v", topico, err)
	}
}

// --- Prometheus client -------------------------------------------------------

type clienteProm struct{ base string }

type respuestaProm struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

func (p *clienteProm) api(ruta string, params url.Values, datos any) error {
	resp, err := http.Get(p.base + ruta + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r respuestaProm
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %s, respuesta no es JSON: %w", ruta, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("prometheus rechaza la consulta (%s): %s", r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, datos)
}

// valores evaluates an instant query and returns its sample values.
func (p *clienteProm) valores(expr string) ([]float64, error) {
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &d); err != nil {
		return nil, err
	}
	var crudos [][2]any
	switch d.ResultType {
	case "vector":
		var v []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return nil, err
		}
		for _, m := range v {
			crudos = append(crudos, m.Value)
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return nil, err
		}
		crudos = append(crudos, v)
	default:
		return nil, fmt.Errorf("resultado de tipo %s: se espera vector o escalar", d.ResultType)
	}
	var out []float64
	for _, c := range crudos {
		s, _ := c[1].(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("valor %q: %w", s, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func (p *clienteProm) escalar(expr string) (float64, error) {
	vs, err := p.valores(expr)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("%s: sin datos", expr)
	}
	return vs[0], nil
}

// tieneDatos fails when the expression returns no series, or only NaN (a
// panel with nothing to draw).
func (p *clienteProm) tieneDatos(expr string) error {
	vs, err := p.valores(expr)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return errors.New("no devuelve datos")
	}
	if !slices.ContainsFunc(vs, func(f float64) bool { return !math.IsNaN(f) }) {
		return fmt.Errorf("solo devuelve NaN (%d series)", len(vs))
	}
	return nil
}

// faltantes names the metrics of expr that no scraped process exports.
func (p *clienteProm) faltantes(expr string) string {
	var faltan []string
	for _, m := range metricas(expr) {
		if v, err := p.escalar(fmt.Sprintf(`count({__name__=%q})`, m)); err != nil || v == 0 {
			faltan = append(faltan, m)
		}
	}
	if len(faltan) == 0 {
		return ""
	}
	return fmt.Sprintf(" (ningún proceso exporta %s)", strings.Join(faltan, ", "))
}

func (p *clienteProm) valoresEtiqueta(etiqueta, metrica string) ([]string, error) {
	var vals []string
	err := p.api("/api/v1/label/"+etiqueta+"/values", url.Values{"match[]": {metrica}}, &vals)
	return vals, err
}

func (p *clienteProm) targetsArriba() error {
	var d struct {
		ActiveTargets []struct {
			ScrapeURL string `json:"scrapeUrl"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"activeTargets"`
	}
	if err := p.api("/api/v1/targets", url.Values{"state": {"active"}}, &d); err != nil {
		return err
	}
	if len(d.ActiveTargets) != 1+len(participantes)+1 {
		return fmt.Errorf("%d targets activos", len(d.ActiveTargets))
	}
	for _, tg := range d.ActiveTargets {
		if tg.Health != "up" {
			return fmt.Errorf("%s: %s %s", tg.ScrapeURL, tg.Health, tg.LastError)
		}
	}
	return nil
}

// comprobarAlertas checks that every alert rule has been evaluated without
// error and reads only metrics that exist.
func (p *clienteProm) comprobarAlertas(t *testing.T) {
	t.Helper()
	var d struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name           string    `json:"name"`
				Query          string    `json:"query"`
				Health         string    `json:"health"`
				LastError      string    `json:"lastError"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", url.Values{}, &d); err != nil {
		t.Errorf("reglas de alerta: %v", err)
		return
	}
	n := 0
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" || r.LastEvaluation.IsZero() {
				t.Errorf("alerta %s/%s: health %q %s\n  expr: %s", g.Name, r.Name, r.Health, r.LastError, r.Query)
			}
			if f := p.faltantes(r.Query); f != "" {
				t.Errorf("alerta %s/%s lee métricas que no existen%s\n  expr: %s", g.Name, r.Name, f, r.Query)
			}
		}
	}
	if n == 0 {
		t.Errorf("Prometheus no cargó ninguna regla de %s", rutaAlertas)
	}
}

// --- processes ---------------------------------------------------------------

// sistema runs the processes of one test and stops them all in Cleanup.
type sistema struct {
	t       *testing.T
	dir     string
	mu      sync.Mutex
	salidas map[string]chan struct{} // closed when the process exits
	logs    []string
}

func (s *sistema) iniciar(binario, nombre string, entornos ...map[string]string) {
	cmd := exec.Command(binario)
	cmd.Env = os.Environ()
	for _, e := range entornos {
		for k, v := range e {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	s.iniciarComando(nombre, cmd)
}

func (s *sistema) iniciarComando(nombre string, cmd *exec.Cmd) {
	t := s.t
	t.Helper()
	ruta := filepath.Join(s.dir, "logs", nombre+".log")
	if err := os.MkdirAll(filepath.Dir(ruta), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(ruta)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = atributosProceso()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("iniciar %s: %v", nombre, err)
	}
	salio := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(salio) }()
	s.mu.Lock()
	s.salidas[nombre] = salio
	s.logs = append(s.logs, ruta)
	s.mu.Unlock()
	// Cleanup runs last-in first-out: processes stop in reverse start order.
	t.Cleanup(func() {
		detener(cmd.Process.Pid, salio)
		if t.Failed() {
			t.Logf("--- últimas líneas de %s ---\n%s", nombre, cola(ruta, 25))
		}
	})
}

// detener sends SIGTERM to the process group, then SIGKILL after 10 s.
func detener(pid int, salio <-chan struct{}) {
	select {
	case <-salio:
		return
	default:
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-salio:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-salio
	}
}

// esperar polls cond until it holds, failing the test at the deadline or as
// soon as one of the processes exits.
func (s *sistema) esperar(plazo time.Duration, que string, cond func() error) {
	s.t.Helper()
	limite := time.Now().Add(plazo)
	for {
		err := cond()
		if err == nil {
			return
		}
		s.mu.Lock()
		for nombre, salio := range s.salidas {
			select {
			case <-salio:
				s.mu.Unlock()
				s.t.Fatalf("esperando %s: el proceso %s terminó (último error: %v)", que, nombre, err)
			default:
			}
		}
		s.mu.Unlock()
		if time.Now().After(limite) {
			s.t.Fatalf("esperando %s: %v tras %s", que, err, plazo)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- helpers -----------------------------------------------------------------

func obtener(u string, datos any) error {
	cliente := http.Client{Timeout: 5 * time.Second}
	resp, err := cliente.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	cuerpo, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, bytes.TrimSpace(cuerpo))
	}
	if datos != nil {
		return json.Unmarshal(cuerpo, datos)
	}
	return nil
}

func puertoLibre(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func aleatorio() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func cola(ruta string, n int) string {
	b, err := os.ReadFile(ruta)
	if err != nil {
		return err.Error()
	}
	lineas := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lineas) > n {
		lineas = lineas[len(lineas)-n:]
	}
	return strings.Join(lineas, "\n")
}
