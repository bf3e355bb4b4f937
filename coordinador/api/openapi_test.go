package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

var parametroEcho = regexp.MustCompile(`:([A-Za-z_]+)`)

func documento(t *testing.T) map[string]any {
	t.Helper()
	doc, err := decodificarJSON(esquemas.OpenAPI())
	if err != nil {
		t.Fatalf("esquemas/openapi.json is not JSON: %v", err)
	}
	return doc.(map[string]any)
}

// operaciones lists "METHOD /path" of the document's paths.
func operaciones(doc map[string]any) []string {
	var out []string
	for ruta, item := range doc["paths"].(map[string]any) {
		for metodo := range item.(map[string]any) {
			if metodo == "parameters" {
				continue
			}
			out = append(out, strings.ToUpper(metodo)+" "+ruta)
		}
	}
	sort.Strings(out)
	return out
}

func TestCadaRutaDelDocumentoExisteEnElRouterYAlReves(t *testing.T) {
	en := nuevoEntorno(t)
	var router []string
	for _, r := range en.e.Routes() {
		if r.Path == "/metrics" || strings.HasPrefix(r.Path, "/inspector") {
			continue // Prometheus' text format and the inspector's page, not part of the document
		}
		router = append(router, r.Method+" "+parametroEcho.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(router)
	if doc := operaciones(documento(t)); !slices.Equal(doc, router) {
		t.Fatalf("document and router differ:\ndocument: %v\nrouter:   %v", doc, router)
	}
}

func TestElDocumentoSeSirveEnOpenapiJSON(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Token = "x" })
	r := en.hacer(http.MethodGet, "/openapi.json", "", "Authorization", "")
	if r.codigo != http.StatusOK || !strings.HasPrefix(r.cabecera.Get("Content-Type"), "application/json") ||
		string(r.cuerpo) != string(esquemas.OpenAPI()) {
		t.Fatalf("%d %v", r.codigo, r.cabecera)
	}
	doc := documento(t)
	if doc["openapi"] != "3.0.3" || !strings.Contains(doc["info"].(map[string]any)["description"].(string), "Unknown fields are rejected") {
		t.Fatal("the document must be OpenAPI 3.0 and state the unknown-fields policy")
	}
}

// Every schema of the document uses only rules the validator checks, and
// the request examples are accepted by the API's own decoding.
func TestEsquemasYEjemplosDelDocumento(t *testing.T) {
	doc := documento(t)
	v := &validador{doc: doc}
	esquemasDoc := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for nombre, e := range esquemasDoc {
		var recorrer func(e map[string]any, ruta string)
		recorrer = func(e map[string]any, ruta string) {
			for k, sub := range e {
				switch {
				case !palabrasConocidas[k]:
					t.Errorf("%s uses %q, which the validator does not check", ruta, k)
				case k == "properties":
					for p, s := range sub.(map[string]any) {
						recorrer(s.(map[string]any), ruta+"."+p)
					}
				case k == "items" || k == "additionalProperties":
					if m, ok := sub.(map[string]any); ok {
						recorrer(m, ruta+"."+k)
					}
				case k == "oneOf":
					for i, a := range sub.([]any) {
						recorrer(a.(map[string]any), fmt.Sprintf("%s.oneOf[%d]", ruta, i))
					}
				}
			}
		}
		recorrer(e.(map[string]any), nombre)
	}
	pasos := nombresPasos(saga.CatalogoPorDefecto())
	for nombre, decodificarCon := range map[string]func([]byte) error{
		"SolicitudCampana": func(b []byte) error {
			_, err := decodificarCampana(b, pasos[saga.TipoCampana], &campos{})
			return err
		},
		"SolicitudLanzamiento": func(b []byte) error {
			_, err := decodificarLanzamiento(b, pasos[saga.TipoLanzarCampaniaCompleta], &campos{})
			return err
		},
	} {
		esquema := esquemasDoc[nombre].(map[string]any)
		ejemplo, err := json.Marshal(esquema["example"])
		if err != nil {
			t.Fatal(err)
		}
		valor, _ := decodificarJSON(ejemplo)
		if errs := v.validar(esquema, valor, nombre); len(errs) > 0 {
			t.Errorf("the example of %s breaks its schema: %v", nombre, errs)
		}
		if err := decodificarCon(ejemplo); err != nil {
			t.Errorf("the API refuses the example of %s: %v", nombre, err)
		}
	}
}

// observacion is one answer with the route template that produced it.
type observacion struct {
	operacion string // "METHOD /path/{param}"
	codigo    int
	cuerpo    []byte
}

// Real answers of every route validate against the document, and every
// documented answer but 500 was seen.
func TestLasRespuestasRealesCumplenElDocumento(t *testing.T) {
	var dbCaida atomic.Bool
	en := nuevoEntorno(t, func(o *Opciones) {
		o.Token, o.TokenLectura = "tok", "lec"
		o.BaseDatos = func(ctx context.Context) error {
			if dbCaida.Load() {
				return errors.New("caída")
			}
			return nil
		}
	})
	var vistas []observacion
	observar := func(metodo, url string, r respuesta) respuesta {
		// The route template, as echo's router finds it.
		req := httptest.NewRequest(metodo, url, nil)
		c := en.e.NewContext(req, httptest.NewRecorder())
		en.e.Router().Find(metodo, echo.GetPath(req), c)
		vistas = append(vistas, observacion{metodo + " " + parametroEcho.ReplaceAllString(c.Path(), "{$1}"), r.codigo, r.cuerpo})
		return r
	}
	hacer := func(metodo, url, cuerpo string, cabeceras ...string) respuesta {
		t.Helper()
		return observar(metodo, url, en.hacer(metodo, url, cuerpo, cabeceras...))
	}
	// cancelada is a request whose caller went away: the store answers
	// with the context's error, which is the API's 503.
	cancelada := func(metodo, url, cuerpo string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, metodo, url, strings.NewReader(cuerpo))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set(echo.HeaderAuthorization, "Bearer tok")
		if r := observar(metodo, url, en.enviar(req)); r.codigo != http.StatusServiceUnavailable {
			t.Errorf("%s %s with its context cancelled: %d, want 503: %s", metodo, url, r.codigo, r.cuerpo)
		}
	}

	// Every route, with the statuses it documents.
	_, compensada, enCurso, _ := sembrar(t, en)
	fallida := hacer(http.MethodPost, "/campana-saga", con(t, cuerpoSemillas, `{"simular_fallo":"marca","simular_fallo_compensacion":"influencer"}`)).json(t)["id_saga"].(string)
	en.terminarYa(fallida, "marca", "influencer")
	en.iniciador.despues = func(id string) { en.terminarYa(id, "", "") }
	for _, post := range []struct{ ruta, cuerpo string }{
		{"/campana-saga", cuerpoSemillas},
		{"/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento},
	} {
		hacer(http.MethodPost, post.ruta+"?esperar=5s", post.cuerpo)                                              // 200
		hacer(http.MethodPost, post.ruta, post.cuerpo, "Idempotency-Key", post.ruta)                              // 202
		hacer(http.MethodPost, post.ruta, con(t, post.cuerpo, `{"nombre":"otra"}`), "Idempotency-Key", post.ruta) // 422
		hacer(http.MethodPost, post.ruta, `{"extra":1}`)                                                          // 400
		hacer(http.MethodPost, post.ruta, post.cuerpo, "Authorization", "")                                       // 401
		hacer(http.MethodPost, post.ruta, post.cuerpo, "Authorization", "Bearer lec")                             // 403
		en.iniciador.falla = fmt.Errorf("guardar saga: %w", context.DeadlineExceeded)
		hacer(http.MethodPost, post.ruta, post.cuerpo) // 503
		en.iniciador.falla = nil
		hacer(http.MethodPost, post.ruta, strings.Repeat(" ", LimiteCuerpoPorDefecto+1))
		hacer(http.MethodPost, post.ruta, post.cuerpo, "Content-Type", "text/plain") // 415
	}
	en.iniciador.despues = nil
	for _, id := range []string{compensada, enCurso, fallida, uuid.NewString()} {
		hacer(http.MethodGet, "/saga/"+id+"/estado", "")
		hacer(http.MethodGet, "/api/v1/sagas/"+id, "")
	}
	hacer(http.MethodPost, "/api/v1/sagas/"+fallida+"/reintentar", "")    // 202
	hacer(http.MethodPost, "/api/v1/sagas/"+compensada+"/reintentar", "") // 409
	hacer(http.MethodPost, "/api/v1/sagas/"+uuid.NewString()+"/reintentar", "")
	hacer(http.MethodPost, "/api/v1/sagas/"+fallida+"/reintentar", "", "Authorization", "Bearer lec") // 403
	for _, id := range []string{compensada, uuid.NewString()} {
		cancelada(http.MethodPost, "/api/v1/sagas/"+id+"/reintentar", "")
		cancelada(http.MethodGet, "/saga/"+id+"/estado", "")
		cancelada(http.MethodGet, "/api/v1/sagas/"+id, "")
	}
	for _, url := range []string{"/api/v1/sagas", "/api/v1/sagas/activas", "/api/v1/campanias"} {
		cancelada(http.MethodGet, url, "")
		hacer(http.MethodGet, url, "", "Authorization", "Bearer lec") // the read-only token reads
	}
	for _, url := range []string{"/api/v1/sagas", "/api/v1/sagas?estado=COMPENSADA&limite=2", "/api/v1/sagas?limite=x", "/api/v1/sagas/activas",
		"/api/v1/sagas/activas?estado=INICIADA", "/api/v1/campanias", "/api/v1/campanias?limite=0", "/healthz", "/readyz", "/openapi.json"} {
		hacer(http.MethodGet, url, "")
	}
	for _, url := range []string{"/saga/x/estado", "/api/v1/sagas", "/api/v1/sagas/activas", "/api/v1/sagas/x", "/api/v1/campanias"} {
		hacer(http.MethodGet, url, "", "Authorization", "Bearer mal")
	}
	hacer(http.MethodPost, "/api/v1/sagas/x/reintentar", "", "Authorization", "")
	dbCaida.Store(true)
	hacer(http.MethodGet, "/readyz", "")

	doc := documento(t)
	v := &validador{doc: doc}
	vistos := map[string]bool{}
	for _, o := range vistas {
		metodo, path, _ := strings.Cut(o.operacion, " ")
		resp, err := respuestaDocumentada(v, doc, path, strings.ToLower(metodo), o.codigo)
		if err != nil {
			t.Errorf("%s answered %d: %v", o.operacion, o.codigo, err)
			continue
		}
		valor, err := decodificarJSON(o.cuerpo)
		if err != nil {
			t.Errorf("%s %d: body is not JSON: %s", o.operacion, o.codigo, o.cuerpo)
			continue
		}
		if errs := v.validar(resp, valor, "$"); len(errs) > 0 {
			t.Errorf("%s %d does not match the document: %v\n%s", o.operacion, o.codigo, errs, o.cuerpo)
		}
		vistos[o.operacion+" "+strconv.Itoa(o.codigo)] = true
	}
	for _, op := range operaciones(doc) {
		metodo, path, _ := strings.Cut(op, " ")
		respuestas := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(metodo)].(map[string]any)["responses"].(map[string]any)
		for codigo := range respuestas {
			if codigo != "500" && !vistos[op+" "+codigo] {
				t.Errorf("documented answer %s %s was never produced by the test", op, codigo)
			}
		}
	}
}

// respuestaDocumentada finds the JSON schema of an answer in the document.
func respuestaDocumentada(v *validador, doc map[string]any, path, metodo string, codigo int) (map[string]any, error) {
	item, ok := doc["paths"].(map[string]any)[path].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("path %s not documented", path)
	}
	op, ok := item[metodo].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("method %s of %s not documented", metodo, path)
	}
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(codigo)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("status %d not documented", codigo)
	}
	if ref, ok := resp["$ref"].(string); ok {
		var err error
		if resp, err = v.resolver(ref); err != nil {
			return nil, err
		}
	}
	esquema, ok := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("status %d has no application/json schema", codigo)
	}
	return esquema, nil
}
