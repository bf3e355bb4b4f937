// Package inspector serves the saga inspector: one self-contained web page
// (plain HTML, CSS and JavaScript embedded in the binary; no framework, no
// CDN, so it works offline) where an operator lists sagas, follows one saga's
// step timeline live and retries a failed compensation. The page only talks
// to the coordinator's JSON API (/api/v1/sagas...), with the API's bearer
// token when one is configured; the page itself holds no data and needs none.
package inspector

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Ruta is where the page lives; Ruta without its trailing slash redirects here.
const Ruta = "/inspector/"

//go:embed web
var web embed.FS

// politicaContenido lets the page load only its own files and call only its
// own origin: an injected script or a stray CDN link would be refused by the
// browser, not just absent.
const politicaContenido = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// tiposContenido are the media types of the page's files, fixed here rather
// than taken from the host's mime.types, which varies between machines.
var tiposContenido = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// archivo is one embedded file, ready to serve.
type archivo struct {
	nombre, tipo, etag string
	contenido          []byte
}

// archivos returns the page's files by their path under Ruta ("" is the
// index). Every embedded file has a media type from tiposContenido.
func archivos() (map[string]archivo, error) {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		return nil, err
	}
	out := map[string]archivo{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		tipo, ok := tiposContenido[path.Ext(p)]
		if !ok {
			tipo = "application/octet-stream"
		}
		suma := sha256.Sum256(b)
		out[p] = archivo{nombre: p, tipo: tipo, etag: `"` + hex.EncodeToString(suma[:12]) + `"`, contenido: b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out[""] = out["index.html"]
	return out, nil
}

// Rutas registers the page on e: GET /inspector redirects to /inspector/,
// and GET /inspector/* serves the embedded files (anything else there is the
// API's usual 404). The routes need no token: the page is static and asks
// for the token before it calls the API.
func Rutas(e *echo.Echo) {
	todos, err := archivos()
	if err != nil {
		// The files are compiled in: failing to read them is a build defect
		// that the package's tests catch, not a runtime condition.
		panic("inspector: archivos embebidos ilegibles: " + err.Error())
	}
	e.GET(strings.TrimSuffix(Ruta, "/"), func(c echo.Context) error {
		destino := Ruta
		if q := c.Request().URL.RawQuery; q != "" {
			destino += "?" + q
		}
		return c.Redirect(http.StatusMovedPermanently, destino)
	})
	e.GET(Ruta+"*", func(c echo.Context) error {
		a, ok := todos[c.Param("*")]
		if !ok {
			return echo.ErrNotFound
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, a.tipo)
		h.Set("ETag", a.etag)
		// Revalidate every time (a 304 thanks to the ETag), so a new
		// coordinator version is never mixed with an old cached script.
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", politicaContenido)
		h.Set(echo.HeaderXContentTypeOptions, "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(c.Response(), c.Request(), a.nombre, time.Time{}, bytes.NewReader(a.contenido))
		return nil
	})
}
