package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
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
		"EntradaSaga": func(b []byte) error {
			esquemas, err := CompilarEsquemas(catalogoConAviso(t))
			if err != nil {
				return err
			}
			var entrada any
			if err := json.Unmarshal(b, &entrada); err != nil {
				return err
			}
			return esquemas[tipoAviso].Validate(entrada)
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
		o.Catalogo = catalogoConAviso(t)
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
		{"/api/v1/sagas/" + tipoAviso, cuerpoAviso},
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
	hacer(http.MethodPost, "/api/v1/sagas/no-existe", cuerpoAviso)            // 404
	hacer(http.MethodPost, "/api/v1/sagas/"+saga.TipoCampana, cuerpoSemillas) // 404: no esquema_entrada
	for _, id := range []string{compensada, enCurso, fallida, uuid.NewString()} {
		hacer(http.MethodGet, "/saga/"+id+"/estado", "")
		hacer(http.MethodGet, "/api/v1/sagas/"+id, "")
	}
	hacer(http.MethodPost, "/api/v1/sagas/"+fallida+"/reintentar", "")    // 202
	hacer(http.MethodPost, "/api/v1/sagas/"+compensada+"/reintentar", "") // 409
	hacer(http.MethodPost, "/api/v1/sagas/"+uuid.NewString()+"/reintentar", "")
	hacer(http.MethodPost, "/api/v1/sagas/"+fallida+"/reintentar", "", "Authorization", "Bearer lec") // 403
	hacer(http.MethodPost, "/api/v1/sagas/"+enCurso+"/cancelar", "")                                  // 202
	hacer(http.MethodPost, "/api/v1/sagas/"+compensada+"/cancelar", "")                               // 409
	hacer(http.MethodPost, "/api/v1/sagas/"+uuid.NewString()+"/cancelar", "")
	hacer(http.MethodPost, "/api/v1/sagas/"+enCurso+"/cancelar", "", "Authorization", "Bearer lec") // 403
	for _, id := range []string{compensada, uuid.NewString()} {
		cancelada(http.MethodPost, "/api/v1/sagas/"+id+"/reintentar", "")
		cancelada(http.MethodPost, "/api/v1/sagas/"+id+"/cancelar", "")
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
	// Parked outbox rows: one row parked by hand, listed and sent again.
	aparcado := aparcarUno(t, en)
	hacer(http.MethodGet, "/api/v1/outbox/aparcados", "")          // 200
	hacer(http.MethodGet, "/api/v1/outbox/aparcados?limite=x", "") // 400
	hacer(http.MethodGet, "/api/v1/outbox/aparcados", "", "Authorization", "Bearer mal")
	cancelada(http.MethodGet, "/api/v1/outbox/aparcados", "")
	hacer(http.MethodPost, "/api/v1/outbox/aparcados/"+aparcado+"/reenviar", "", "Authorization", "Bearer lec") // 403
	hacer(http.MethodPost, "/api/v1/outbox/aparcados/"+aparcado+"/reenviar", "", "Authorization", "")           // 401
	cancelada(http.MethodPost, "/api/v1/outbox/aparcados/"+aparcado+"/reenviar", "")
	hacer(http.MethodPost, "/api/v1/outbox/aparcados/"+aparcado+"/reenviar", "") // 202
	hacer(http.MethodPost, "/api/v1/outbox/aparcados/"+aparcado+"/reenviar", "") // 404: no longer parked
	hacer(http.MethodPost, "/api/v1/sagas/x/cancelar", "", "Authorization", "")
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

// ausente is the walker's candidate "leave this property out".
type ausenteT struct{}

var ausente ausenteT

// sonda is one request of the constraint walk: a valid request with one
// parameter, header or body property changed.
type sonda struct {
	operacion string // "POST /campana-saga"
	donde     string // "query limite", "header Idempotency-Key", "path saga_id", "body marca.id_marca"
	campo     string // how the API names it in campos
	valor     any
	valida    bool     // by the document
	motivos   []string // the document's objections
	req       *http.Request
}

// Every documented constraint of every operation, walked from the document
// itself: for each parameter, header and body property, values at and just
// past each bound (minimum/maximum, minLength/maxLength, minItems/maxItems),
// every enum value and a value outside the enum, values around each pattern,
// wrong types, null and absence. The API must refuse (400 naming the field;
// 404 for a path id) exactly the requests the document says are invalid,
// accept the others, and answer only statuses the operation documents. A
// constraint added to the document is exercised without touching this test.
func TestCadaRestriccionDelDocumentoSeCumpleEnSuLimite(t *testing.T) {
	en := nuevoEntorno(t, conAviso(t))
	// A probe with ?esperar= has its saga end at once, so the wait is short;
	// the others leave theirs running (playing the steps is the slow part).
	var terminar bool
	en.iniciador.despues = func(id string) {
		if terminar {
			en.terminarYa(id, "", "")
		}
	}
	doc := documento(t)
	v := &validador{doc: doc}
	existente := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas).json(t)["id_saga"].(string)
	// Body properties whose valid values depend on another one, as the
	// document's descriptions say: the walk sets the other one first.
	contexto := map[string]map[string]any{
		"simular_fallo_compensacion": {"simular_fallo": "tracking"},
	}

	var sondas []sonda
	for _, op := range operaciones(doc) {
		metodo, plantilla, _ := strings.Cut(op, " ")
		operacion := mapa(mapa(doc["paths"])[plantilla])[strings.ToLower(metodo)].(map[string]any)
		ruta := strings.NewReplacer("{id_saga}", existente, "{saga_id}", existente, "{tipo}", tipoAviso).Replace(plantilla)
		var cuerpoBase any
		var esquemaCuerpo map[string]any
		if rb, ok := operacion["requestBody"].(map[string]any); ok {
			esquemaCuerpo = mapa(mapa(mapa(rb["content"])["application/json"])["schema"])
			resuelto := resolverTodo(t, v, esquemaCuerpo)
			cuerpoBase = copiar(resuelto["example"])
			if cuerpoBase == nil {
				t.Fatalf("%s: the request body schema has no example to start from", op)
			}
		}
		nueva := func(donde, campo string, valor any, query url.Values, cabecera http.Header, ruta string, cuerpo any) sonda {
			s := sonda{operacion: op, donde: donde, campo: campo, valor: valor}
			var body io.Reader
			if cuerpo != nil {
				b, err := json.Marshal(cuerpo)
				if err != nil {
					t.Fatal(err)
				}
				body = bytes.NewReader(b)
			}
			u := ruta
			if len(query) > 0 {
				u += "?" + query.Encode()
			}
			s.req = httptest.NewRequest(metodo, u, body)
			if cuerpo != nil {
				s.req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			}
			for k, vs := range cabecera {
				s.req.Header[k] = vs
			}
			return s
		}

		// Parameters: one at a time, the rest of the request valid.
		parametros, _ := operacion["parameters"].([]any)
		for _, p := range parametros {
			param := mapa(p)
			if ref, ok := param["$ref"].(string); ok {
				var err error
				if param, err = v.resolver(ref); err != nil {
					t.Fatal(err)
				}
			}
			nombre, en_ := param["name"].(string), param["in"].(string)
			esquema := resolverTodo(t, v, mapa(param["schema"]))
			for _, c := range candidatosTexto(esquema) {
				s := sonda{}
				switch en_ {
				case "query":
					s = nueva("query "+nombre, nombre, c, url.Values{nombre: {c}}, nil, ruta, cuerpoBase)
				case "header":
					s = nueva("header "+nombre, nombre, c, nil, http.Header{http.CanonicalHeaderKey(nombre): {c}}, ruta, cuerpoBase)
				case "path":
					s = nueva("path "+nombre, nombre, c, nil, nil, strings.Replace(plantilla, "{"+nombre+"}", url.PathEscape(c), 1), cuerpoBase)
				default:
					t.Fatalf("%s: parameter %s in %q, which the walk does not know", op, nombre, en_)
				}
				if c == "" && param["allowEmptyValue"] == true {
					s.valida = true
				} else {
					s.motivos = v.validar(esquema, valorDeTexto(esquema, c), nombre)
					s.valida = len(s.motivos) == 0
				}
				if en_ == "path" && s.valida {
					continue // a valid id of no saga is a 404 that says nothing about the pattern
				}
				sondas = append(sondas, s)
			}
		}

		// The body: every property, at every depth, one at a time.
		if esquemaCuerpo == nil {
			continue
		}
		var recorrer func(esquema map[string]any, base any, camino []any)
		recorrer = func(esquema map[string]any, base any, camino []any) {
			esquema = resolverTodo(t, v, esquema)
			if alternativas, ok := esquema["oneOf"].([]any); ok {
				// Each alternative from its own example, in place.
				for _, a := range alternativas {
					alt := resolverTodo(t, v, mapa(a))
					recorrer(alt, poner(base, camino, copiar(alt["example"])), camino)
				}
				return
			}
			if len(camino) > 0 {
				nombreCampo := nombreDeCamino(camino)
				punto := base
				for k, val := range contexto[nombreCampo] {
					punto = poner(punto, []any{k}, val)
				}
				for _, c := range candidatos(esquema, obtener(punto, camino)) {
					cuerpo := poner(punto, camino, c)
					s := nueva("body "+nombreCampo, nombreCampo, c, nil, nil, ruta, cuerpo)
					valorCuerpo, err := decodificarJSON(mustJSON(t, cuerpo))
					if err != nil {
						t.Fatal(err)
					}
					s.motivos = v.validar(esquemaCuerpo, valorCuerpo, "$")
					s.valida = len(s.motivos) == 0
					sondas = append(sondas, s)
				}
			}
			for nombre, sub := range mapa(esquema["properties"]) {
				hijo := append(append([]any{}, camino...), nombre)
				b := base
				if obtener(b, hijo) == nil {
					if ej := resolverTodo(t, v, mapa(sub))["example"]; ej != nil {
						b = poner(b, hijo, copiar(ej))
					}
				}
				recorrer(mapa(sub), b, hijo)
			}
			if items, ok := esquema["items"].(map[string]any); ok {
				if lista, _ := obtener(base, camino).([]any); len(lista) > 0 {
					recorrer(items, base, append(append([]any{}, camino...), 0))
				}
			}
		}
		recorrer(esquemaCuerpo, cuerpoBase, nil)
	}

	if len(sondas) < 200 {
		t.Fatalf("only %d probes: the walk misses the document's constraints", len(sondas))
	}
	aceptadas, rechazadas := 0, 0
	for _, s := range sondas {
		terminar = s.req.URL.Query().Has("esperar")
		r := en.enviar(s.req)
		metodo, plantilla, _ := strings.Cut(s.operacion, " ")
		if _, err := respuestaDocumentada(v, doc, plantilla, strings.ToLower(metodo), r.codigo); err != nil {
			t.Errorf("%s, %s = %s: %v", s.operacion, s.donde, resumir(s.valor), err)
		}
		rechazo := http.StatusBadRequest
		if strings.HasPrefix(s.donde, "path ") {
			rechazo = http.StatusNotFound
		}
		switch {
		case s.valida && r.codigo == rechazo:
			t.Errorf("%s, %s = %s: valid by the document, refused %d: %s", s.operacion, s.donde, resumir(s.valor), r.codigo, r.cuerpo)
		case !s.valida && r.codigo != rechazo:
			t.Errorf("%s, %s = %s: the document refuses it (%v), the API answered %d", s.operacion, s.donde, resumir(s.valor), s.motivos, r.codigo)
		case !s.valida && rechazo == http.StatusBadRequest && !nombraCampo(r.cuerpo, s.campo):
			t.Errorf("%s, %s = %s: refused without naming %s: %s", s.operacion, s.donde, resumir(s.valor), s.campo, r.cuerpo)
		case s.valida:
			aceptadas++
		default:
			rechazadas++
		}
	}
	if aceptadas == 0 || rechazadas == 0 {
		t.Fatalf("%d accepted and %d refused probes: the walk cannot tell the two apart", aceptadas, rechazadas)
	}
	t.Logf("%d probes: %d valid and accepted, %d invalid and refused", len(sondas), aceptadas, rechazadas)
}

// resolverTodo follows $ref until a schema without one.
func resolverTodo(t *testing.T, v *validador, e map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := e["$ref"].(string)
		if !ok {
			return e
		}
		var err error
		if e, err = v.resolver(ref); err != nil {
			t.Fatal(err)
		}
	}
}

// candidatosTexto are the values to try for a parameter (always text).
func candidatosTexto(e map[string]any) []string {
	var out []string
	for _, c := range candidatos(e, nil) {
		switch x := c.(type) {
		case string:
			out = append(out, x)
		case json.Number:
			out = append(out, string(x))
		}
	}
	return out
}

// valorDeTexto is a parameter's text as the JSON value its schema types.
func valorDeTexto(e map[string]any, texto string) any {
	if tipo := e["type"]; (tipo == "integer" || tipo == "number") && json.Valid([]byte(texto)) {
		if n, err := decodificarJSON([]byte(texto)); err == nil {
			if num, ok := n.(json.Number); ok {
				return num
			}
		}
	}
	return texto
}

// candidatos are the values to try for a property of schema e whose valid
// value in the base request is actual: its bounds and just past them, its
// enum and a value outside, values around its pattern and format, other
// types, null and absence. The document, not this list, says which are valid.
func candidatos(e map[string]any, actual any) []any {
	out := []any{ausente, nil, "x", json.Number("7"), true, map[string]any{}, []any{}}
	if actual != nil {
		out = append(out, actual)
	}
	if ej, ok := e["example"]; ok {
		out = append(out, copiar(ej))
	}
	enum, _ := e["enum"].([]any)
	for _, v := range enum {
		if v != nil {
			out = append(out, v, fmt.Sprint(v)+"x", "x"+fmt.Sprint(v))
		}
	}
	switch e["type"] {
	case "string":
		relleno := "a"
		if p, ok := e["pattern"].(string); ok {
			re := regexp.MustCompile(p)
			for _, c := range []string{"a", "A", "0", "x", "!"} {
				if re.MatchString(c) {
					relleno = c
					break
				}
			}
		}
		for _, k := range []string{"minLength", "maxLength"} {
			if n, ok := numero(e[k]); ok {
				for _, l := range []int{int(n) - 1, int(n), int(n) + 1} {
					if l >= 0 {
						out = append(out, strings.Repeat(relleno, l))
					}
				}
			}
		}
		out = append(out, "", " ", "\t", "\u00a0", "\u3000", "é", "a b", "-", "~", relleno, " "+relleno, relleno+" ")
		for _, base := range []any{actual, e["example"]} {
			if s, ok := base.(string); ok {
				out = append(out, s+",", s+" ", " "+s, s+"x", "x"+s, strings.ToLower(s))
			}
		}
		if e["format"] == "date-time" {
			out = append(out, "ayer", "2025-03-01", "2025-03-01 00:00:00")
		}
	case "integer", "number":
		paso := big.NewRat(1, 1000)
		if e["type"] == "integer" {
			paso = big.NewRat(1, 1)
		}
		for _, k := range []string{"minimum", "maximum"} {
			if n, ok := racional(e[k]); ok {
				for _, d := range []*big.Rat{new(big.Rat).Neg(paso), new(big.Rat), paso} {
					out = append(out, numeroJSON(new(big.Rat).Add(n, d)))
				}
			}
		}
		out = append(out, json.Number("1.5"), json.Number("1.0"), json.Number("0"), json.Number("-1"), "1")
	case "array":
		var elemento any = "x"
		if l, ok := actual.([]any); ok && len(l) > 0 {
			elemento = l[0]
		}
		for _, k := range []string{"minItems", "maxItems"} {
			if n, ok := numero(e[k]); ok {
				for _, l := range []int{int(n) - 1, int(n), int(n) + 1} {
					if l >= 0 {
						lista := make([]any, l)
						for i := range lista {
							lista[i] = copiar(elemento)
						}
						out = append(out, lista)
					}
				}
			}
		}
		out = append(out, []any{copiar(elemento), copiar(elemento)}, []any{nil})
	}
	// Once each: a value is one request whatever rule suggested it.
	vistos := map[string]bool{}
	unicos := out[:0]
	for _, c := range out {
		clave := resumir(c) + fmt.Sprintf("%T", c)
		if b, err := json.Marshal(c); err == nil {
			clave = string(b) + fmt.Sprintf("%T", c)
		}
		if !vistos[clave] {
			vistos[clave] = true
			unicos = append(unicos, c)
		}
	}
	return unicos
}

// numeroJSON writes r as a JSON number, exactly.
func numeroJSON(r *big.Rat) json.Number {
	if r.IsInt() {
		return json.Number(r.Num().String())
	}
	return json.Number(strings.TrimRight(r.FloatString(6), "0"))
}

// nombreDeCamino is a body path as the API names it: marca.id_marca,
// influencers[0].nombre.
func nombreDeCamino(camino []any) string {
	var b strings.Builder
	for _, p := range camino {
		switch x := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(x)
		case int:
			fmt.Fprintf(&b, "[%d]", x)
		}
	}
	return b.String()
}

var indiceDeLista = regexp.MustCompile(`\[\d+\]`)

// nombraCampo reports whether a 400 names campo, a property inside it, or
// the object or list that holds it (a repeated item is named at the
// repetition, an object with a wrong member at the member).
func nombraCampo(cuerpo []byte, campo string) bool {
	var e CuerpoError
	if json.Unmarshal(cuerpo, &e) != nil {
		return false
	}
	buscado := indiceDeLista.ReplaceAllString(campo, "")
	for _, c := range e.Campos {
		dado := indiceDeLista.ReplaceAllString(c.Campo, "")
		if dado == buscado || strings.HasPrefix(dado, buscado+".") || strings.HasPrefix(buscado, dado+".") {
			return true
		}
	}
	return false
}

// obtener reads the value at camino in v (nil when absent).
func obtener(v any, camino []any) any {
	for _, p := range camino {
		switch x := p.(type) {
		case string:
			v = mapa(v)[x]
		case int:
			l, _ := v.([]any)
			if x >= len(l) {
				return nil
			}
			v = l[x]
		}
	}
	return v
}

// poner returns a copy of v with valor at camino (ausente deletes it).
func poner(v any, camino []any, valor any) any {
	if len(camino) == 0 {
		return valor
	}
	v = copiar(v)
	switch x := camino[0].(type) {
	case string:
		m := mapa(v)
		if m == nil {
			m = map[string]any{}
		}
		hijo := poner(m[x], camino[1:], valor)
		if _, borrar := hijo.(ausenteT); borrar {
			delete(m, x)
		} else {
			m[x] = hijo
		}
		return m
	case int:
		l, _ := v.([]any)
		hijo := poner(l[x], camino[1:], valor)
		if _, borrar := hijo.(ausenteT); borrar {
			return append(l[:x:x], l[x+1:]...)
		}
		l[x] = hijo
		return l
	}
	return v
}

// copiar is a deep copy of a JSON value.
func copiar(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copiar(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = copiar(e)
		}
		return l
	}
	return v
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func resumir(v any) string {
	b, _ := json.Marshal(v)
	if _, ok := v.(ausenteT); ok {
		return "(absent)"
	}
	if len(b) > 60 {
		return fmt.Sprintf("%s… (%d bytes)", b[:60], len(b))
	}
	return string(b)
}

// The rules the document can only describe (one field against another,
// date ranges, the wait's bounds, a parameter one listing refuses), each at
// its edge, next to the description that states it: a rule changed on one
// side only fails here.
func TestReglasDescritasEnElDocumentoEnSuLimite(t *testing.T) {
	en := nuevoEntorno(t)
	en.iniciador.despues = func(id string) { en.terminarYa(id, "", "") }
	doc := documento(t)
	descripcion := func(camino ...string) string {
		var nodo any = doc
		for _, p := range camino {
			nodo = mapa(nodo)[p]
		}
		d, _ := mapa(nodo)["description"].(string)
		return d
	}
	parametro := func(n string) []string { return []string{"components", "parameters", n} }
	propiedad := func(esquema, p string) []string {
		return []string{"components", "schemas", esquema, "properties", p}
	}
	lanzamiento := func(cambios string) string { return con(t, cuerpoLanzamiento, cambios) }
	campana := func(cambios string) string { return con(t, cuerpoSemillas, cambios) }
	const t0 = "2025-03-01T00:00:00Z"
	casos := []struct {
		dice       []string // where the description is, and
		frase      string   // what it must say
		metodo     string
		url        string
		cuerpo     string
		campo      string // the field a 400 names; "" when accepted
		aceptacion int
	}{
		{parametro("desde"), "before hasta", http.MethodGet, "/api/v1/sagas?desde=" + t0 + "&hasta=" + t0, "", "hasta", 0},
		{parametro("desde"), "before hasta", http.MethodGet, "/api/v1/sagas?desde=2025-03-01T00:00:01Z&hasta=" + t0, "", "hasta", 0},
		{parametro("hasta"), "after desde", http.MethodGet, "/api/v1/sagas?desde=" + t0 + "&hasta=2025-03-01T00:00:00.000000001Z", "", "", http.StatusOK},
		{propiedad("SolicitudLanzamiento", "fecha_fin"), "strictly after fecha_inicio", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_inicio":"` + t0 + `","fecha_fin":"` + t0 + `"}`), "fecha_fin", 0},
		{propiedad("SolicitudLanzamiento", "fecha_fin"), "strictly after fecha_inicio", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_inicio":"` + t0 + `","fecha_fin":"2025-02-28T19:00:00.000000001-05:00"}`), "", http.StatusAccepted},
		{propiedad("SolicitudLanzamiento", "fecha_inicio"), "from 2000-01-01T00:00:00Z (inclusive)", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_inicio":"2000-01-01T00:00:00Z"}`), "", http.StatusAccepted},
		{propiedad("SolicitudLanzamiento", "fecha_inicio"), "offsets counted", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_inicio":"2000-01-01T00:00:00+01:00"}`), "fecha_inicio", 0},
		{propiedad("SolicitudLanzamiento", "fecha_inicio"), "from 2000-01-01T00:00:00Z", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_inicio":"1999-12-31T23:59:59.999999999Z"}`), "fecha_inicio", 0},
		{propiedad("SolicitudLanzamiento", "fecha_fin"), "before 2100-01-01T00:00:00Z", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_fin":"2099-12-31T23:59:59.999999999Z"}`), "", http.StatusAccepted},
		{propiedad("SolicitudLanzamiento", "fecha_fin"), "before 2100-01-01T00:00:00Z", http.MethodPost, rutaLanzamiento,
			lanzamiento(`{"fecha_fin":"2100-01-01T00:00:00Z"}`), "fecha_fin", 0},
		{propiedad("SolicitudCampana", "simular_fallo_compensacion"), "Needs simular_fallo", http.MethodPost, rutaCampana,
			campana(`{"simular_fallo_compensacion":"influencer"}`), "simular_fallo_compensacion", 0},
		{propiedad("SolicitudCampana", "simular_fallo_compensacion"), "must name it or an earlier step", http.MethodPost, rutaCampana,
			campana(`{"simular_fallo":"marca","simular_fallo_compensacion":"tracking"}`), "simular_fallo_compensacion", 0},
		{propiedad("SolicitudCampana", "simular_fallo_compensacion"), "must name it or an earlier step", http.MethodPost, rutaCampana,
			campana(`{"simular_fallo":"marca","simular_fallo_compensacion":"marca"}`), "", http.StatusAccepted},
		{propiedad("SolicitudCampana", "simular_fallo_compensacion"), "must name it or an earlier step", http.MethodPost, rutaCampana,
			campana(`{"simular_fallo":"marca","simular_fallo_compensacion":"influencer"}`), "", http.StatusAccepted},
		{parametro("esperar"), "at most 120s", http.MethodPost, rutaCampana + "?esperar=120s", cuerpoSemillas, "", http.StatusOK},
		{parametro("esperar"), "at most 120s", http.MethodPost, rutaCampana + "?esperar=2m0.000000001s", cuerpoSemillas, "esperar", 0},
		{parametro("esperar"), "greater than zero", http.MethodPost, rutaCampana + "?esperar=0s", cuerpoSemillas, "esperar", 0},
		{parametro("esperar"), "greater than zero", http.MethodPost, rutaLanzamiento + "?esperar=%2B0.0ms", cuerpoLanzamiento, "esperar", 0},
		{[]string{"paths", "/api/v1/sagas/activas", "get"}, "estado is not admitted", http.MethodGet, "/api/v1/sagas/activas?estado=INICIADA", "", "estado", 0},
	}
	for _, c := range casos {
		if d := descripcion(c.dice...); !strings.Contains(d, c.frase) {
			t.Errorf("the description at %v does not say %q: %q", c.dice, c.frase, d)
		}
		r := en.hacer(c.metodo, c.url, c.cuerpo)
		switch {
		case c.campo == "" && r.codigo != c.aceptacion:
			t.Errorf("%s %s %s: %d, want %d: %s", c.metodo, c.url, c.cuerpo, r.codigo, c.aceptacion, r.cuerpo)
		case c.campo != "" && (r.codigo != http.StatusBadRequest || !nombraCampo(r.cuerpo, c.campo)):
			t.Errorf("%s %s %s: %d, want 400 naming %s: %s", c.metodo, c.url, c.cuerpo, r.codigo, c.campo, r.cuerpo)
		}
	}
}

// A deployment serves the document that is true for it: the file as it is
// with a token and the default definitions; without a token, no security and
// no 401 or 403; with other definitions, their tipos and step names.
func TestCadaDespliegueSirveElDocumentoQueLoDescribe(t *testing.T) {
	servido := func(en *entorno) map[string]any {
		t.Helper()
		r := en.hacer(http.MethodGet, "/openapi.json", "", "Authorization", "")
		doc, err := decodificarJSON(r.cuerpo)
		if r.codigo != http.StatusOK || err != nil {
			t.Fatalf("/openapi.json: %d %v", r.codigo, err)
		}
		return doc.(map[string]any)
	}
	archivo := documento(t)
	for _, op := range operaciones(archivo) {
		metodo, ruta, _ := strings.Cut(op, " ")
		o := mapa(mapa(archivo["paths"])[ruta])[strings.ToLower(metodo)].(map[string]any)
		seguridad := fmt.Sprint(o["security"])
		respuestas := mapa(o["responses"])
		switch {
		case ruta == "/healthz" || ruta == "/readyz" || ruta == "/openapi.json":
			if seguridad != "[]" {
				t.Errorf("%s needs no token, the document says %s", op, seguridad)
			}
		case metodo == http.MethodPost:
			if seguridad != "[map[operador:[]]]" || respuestas["401"] == nil || respuestas["403"] == nil {
				t.Errorf("%s: the operator token only, 401 and 403 documented; the document says %s", op, seguridad)
			}
		default:
			if seguridad != "[map[operador:[]] map[lector:[]]]" || respuestas["401"] == nil || respuestas["403"] != nil {
				t.Errorf("%s: either token, 401 documented, no 403; the document says %s", op, seguridad)
			}
		}
	}
	esquemasSeg := mapa(mapa(archivo["components"])["securitySchemes"])
	if !strings.Contains(fmt.Sprint(esquemasSeg["operador"]), "SAGAS_API_TOKEN") || !strings.Contains(fmt.Sprint(esquemasSeg["lector"]), "SAGAS_API_READ_TOKEN") ||
		!strings.Contains(fmt.Sprint(esquemasSeg["operador"]), "only when SAGAS_API_TOKEN is set") {
		t.Errorf("the security schemes must name their variables and say when a token is needed: %v", esquemasSeg)
	}

	conToken := nuevoEntorno(t, func(o *Opciones) { o.Token, o.TokenLectura = "op", "lec" })
	if r := conToken.hacer(http.MethodGet, "/openapi.json", ""); string(r.cuerpo) != string(esquemas.OpenAPI()) {
		t.Fatal("with a token and the default definitions the file is served as it is")
	}

	sinToken := nuevoEntorno(t)
	doc := servido(sinToken)
	if fmt.Sprint(doc["security"]) != "[]" || mapa(doc["components"])["securitySchemes"] != nil {
		t.Errorf("without a token the served document still asks for one: %v", doc["security"])
	}
	for _, op := range operaciones(doc) {
		metodo, ruta, _ := strings.Cut(op, " ")
		o := mapa(mapa(doc["paths"])[ruta])[strings.ToLower(metodo)].(map[string]any)
		if o["security"] != nil || mapa(o["responses"])["401"] != nil || mapa(o["responses"])["403"] != nil {
			t.Errorf("without a token %s still documents a token: %v %v", op, o["security"], o["responses"])
		}
	}
	if r := sinToken.hacer(http.MethodGet, "/api/v1/sagas", "", "Authorization", ""); r.codigo != http.StatusOK {
		t.Errorf("without a token the API must answer without one: %d", r.codigo)
	}

	catalogo := saga.CatalogoPorDefecto()
	otra := *saga.Campana()
	otra.Tipo = "campana-corta"
	otra.Pasos = otra.Pasos[:2]
	catalogo[otra.Tipo] = &otra
	catalogo[saga.TipoCampana] = &otra
	propio := nuevoEntorno(t, func(o *Opciones) { o.Token, o.Catalogo = "op", catalogo })
	doc = servido(propio)
	componentes := mapa(doc["components"])
	if got := fmt.Sprint(mapa(mapa(mapa(componentes["parameters"])["tipo"])["schema"])["enum"]); got != "[campana campana-corta lanzar-campania-completa]" {
		t.Errorf("the served tipos are not the catalogue's: %s", got)
	}
	if got := fmt.Sprint(mapa(mapa(mapa(componentes["schemas"])["SolicitudCampana"])["properties"])["simular_fallo"].(map[string]any)["enum"]); got != "[influencer marca <nil>]" {
		t.Errorf("the served step names are not the catalogue's: %s", got)
	}
	if doc["security"] == nil {
		t.Error("a deployment with a token serves its security")
	}
}
