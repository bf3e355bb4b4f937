package inspector_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/sistema"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	// rutaChromium is Debian's chromium package (scripts/test.sh installs it);
	// SAGAS_TEST_CHROMIUM points elsewhere.
	rutaChromium = "/usr/bin/chromium"
	tokenAPI     = "token-del-inspector"
	// zonaHoraria differs from the machine's UTC, so the page must convert.
	zonaHoraria = "America/Bogota"

	cuerpoCampana = `{"nombre":"Campaña Inspector","tipo":"influencer_marketing","presupuesto":50000,` +
		`"marca":{"id_marca":"6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60","nombre_marca":"Alpes"},` +
		`"influencers":[{"nombre":"Tech","plataforma":"Instagram"},{"nombre":"Moda","plataforma":"TikTok"}]%s}`
)

// chromium finds the browser: without it the test skips, or fails when the
// integration tests must run.
func chromium(t *testing.T) string {
	t.Helper()
	ruta := cmp.Or(os.Getenv("SAGAS_TEST_CHROMIUM"), rutaChromium)
	if _, err := os.Stat(ruta); err != nil {
		const como = "install Debian's chromium package (apt-get install -y chromium; scripts/test.sh does it) or set SAGAS_TEST_CHROMIUM"
		if integracion.Required() {
			t.Fatalf("chromium not found at %s but SAGAS_TEST_REQUIRED=1: %s (%v)", ruta, como, err)
		}
		t.Skipf("browser test skipped: chromium not found at %s: %s", ruta, como)
	}
	return ruta
}

// respuestaSaga is the seeds' answer of POST /campana-saga.
type respuestaSaga struct {
	ID             string   `json:"id_saga"`
	Estado         string   `json:"estado"`
	PasoFallido    string   `json:"paso_fallido"`
	Compensaciones []string `json:"compensaciones"`
}

// iniciar starts a campaign saga in the background (waiting for its end when
// esperar is set) and returns where its answer will arrive.
func iniciar(t *testing.T, s *sistema.Sistema, extra string, esperar bool) <-chan respuestaSaga {
	t.Helper()
	ruta := "/campana-saga"
	if esperar {
		ruta += "?esperar=60s"
	}
	out := make(chan respuestaSaga, 1)
	go func() {
		defer close(out)
		code, b, err := s.Post(context.Background(), ruta, fmt.Sprintf(cuerpoCampana, extra), "Authorization", "Bearer "+tokenAPI)
		var r respuestaSaga
		if err != nil || (code != 200 && code != 202) || json.Unmarshal(b, &r) != nil {
			t.Errorf("POST %s: %d %v %s", ruta, code, err, b)
			return
		}
		out <- r
	}()
	return out
}

func recibir(t *testing.T, c <-chan respuestaSaga) respuestaSaga {
	t.Helper()
	r, ok := <-c
	if !ok {
		t.FailNow() // iniciar reported why
	}
	return r
}

// pagina is one browser tab on the inspector, with what the page wrote to
// its console.
type pagina struct {
	t       *testing.T
	ctx     context.Context
	s       *sistema.Sistema
	mu      sync.Mutex
	consola []chromedp.ConsoleMessage
}

func abrirNavegador(t *testing.T, exe string, s *sistema.Sistema) *pagina {
	t.Helper()
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancel := chromedp.NewContext(actx)
	p := &pagina{t: t, ctx: ctx, s: s}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		cancel()
		acancel()
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	mensajes := chromedp.Console(ctx)
	leido := make(chan struct{})
	go func() {
		defer close(leido)
		for m, err := range mensajes {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.consola = append(p.consola, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		acancel()
		<-leido
	})
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zonaHoraria}); err != nil {
		t.Fatal(err)
	}
	p.hacer("set a 1280x800 viewport", chromedp.EmulateViewport(1280, 800))
	return p
}

// retenerRecarga holds the page's next GET of saga id's detail in the
// browser; the function it returns lets it through and waits until the page
// has had the answer (its resource timing entry, then two macrotasks for
// the handler).
func retenerRecarga(t *testing.T, p *pagina, id string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(p.ctx)
	t.Cleanup(cancel)
	pausadas := chromedp.Events(ctx, fetch.RequestPaused) // buffers from here
	primera := make(chan fetch.EventRequestPaused, 1)
	go func() {
		for ev, err := range pausadas {
			if err == nil {
				primera <- ev
			}
			return
		}
	}()
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "*/sagas/" + id}},
	}); err != nil {
		t.Fatalf("intercept the detail's reload: %v", err)
	}
	ruta := "/sagas/" + id
	recibidas := fmt.Sprintf(`performance.getEntriesByType('resource').filter(e => e.name.endsWith(%q)).length`, ruta)
	antes := evaluar[int](p, recibidas)
	return func() {
		t.Helper()
		var pausada fetch.EventRequestPaused
		select {
		case pausada = <-primera:
		case <-time.After(10 * time.Second):
			t.Fatal("the detail's reload did not leave the page within 10 s")
		}
		if _, err := chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: pausada.RequestID}); err != nil {
			t.Fatalf("let the detail's reload through: %v", err)
		}
		if _, err := chromedp.Call(ctx, fetch.Disable, cdp.Empty{}); err != nil {
			t.Fatalf("stop intercepting: %v", err)
		}
		p.esperar("the reload's answer", fmt.Sprintf(`%s > %d`, recibidas, antes), 10*time.Second)
		evaluar[bool](p, `new Promise(r => setTimeout(() => setTimeout(() => r(true))))`, chromedp.EvalAwaitPromise)
	}
}

// errores are the console messages that reveal a broken page: exceptions,
// console.error calls and refusals (such as a Content-Security-Policy
// violation). Failed requests are left out: the 401s are expected.
func (p *pagina) errores() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.consola {
		if (m.IsException() || m.Type == chromedp.ConsoleError) && m.Source != "network" {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
		}
	}
	return out
}

// diagnostico tells what the page showed when a step failed.
func (p *pagina) diagnostico() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	texto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		texto = "(page unreadable: " + err.Error() + ")"
	}
	if len(texto) > 3000 {
		texto = texto[:3000] + "…"
	}
	registro := "(no coordinator process)"
	if p.s != nil {
		registro = p.s.Log("coordinador")
	}
	return fmt.Sprintf("--- page ---\n%s\n--- console errors ---\n%s\n--- coordinator log ---\n%s",
		texto, strings.Join(p.errores(), "\n"), registro)
}

func (p *pagina) hacer(que string, pasos ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, pasos...); err != nil {
		p.t.Fatalf("%s: %v\n%s", que, err, p.diagnostico())
	}
}

// esperar waits until the JavaScript condition holds on the page.
func (p *pagina) esperar(que, condicion string, plazo time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, plazo+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](condicion,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(plazo)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\n%s", que, condicion, err, p.diagnostico())
	}
}

func evaluar[T any](p *pagina, js string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v\n%s", js, err, p.diagnostico())
	}
	return v
}

// captura saves what the viewport shows, or the whole page: under docs/ when
// SAGAS_CAPTURAS=1 (to refresh the pictures in docs/operations.md), else in a temp dir, so
// a test run leaves the work tree clean.
func (p *pagina) captura(archivo string, entera bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	imagen := chromedp.CaptureScreenshot()
	if entera {
		imagen = chromedp.FullScreenshot(100) // 100: PNG
	}
	png, err := chromedp.Run(ctx, imagen)
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", archivo, err)
	}
	ruta := filepath.Join(p.t.TempDir(), archivo)
	if os.Getenv("SAGAS_CAPTURAS") == "1" {
		ruta = filepath.Join("..", "..", "docs", archivo)
	}
	if err := os.MkdirAll(filepath.Dir(ruta), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(ruta, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// fila is a row of the list as a person reads it.
type fila struct {
	ID     string `json:"id"`
	Estado string `json:"estado"`
}

const leerFilas = `[...document.querySelectorAll('#filas tr')].map(tr => ({id: tr.dataset.id, estado: tr.querySelector('.estado').textContent}))`

func (p *pagina) filas() map[string]string {
	p.t.Helper()
	out := map[string]string{}
	for _, f := range evaluar[[]fila](p, leerFilas) {
		out[f.ID] = f.Estado
	}
	return out
}

// evento is one entry of the timeline.
type evento struct {
	Paso      string `json:"paso"`
	Resultado string `json:"resultado"`
	Texto     string `json:"texto"`
}

func (p *pagina) linea(fase string) []evento {
	p.t.Helper()
	return evaluar[[]evento](p, `[...document.querySelectorAll('#d-`+fase+` > li')].map(li => ({paso: li.dataset.paso, resultado: li.dataset.resultado, texto: li.innerText}))`)
}

func (p *pagina) sinDesbordeHorizontal(donde string) {
	p.t.Helper()
	medidas := evaluar[[]int](p, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if medidas[0] > medidas[1] {
		p.t.Errorf("%s at %d px: the page is %d px wide and scrolls sideways", donde, medidas[1], medidas[0])
	}
}

func pasos(es []evento) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Paso + ":" + e.Resultado
	}
	return out
}

// A person opens the inspector on a coordinator that requires a token, follows
// a saga whose compensation fails, retries it, finds a completed and a
// compensated saga in the list, filters and searches, reads the
// compensated saga's timeline, on a desktop and on a phone, and cancels a
// running saga after confirming.
func TestUnaPersonaInspeccionaSagasEnUnNavegadorReal(t *testing.T) {
	integracion.PulsarURL(t) // skip before building anything without a broker
	exe := chromium(t)
	inicio := time.Now()
	s := sistema.Arrancar(t, sistema.Opciones{Extra: map[string]string{"SAGAS_API_TOKEN": tokenAPI}})
	t.Logf("system ready in %s", time.Since(inicio).Round(time.Millisecond))

	// The two finished sagas run while the browser starts.
	completadaC := iniciar(t, s, "", true)
	compensadaC := iniciar(t, s, `,"simular_fallo":"tracking"`, true)
	p := abrirNavegador(t, exe, s)

	// Without a token the API refuses, and the page says so.
	p.hacer("open /inspector", chromedp.Navigate(s.API+"/inspector"))
	if url := evaluar[string](p, `location.pathname`); url != "/inspector/" {
		t.Errorf("/inspector led to %s, want /inspector/", url)
	}
	p.esperar("the 401 alert", `document.querySelector('#alerta:not([hidden])')?.dataset.codigo === '401'`, 10*time.Second)
	if alerta := evaluar[string](p, `document.getElementById('alerta').innerText`); !strings.Contains(alerta, "No autorizado (401)") {
		t.Errorf("the 401 alert reads %q", alerta)
	}
	p.hacer("type and save the token",
		chromedp.SendKeys(chromedp.ID("token"), tokenAPI),
		chromedp.Click(chromedp.CSS(`#form-token button[type=submit]`)))
	p.esperar("the list once the token is saved",
		`document.getElementById('alerta').hidden && !/Cargando|No se pudo/.test(document.getElementById('resumen-lista').textContent)`, 10*time.Second)

	// A saga whose compensation fails after its retries: the page follows it
	// live, without a reload, until it needs an operator.
	fallida := recibir(t, iniciar(t, s, `,"simular_fallo":"marca","simular_fallo_compensacion":"influencer"`, false)).ID
	filaFallida := fmt.Sprintf(`#filas tr[data-id=%q]`, fallida)
	p.hacer("refresh the list", chromedp.Click(chromedp.ID("actualizar")))
	p.esperar("the new saga in the list", fmt.Sprintf(`!!document.querySelector('%s')`, filaFallida), 10*time.Second)
	p.hacer("open it with the keyboard", chromedp.Focus(chromedp.CSS(filaFallida)), chromedp.KeyEvent(kb.Enter))
	p.esperar("its detail, live", fmt.Sprintf(`!document.getElementById('vista-detalle').hidden
		&& document.getElementById('d-id').textContent === %q
		&& !document.getElementById('d-vivo').hidden
		&& /^(Iniciada|En progreso|Compensando)$/.test(document.getElementById('d-estado').textContent)`, fallida), 10*time.Second)
	t.Logf("live detail first showed %q", evaluar[string](p, `document.getElementById('d-estado').textContent`))
	p.esperar("the failed compensation to appear without a reload", `document.getElementById('d-estado').textContent === 'Compensación fallida'
		&& document.getElementById('d-vivo').hidden && !document.getElementById('d-reintento').hidden
		&& !!document.querySelector('#d-compensacion li[data-paso="influencer"][data-resultado="FALLIDO"]')`, 40*time.Second)
	p.esperar("the change announced to screen readers", `document.getElementById('anuncio').textContent === 'La saga pasó a Compensación fallida.'`, 5*time.Second)

	// Retrying without the token shows the 401; with it the retry is accepted
	// and followed live again. Forgetting the token reloads the detail too,
	// and that reload's 401 races the retry's: the browser holds the reload
	// until the retry's 401 shows, then lets it through, so the reload's 401
	// comes last (the order a loaded machine gave at random).
	retenida := retenerRecarga(t, p, fallida)
	p.hacer("forget the token and retry", chromedp.Click(chromedp.ID("olvidar-token")), chromedp.Click(chromedp.ID("reintentar")))
	alertaReintento := `document.querySelector('#alerta:not([hidden])')?.dataset.codigo === '401'
		&& document.getElementById('alerta').dataset.origen === 'reintento' && document.activeElement.id === 'token'`
	p.esperar("the retry's 401", alertaReintento, 10*time.Second)
	retenida()
	p.esperar("the retry's 401, after the reload's", alertaReintento, 10*time.Second)
	p.hacer("save the token again and retry",
		chromedp.SendKeys(chromedp.ID("token"), tokenAPI), chromedp.KeyEvent(kb.Enter))
	p.esperar("the alert to go", `document.getElementById('alerta').hidden`, 10*time.Second)
	p.hacer("retry the compensation", chromedp.Click(chromedp.ID("reintentar")))
	p.esperar("the accepted retry, followed live", `/Reintento aceptado/.test(document.getElementById('d-mensaje').textContent)
		&& !document.getElementById('d-vivo').hidden && document.getElementById('d-estado').textContent === 'Compensando'`, 10*time.Second)

	// Escape goes back to the list, with the focus on the saga's row.
	p.hacer("go back with Escape", chromedp.KeyEvent(kb.Escape))
	p.esperar("the list, focus on the row", fmt.Sprintf(`!document.getElementById('vista-lista').hidden && document.activeElement.dataset.id === %q`, fallida), 10*time.Second)

	completada, compensada := recibir(t, completadaC), recibir(t, compensadaC)
	if completada.Estado != "COMPLETADA" || compensada.Estado != "COMPENSADA" ||
		!slices.Equal(compensada.Compensaciones, []string{"tracking", "marca", "influencer"}) {
		t.Fatalf("the API's own answers are wrong: %+v %+v", completada, compensada)
	}
	p.hacer("refresh the list", chromedp.Click(chromedp.ID("actualizar")))
	p.esperar("both finished sagas in the list", fmt.Sprintf(`(() => { const f = Object.fromEntries(%s.map(r => [r.id, r.estado]));
		return f[%q] === 'Completada' && f[%q] === 'Compensada'; })()`, leerFilas, completada.ID, compensada.ID), 10*time.Second)
	p.hacer("blur the row and move the mouse away", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 799))
	p.captura("inspector-lista.png", false)
	// Each row names its tipo and the definition version the saga runs on.
	if tipo := evaluar[string](p, fmt.Sprintf(`document.querySelector('#filas tr[data-id=%q] td[data-etiqueta="Tipo"]').innerText`, completada.ID)); !strings.Contains(tipo, "campana") || !strings.Contains(tipo, "versión 1") {
		t.Errorf("the list's Tipo cell reads %q, want the tipo and its definition version", tipo)
	}

	// Filter by estado: only compensated sagas remain, and the count button
	// of that state is pressed.
	p.hacer("filter COMPENSADA", chromedp.SetValue(chromedp.ID("f-estado"), "COMPENSADA"),
		chromedp.Click(chromedp.CSS(`#filtros button[type=submit]`)))
	p.esperar("only compensated sagas", fmt.Sprintf(`(() => { const f = %s;
		return f.length > 0 && f.every(r => r.estado === 'Compensada') && f.some(r => r.id === %q); })()`, leerFilas, compensada.ID), 10*time.Second)
	if f := p.filas(); f[completada.ID] != "" || f[fallida] != "" {
		t.Errorf("the COMPENSADA filter still lists %v", f)
	}
	if pulsado := evaluar[string](p, `document.querySelector('#conteos button[data-estado="COMPENSADA"]').getAttribute('aria-pressed')`); pulsado != "true" {
		t.Errorf("the Compensada count button is aria-pressed=%q", pulsado)
	}
	if q := evaluar[string](p, `location.search`); q != "?estado=COMPENSADA" {
		t.Errorf("the address keeps the filter as %q", q)
	}
	p.esperar("the result announced", `/^Mostrando \d+ de \d+ sagas? que cumplen? los filtros\.$/.test(document.getElementById('anuncio').textContent)`, 5*time.Second)
	// Search by the beginning of a saga id.
	p.hacer("search a saga id prefix", chromedp.SetValue(chromedp.ID("f-estado"), ""),
		chromedp.SetValue(chromedp.ID("f-busqueda"), completada.ID[:8]),
		chromedp.Click(chromedp.CSS(`#filtros button[type=submit]`)))
	p.esperar("the searched saga alone", fmt.Sprintf(`(() => { const f = %s; return f.length === 1 && f[0].id === %q; })()`, leerFilas, completada.ID), 10*time.Second)
	p.hacer("clear the filters", chromedp.Click(chromedp.CSS(`#filtros button[type=reset]`)))
	p.esperar("every saga again", fmt.Sprintf(`%s.length === 3`, leerFilas), 10*time.Second)

	// The compensated saga's timeline: the steps in order with tracking
	// failed, then the compensations newest first, tracking included.
	p.hacer("open the compensated saga", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#filas tr[data-id=%q]`, compensada.ID))))
	p.esperar("its detail", fmt.Sprintf(`document.getElementById('d-id').textContent === %q
		&& document.getElementById('d-estado').textContent === 'Compensada' && document.querySelectorAll('#d-compensacion > li').length === 3`, compensada.ID), 10*time.Second)
	if datos := evaluar[string](p, `document.getElementById('d-datos').innerText`); !strings.Contains(datos, "campana (versión 1)") {
		t.Errorf("the detail does not show the definition version: %q", datos)
	}
	ejecucion, compensacion := p.linea("ejecucion"), p.linea("compensacion")
	if got, want := pasos(ejecucion), []string{"influencer:COMPLETADO", "marca:COMPLETADO", "tracking:FALLIDO"}; !slices.Equal(got, want) {
		t.Errorf("execution timeline %v, want %v", got, want)
	}
	if got, want := pasos(compensacion), []string{"tracking:COMPENSADO", "marca:COMPENSADO", "influencer:COMPENSADO"}; !slices.Equal(got, want) {
		t.Errorf("compensation timeline %v, want %v", got, want)
	}
	for _, e := range append(ejecucion, compensacion...) {
		for _, debe := range []string{"Servicio", e.Paso, "Intento", "Inicio", "Fin", "Duración"} {
			if !strings.Contains(e.Texto, debe) {
				t.Errorf("timeline entry %s lacks %q:\n%s", e.Paso, debe, e.Texto)
			}
		}
	}
	if len(ejecucion) == 3 && !strings.Contains(ejecucion[2].Texto, "Falló") {
		t.Errorf("the failed step does not say it failed:\n%s", ejecucion[2].Texto)
	}
	if vivo := evaluar[bool](p, `document.getElementById('d-vivo').hidden`); !vivo {
		t.Error("a finished saga is still shown as live")
	}
	// The payloads are collapsed until opened.
	entrada := `#d-ejecucion li[data-paso="influencer"] details`
	p.hacer("open influencer's input", chromedp.Click(chromedp.CSS(entrada+` > summary`)))
	if js := evaluar[string](p, `(() => { const d = document.querySelector('`+entrada+`'); return d.open ? d.querySelector('pre').innerText : ''; })()`); !json.Valid([]byte(js)) || len(js) < 3 {
		t.Errorf("influencer's input did not open as JSON: %q", js)
	}
	p.hacer("close it", chromedp.Click(chromedp.CSS(entrada+` > summary`)), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 799))
	p.captura("inspector-compensada.png", false)

	// A phone: nothing scrolls sideways, neither the detail nor the list.
	p.hacer("a 375 px phone", chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile))
	p.esperar("the phone layout", `window.innerWidth === 375`, 5*time.Second)
	p.sinDesbordeHorizontal("the detail")
	p.hacer("back to the list", chromedp.Click(chromedp.ID("volver")))
	p.esperar("the list", fmt.Sprintf(`!document.getElementById('vista-lista').hidden && %s.length === 3`, leerFilas), 10*time.Second)
	p.sinDesbordeHorizontal("the list")
	p.hacer("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	p.captura("inspector-movil.png", true)

	// Durations read like speech and instants are in the person's zone.
	type formatos struct {
		Duraciones []string `json:"duraciones"`
		Fecha      string   `json:"fecha"`
		Zona       string   `json:"zona"`
		Pie        string   `json:"pie"`
	}
	f := evaluar[formatos](p, `import('./formato.js').then(m => ({
		duraciones: [0.35, 1.234, 42, 184, 3725].map(m.duracion),
		fecha: m.fecha('2025-03-01T12:00:00Z'), zona: m.ZONA,
		pie: document.getElementById('zona-horaria').textContent}))`, chromedp.EvalAwaitPromise)
	if want := []string{"350 ms", "1,2 s", "42 s", "3 min 4 s", "1 h 2 min"}; !slices.Equal(f.Duraciones, want) {
		t.Errorf("durations %v, want %v", f.Duraciones, want)
	}
	if f.Zona != zonaHoraria || !strings.Contains(f.Fecha, "7:00:00") || !strings.Contains(f.Pie, zonaHoraria) {
		t.Errorf("12:00 UTC in %s shows as %q (zone %q, footer %q), want 7:00:00", zonaHoraria, f.Fecha, f.Zona, f.Pie)
	}

	// A running saga is cancelled, after a confirmation that can be
	// declined. tracking is stopped, so the saga surely waits for it.
	s.Matar("tracking")
	enVuelo := recibir(t, iniciar(t, s, "", false)).ID
	p.hacer("a desktop again", chromedp.EmulateViewport(1280, 900))
	p.hacer("open the running saga", chromedp.Navigate(s.API+"/inspector/#saga="+enVuelo))
	p.esperar("its cancel button", fmt.Sprintf(`document.getElementById('d-id').textContent === %q
		&& !document.getElementById('d-cancelar').hidden && document.getElementById('d-confirmar').hidden`, enVuelo), 15*time.Second)
	p.hacer("ask to cancel", chromedp.Click(chromedp.ID("cancelar")))
	p.esperar("the confirmation, focus on «no»", `!document.getElementById('d-confirmar').hidden
		&& document.activeElement.id === 'desistir-cancelar' && document.getElementById('cancelar').getAttribute('aria-expanded') === 'true'
		&& /compensan todos los pasos/.test(document.getElementById('texto-confirmar').textContent)`, 5*time.Second)
	p.hacer("decline", chromedp.Click(chromedp.ID("desistir-cancelar")))
	p.esperar("no cancel sent", `document.getElementById('d-confirmar').hidden && document.activeElement.id === 'cancelar'
		&& /^(Iniciada|En progreso)$/.test(document.getElementById('d-estado').textContent)`, 5*time.Second)
	if code, b, err := s.GetCon(context.Background(), "/api/v1/sagas/"+enVuelo, "Authorization", "Bearer "+tokenAPI); err != nil || code != 200 || strings.Contains(string(b), `"cancelacion"`) {
		t.Fatalf("declining the confirmation cancelled the saga: %d %v %s", code, err, b)
	}
	p.hacer("ask again and confirm", chromedp.Click(chromedp.ID("cancelar")), chromedp.Click(chromedp.ID("confirmar-cancelar")))
	p.esperar("the accepted cancel, followed live", `/Cancelación aceptada/.test(document.getElementById('d-mensaje').textContent)
		&& document.getElementById('d-estado').textContent === 'Compensando' && document.getElementById('d-cancelar').hidden
		&& /Cancelada/.test(document.getElementById('d-datos').textContent)`, 10*time.Second)
	code, b, err := s.GetCon(context.Background(), "/api/v1/sagas/"+enVuelo, "Authorization", "Bearer "+tokenAPI)
	if err != nil || code != 200 || !strings.Contains(string(b), `"cancelacion"`) || !strings.Contains(string(b), `"estado":"COMPENSANDO"`) {
		t.Fatalf("the cancel did not reach the coordinator: %d %v %s", code, err, b)
	}

	if errs := p.errores(); len(errs) > 0 {
		t.Errorf("the page wrote errors to its console:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("browser test done in %s", time.Since(inicio).Round(time.Millisecond))
}
