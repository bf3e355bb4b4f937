package e2e

import (
	"cmp"
	"context"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// capturarTraza draws a trace as Jaeger's query API returned it (one row
// per span, indented under its parent, a bar over the trace's time line) and
// saves a screenshot to docs/traza-jaeger.png with chromium. The Jaeger built
// from the Go module has no UI assets (its UI is a JavaScript build of its
// own), so the picture is drawn here from the same data.
func capturarTraza(t *testing.T, tr trazaJaeger) {
	t.Helper()
	ruta := cmp.Or(os.Getenv("SAGAS_TEST_CHROMIUM"), "/usr/bin/chromium")
	if _, err := os.Stat(ruta); err != nil {
		t.Fatalf("SAGAS_CAPTURAS=1 needs chromium at %s: %v", ruta, err)
	}
	padre := map[string]string{}
	for _, s := range tr.Spans {
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				padre[s.SpanID] = r.SpanID
			}
		}
	}
	profundidad := func(id string) int {
		n := 0
		for p, ok := padre[id]; ok && n < 50; p, ok = padre[p] {
			n++
		}
		return n
	}
	spans := slices.Clone(tr.Spans)
	slices.SortFunc(spans, func(a, b spanJaeger) int { return cmp.Compare(a.StartTime, b.StartTime) })
	inicio, fin := spans[0].StartTime, spans[0].StartTime
	for _, s := range spans {
		fin = max(fin, s.StartTime+s.Duration)
	}
	total := float64(max(fin-inicio, 1))
	colores := map[string]string{"coordinador": "#4e79a7", "afiliados": "#f28e2b", "comisiones": "#59a14f",
		"tracking": "#e15759", "notificaciones": "#b07aa1", "influencer": "#76b7b2", "marca": "#edc948"}
	var b strings.Builder
	fmt.Fprintf(&b, `<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:16px;margin:0 0 4px} p{margin:0 0 12px;color:#555}
.f{display:flex;align-items:center;height:22px;border-bottom:1px solid #eee}
.n{width:380px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.s{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.l{position:relative;flex:1;height:14px}
.b{position:absolute;height:14px;border-radius:2px;min-width:2px}
.d{position:absolute;font-size:11px;color:#444;white-space:nowrap}
</style></head><body><h1>Trace %s: one lanzar-campania-completa saga</h1>
<p>%d spans from %d processes, %.1f ms end to end, as Jaeger's query API returns it (<code>GET /api/traces/%s</code>)</p>`,
		tr.TraceID, len(spans), len(tr.Processes), total/1000, tr.TraceID)
	for _, s := range spans {
		svc := tr.Processes[s.ProcessID].ServiceName
		color := cmp.Or(colores[svc], "#999")
		izq, ancho := float64(s.StartTime-inicio)/total*100, float64(s.Duration)/total*100
		fmt.Fprintf(&b, `<div class="f"><div class="n" style="padding-left:%dpx"><span class="s" style="background:%s"></span><b>%s</b> %s</div>`+
			`<div class="l"><div class="b" style="left:%.2f%%;width:%.2f%%;background:%s"></div><div class="d" style="left:calc(%.2f%% + 4px)">%.2f ms</div></div></div>`,
			profundidad(s.SpanID)*14, color, html.EscapeString(svc), html.EscapeString(s.OperationName),
			izq, ancho, color, min(izq+ancho, 92), float64(s.Duration)/1000)
	}
	b.WriteString("</body></html>")
	pagina := filepath.Join(t.TempDir(), "traza.html")
	if err := os.WriteFile(pagina, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ruta), chromedp.NoSandbox, chromedp.WindowSize(1200, 200))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("file://"+pagina)); err != nil {
		t.Fatalf("open the trace's page: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of the trace: %v", err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "traza-jaeger.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
