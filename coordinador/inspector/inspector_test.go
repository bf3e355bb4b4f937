package inspector

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func servidor(t *testing.T) *echo.Echo {
	t.Helper()
	e := echo.New()
	Rutas(e)
	return e
}

func pedir(e *echo.Echo, ruta string, cabeceras ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, ruta, nil)
	for i := 0; i+1 < len(cabeceras); i += 2 {
		req.Header.Set(cabeceras[i], cabeceras[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func embebido(t *testing.T, nombre string) string {
	t.Helper()
	b, err := fs.ReadFile(web, "web/"+nombre)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCadaArchivoSeSirveConSuTipoDeContenidoYSusCabecerasDeSeguridad(t *testing.T) {
	e := servidor(t)
	for _, c := range []struct{ ruta, archivo, tipo string }{
		{"/inspector/", "index.html", "text/html; charset=utf-8"},
		{"/inspector/index.html", "index.html", "text/html; charset=utf-8"},
		{"/inspector/inspector.css", "inspector.css", "text/css; charset=utf-8"},
		{"/inspector/inspector.js", "inspector.js", "text/javascript; charset=utf-8"},
		{"/inspector/formato.js", "formato.js", "text/javascript; charset=utf-8"},
		{"/inspector/icono.svg", "icono.svg", "image/svg+xml"},
	} {
		t.Run(c.ruta, func(t *testing.T) {
			r := pedir(e, c.ruta)
			if r.Code != http.StatusOK {
				t.Fatalf("status %d", r.Code)
			}
			h := r.Header()
			if got := h.Get("Content-Type"); got != c.tipo {
				t.Errorf("Content-Type %q, want %q", got, c.tipo)
			}
			if r.Body.String() != embebido(t, c.archivo) {
				t.Error("body differs from the embedded file")
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
				t.Errorf("missing headers: %v", h)
			}
			csp := h.Get("Content-Security-Policy")
			for _, directiva := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, directiva) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, directiva)
				}
			}
		})
	}
}

func TestSinBarraFinalRedirigeALaPaginaConservandoLosFiltros(t *testing.T) {
	e := servidor(t)
	for ruta, destino := range map[string]string{
		"/inspector":                   "/inspector/",
		"/inspector?estado=COMPENSADA": "/inspector/?estado=COMPENSADA",
	} {
		r := pedir(e, ruta)
		if r.Code != http.StatusMovedPermanently || r.Header().Get("Location") != destino {
			t.Errorf("%s: %d Location %q, want 301 %q", ruta, r.Code, r.Header().Get("Location"), destino)
		}
	}
}

func TestLoQueNoEsUnArchivoDeLaPaginaEs404(t *testing.T) {
	e := servidor(t)
	for _, ruta := range []string{"/inspector/nada.js", "/inspector/web/index.html", "/inspector/../go.mod", "/inspector/%2e%2e/inspector.go", "/inspectorx"} {
		if r := pedir(e, ruta); r.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", ruta, r.Code)
		}
	}
}

func TestUnaCopiaVigenteSeRevalidaConSuETag(t *testing.T) {
	e := servidor(t)
	etag := pedir(e, "/inspector/inspector.js").Header().Get("ETag")
	if r := pedir(e, "/inspector/inspector.js", "If-None-Match", etag); r.Code != http.StatusNotModified || r.Body.Len() != 0 {
		t.Fatalf("status %d with %d bytes, want 304 without body", r.Code, r.Body.Len())
	}
	if r := pedir(e, "/inspector/inspector.js", "If-None-Match", `"otra"`); r.Code != http.StatusOK {
		t.Fatalf("status %d for a stale ETag, want 200", r.Code)
	}
}

func TestCadaArchivoEmbebidoTieneUnTipoConocido(t *testing.T) {
	todos, err := archivos()
	if err != nil {
		t.Fatal(err)
	}
	for nombre, a := range todos {
		if a.tipo == "application/octet-stream" {
			t.Errorf("%s has no media type in tiposContenido", nombre)
		}
	}
}

var (
	referencia  = regexp.MustCompile(`(?:src|href)\s*=\s*"([^"]*)"`)
	importacion = regexp.MustCompile(`(?m)^\s*(?:import\b[^'"]*|\}\s*from\s*)['"]([^'"]+)['"]`)
	urlExterna  = regexp.MustCompile(`(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
)

// The page must work offline: everything it loads is one of its own files.
func TestLaPaginaNoCargaNadaDeFuera(t *testing.T) {
	todos, err := archivos()
	if err != nil {
		t.Fatal(err)
	}
	indice := embebido(t, "index.html")
	refs := referencia.FindAllStringSubmatch(indice, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references only %v", refs)
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") {
			t.Errorf("index.html loads %q: only relative links to the page's own files are allowed", ref)
			continue
		}
		if _, ok := todos[ref]; !ok {
			t.Errorf("index.html loads %q, which is not embedded", ref)
		}
	}
	imports := importacion.FindAllStringSubmatch(embebido(t, "inspector.js"), -1)
	if len(imports) == 0 {
		t.Fatal("found no import in inspector.js: the check below would pass vacuously")
	}
	for _, m := range imports {
		if _, ok := todos[strings.TrimPrefix(m[1], "./")]; !strings.HasPrefix(m[1], "./") || !ok {
			t.Errorf("inspector.js imports %q: only the page's own modules are allowed", m[1])
		}
	}
	for nombre, a := range todos {
		texto := string(a.contenido)
		if nombre == "icono.svg" {
			texto = strings.ReplaceAll(texto, `xmlns="http://www.w3.org/2000/svg"`, "")
		}
		if u := urlExterna.FindString(texto); u != "" {
			t.Errorf("%s mentions the external address %q", nombre, u)
		}
		if strings.Contains(texto, "@import") || strings.Contains(texto, "url(") {
			t.Errorf("%s loads a stylesheet or resource by url", nombre)
		}
	}
}

// Accessibility basics a reviewer would check by hand: language, viewport,
// labelled fields, column headers with scope, a live region.
func TestElIndiceDeclaraLoQueNecesitaLaAccesibilidad(t *testing.T) {
	indice := embebido(t, "index.html")
	for _, debe := range []string{
		`<html lang="es">`, `name="viewport"`, `aria-live="polite"`, `role="alert"`, `role="search"`,
		`<th scope="col"`, `<label for="f-estado">`, `<label for="f-busqueda">`, `<label for="token">`,
		`<label for="f-desde">`, `<label for="f-hasta">`, `<label for="f-tipo">`, `Saltar al contenido`,
	} {
		if !strings.Contains(indice, debe) {
			t.Errorf("index.html lacks %s", debe)
		}
	}
	ids := regexp.MustCompile(`\bid="([^"]+)"`).FindAllStringSubmatch(indice, -1)
	for _, m := range regexp.MustCompile(`<label for="([^"]+)"`).FindAllStringSubmatch(indice, -1) {
		encontrado := false
		for _, id := range ids {
			encontrado = encontrado || id[1] == m[1]
		}
		if !encontrado {
			t.Errorf("label for=%q names no element", m[1])
		}
	}
}
