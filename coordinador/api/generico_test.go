package api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
)

// tipoAviso is the example flow that exists only as a JSON definition.
const tipoAviso = "aviso-marca"

const cuerpoAviso = `{"nombre":"Aviso de verano","presupuesto":1200,"marca":{"id_marca":"m-001","nombre_marca":"Andes Outdoor"}}`

// catalogoConAviso is the default catalogue plus
// ejemplos/definiciones/aviso-marca.json, which carries an input schema.
func catalogoConAviso(t *testing.T) saga.Catalogo {
	t.Helper()
	b, err := os.ReadFile("../../ejemplos/definiciones/aviso-marca.json")
	if err != nil {
		t.Fatal(err)
	}
	c := saga.CatalogoPorDefecto()
	if err := c.CargarDirectorio(fstest.MapFS{"aviso-marca.json": {Data: b}}); err != nil {
		t.Fatal(err)
	}
	return c
}

func conAviso(t *testing.T) func(*Opciones) {
	return func(o *Opciones) { o.Catalogo = catalogoConAviso(t) }
}

func TestUnTipoDefinidoSoloEnJSONSeIniciaPorLaRutaGenerica(t *testing.T) {
	en := nuevoEntorno(t, conAviso(t))
	r := en.hacer(http.MethodPost, "/api/v1/sagas/"+tipoAviso, "{\n  \"nombre\": \"Aviso de verano\", \"campania_id\": \"c-9\",\n  \"marca\": {\"nombre_marca\": \"Andes Outdoor\", \"id_marca\": \"m-001\"}}")
	if r.codigo != http.StatusAccepted {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
	cuerpo := r.json(t)
	id := cuerpo["id_saga"].(string)
	if cuerpo["tipo"] != tipoAviso || cuerpo["paso_actual"] != "marca" || cuerpo["campania_id"] != "c-9" ||
		r.cabecera.Get("Location") != "/saga/"+id+"/estado" {
		t.Fatalf("%v %v", cuerpo, r.cabecera)
	}
	s, err := en.store.Saga(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var datos map[string]any
	if err := json.Unmarshal(s.Datos, &datos); err != nil || datos["nombre"] != "Aviso de verano" || s.Tipo != tipoAviso ||
		s.VersionDefinicion != 1 || s.CampaniaID != "c-9" || len(s.Pasos) != 2 {
		t.Fatalf("stored saga: %+v (%s)", s, s.Datos)
	}
	if fin := en.terminarYa(id, "", ""); fin.Estado != saga.Completada {
		t.Fatalf("saga ended %s", fin.Estado)
	}
	detalle := en.hacer(http.MethodGet, "/api/v1/sagas/"+id, "").json(t)
	if detalle["version_definicion"] != float64(1) || detalle["tipo"] != tipoAviso {
		t.Fatalf("detail: %v", detalle)
	}
}

func TestLaEntradaSeValidaContraElEsquemaDeLaDefinicion(t *testing.T) {
	en := nuevoEntorno(t, conAviso(t))
	antes := en.sagas()
	casos := []struct {
		cuerpo string
		campos map[string]string // field → a part of its error
	}{
		{`{"nombre":"x","marca":{"id_marca":"m"}}`, map[string]string{"marca.nombre_marca": "es obligatorio"}},
		{`{"marca":{"id_marca":"m","nombre_marca":"n"}}`, map[string]string{"nombre": "es obligatorio"}},
		{`{"nombre":"x","marca":{"id_marca":"m","nombre_marca":"n"},"extra":1}`, map[string]string{"extra": "campo desconocido"}},
		{`{"nombre":"x","marca":{"id_marca":"m","nombre_marca":"n","otro":true}}`, map[string]string{"marca.otro": "campo desconocido"}},
		{`{"nombre":"","presupuesto":0,"marca":{"id_marca":7,"nombre_marca":"n"}}`,
			map[string]string{"nombre": "minLength", "presupuesto": "0", "marca.id_marca": "string"}},
		{`{"nombre":"x","marca":{"id_marca":"m","nombre_marca":"n"},"simular_fallo":"influencer"}`, map[string]string{"simular_fallo": "marca"}},
		{`{"nombre":"x","marca":{"id_marca":"m","nombre_marca":"n"},"campania_id":5}`, map[string]string{"campania_id": "texto"}},
	}
	for _, c := range casos {
		r := en.hacer(http.MethodPost, "/api/v1/sagas/"+tipoAviso, c.cuerpo)
		if r.codigo != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400: %s", c.cuerpo, r.codigo, r.cuerpo)
			continue
		}
		var ce CuerpoError
		if err := json.Unmarshal(r.cuerpo, &ce); err != nil {
			t.Fatal(err)
		}
		for campo, parte := range c.campos {
			encontrado := false
			for _, cp := range ce.Campos {
				if cp.Campo == campo && strings.Contains(cp.Error, parte) {
					encontrado = true
				}
			}
			if !encontrado {
				t.Errorf("%s: no field %q saying %q: %s", c.cuerpo, campo, parte, r.cuerpo)
			}
		}
	}
	for cuerpo, codigo := range map[string]int{`[1]`: http.StatusBadRequest, `{"nombre":`: http.StatusBadRequest, `{} {}`: http.StatusBadRequest} {
		if r := en.hacer(http.MethodPost, "/api/v1/sagas/"+tipoAviso, cuerpo); r.codigo != codigo {
			t.Errorf("%s: %d, want %d: %s", cuerpo, r.codigo, codigo, r.cuerpo)
		}
	}
	en.nadaCreado(antes)
}

func TestRutaGenericaTipoDesconocidoOSinEsquemaEs404(t *testing.T) {
	en := nuevoEntorno(t, conAviso(t))
	for ruta, dice := range map[string]string{
		"/api/v1/sagas/no-existe":                          "no hay definición",
		"/api/v1/sagas/" + saga.TipoCampana:                "no trae esquema_entrada",
		"/api/v1/sagas/" + saga.TipoLanzarCampaniaCompleta: "no trae esquema_entrada",
		"/api/v1/sagas/Mayus":                              "no es un nombre de tipo",
		"/api/v1/sagas/activas":                            "no hay definición",
	} {
		r := en.hacer(http.MethodPost, ruta, cuerpoAviso)
		if r.codigo != http.StatusNotFound || !strings.Contains(string(r.cuerpo), dice) {
			t.Errorf("%s: %d %s, want 404 saying %q", ruta, r.codigo, r.cuerpo, dice)
		}
	}
	// The seeds' routes and the saga reads are untouched by the new one.
	if r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas); r.codigo != http.StatusAccepted {
		t.Fatalf("/campana-saga: %d %s", r.codigo, r.cuerpo)
	}
	if r := en.hacer(http.MethodGet, "/api/v1/sagas/activas", ""); r.codigo != http.StatusOK {
		t.Fatalf("/api/v1/sagas/activas: %d %s", r.codigo, r.cuerpo)
	}
}

func TestRutaGenericaComoLasDemasRutasDeInicio(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Catalogo, o.Token, o.TokenLectura = catalogoConAviso(t), "op", "lec" })
	ruta := "/api/v1/sagas/" + tipoAviso
	if r := en.hacer(http.MethodPost, ruta, cuerpoAviso, "Authorization", ""); r.codigo != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.codigo)
	}
	if r := en.hacer(http.MethodPost, ruta, cuerpoAviso, "Authorization", "Bearer lec"); r.codigo != http.StatusForbidden {
		t.Errorf("with the read token: %d", r.codigo)
	}
	// Idempotency-Key: the same input, spaced and ordered otherwise, is the
	// same saga; another input under the key is 422; the key of another
	// route names another saga.
	primera := en.hacer(http.MethodPost, ruta, cuerpoAviso, "Idempotency-Key", "k1").json(t)["id_saga"]
	otraForma := `{ "marca": {"nombre_marca":"Andes Outdoor","id_marca":"m-001"}, "presupuesto": 1200.0, "nombre":"Aviso de verano" }`
	if r := en.hacer(http.MethodPost, ruta, otraForma, "Idempotency-Key", "k1"); r.codigo != http.StatusAccepted || r.json(t)["id_saga"] != primera {
		t.Errorf("retry: %d %s, want saga %v", r.codigo, r.cuerpo, primera)
	}
	if r := en.hacer(http.MethodPost, ruta, con(t, cuerpoAviso, `{"nombre":"otro"}`), "Idempotency-Key", "k1"); r.codigo != http.StatusUnprocessableEntity {
		t.Errorf("another input under the key: %d %s", r.codigo, r.cuerpo)
	}
	if r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Idempotency-Key", "k1"); r.codigo != http.StatusAccepted || r.json(t)["id_saga"] == primera {
		t.Errorf("the key on another route: %d %s", r.codigo, r.cuerpo)
	}
	// Size: a body past the API's limit is 413 before any validation.
	antes := en.sagas()
	enorme := `{"nombre":"` + strings.Repeat("a", LimiteCuerpoPorDefecto) + `"}`
	if r := en.hacer(http.MethodPost, ruta, enorme); r.codigo != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.cuerpo), "límite") {
		t.Errorf("oversized body: %d %s", r.codigo, r.cuerpo)
	}
	en.nadaCreado(antes)
}

// A schema that admits any object still cannot take an input past
// eventos.MaximoEntrada: 413 naming the limit, nothing stored.
func TestRutaGenericaRespetaElMaximoDeEntrada(t *testing.T) {
	c := catalogoConAviso(t)
	libre := *c[tipoAviso]
	libre.Tipo, libre.EsquemaEntrada = "libre", json.RawMessage(`{"type":"object"}`)
	c[libre.Tipo] = &libre
	en := nuevoEntorno(t, func(o *Opciones) { o.Catalogo = c })
	antes := en.sagas()
	grande := `{"relleno":"` + strings.Repeat("a", eventos.MaximoEntrada) + `"}`
	if r := en.hacer(http.MethodPost, "/api/v1/sagas/libre", grande); r.codigo != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.cuerpo), "eventos.MaximoEntrada") {
		t.Errorf("oversized input: %d %s", r.codigo, r.cuerpo)
	}
	en.nadaCreado(antes)
}

func TestUnEsquemaQueNoCompilaImpideArrancarNombrandoElTipo(t *testing.T) {
	c := catalogoConAviso(t)
	d := *c[tipoAviso]
	d.EsquemaEntrada = json.RawMessage(`{"type":"objeto"}`)
	c[tipoAviso] = &d
	if _, err := CompilarEsquemas(c); err == nil || !strings.Contains(err.Error(), "definición aviso-marca versión 1: esquema_entrada") {
		t.Fatalf("%v", err)
	}
	d.EsquemaEntrada = json.RawMessage(`{"$ref":"file:///etc/passwd"}`)
	if _, err := CompilarEsquemas(c); err == nil || !strings.Contains(err.Error(), "no se carga") {
		t.Fatalf("a $ref outside the definition must not load: %v", err)
	}
}

func TestNombreCampoComoLasDemasRutas(t *testing.T) {
	var entrada any
	json.Unmarshal([]byte(`{"influencers":[{"nombre":"a"},{"plataforma":"b"}],"marca":{"id_marca":"x"},"0":{"1":2}}`), &entrada)
	for _, c := range []struct {
		ubicacion []string
		want      string
	}{
		{nil, ""},
		{[]string{"marca", "id_marca"}, "marca.id_marca"},
		{[]string{"influencers", "1", "plataforma"}, "influencers[1].plataforma"},
		{[]string{"0", "1"}, "0.1"},
		{[]string{"influencers", "7", "x"}, "influencers[7].x"},
	} {
		if got := nombreCampo(entrada, c.ubicacion); got != c.want {
			t.Errorf("%v: %q, want %q", c.ubicacion, got, c.want)
		}
	}
}
