package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
)

// FuzzDecodificarSolicitud feeds arbitrary bodies to both request decoders.
// It asserts that decoding never panics, that a refusal is a 400 in the
// API's error format, and that every accepted request is valid: it meets
// the documented rules (checked here independently of validar), validar
// finds nothing in it, and the saga input built from it decodes again to the
// same input.
func FuzzDecodificarSolicitud(f *testing.F) {
	for _, s := range []string{
		cuerpoSemillas,
		cuerpoLanzamiento,
		`{"nombre":"a","tipo":"b","presupuesto":1e9,"marca":{"id_marca":"m","nombre_marca":"n"},"influencers":[{"nombre":"x","plataforma":"y"}],"simular_fallo":"tracking","simular_fallo_compensacion":"influencer","campania_id":"c"}`,
		`{"nombre":"a","fecha_inicio":"2099-12-31T23:00:00-05:00","fecha_fin":"2099-12-31T23:30:00-05:00","presupuesto":0.01,"moneda":"USD","comision":{"tipo":"fijo","valor":5},"canales_notificacion":["whatsapp"],"criterios_afiliados":{}}`,
		`{"nombre":"a","fecha_inicio":"2000-01-01T00:00:00+01:00","fecha_fin":"2001-01-01T00:00:00Z","presupuesto":1,"moneda":"EUR","comision":{"tipo":"porcentaje","valor":100},"canales_notificacion":["sms"]}`,
		`{"presupuesto":"mucho","influencers":[{"nombre":1}],"marca":[],"extra":null}`,
		`{"nombre": `, `[]`, `null`, `{}`, `{"a":{"b":{"c":[[[[{}]]]]}}}`, `{"nombre":"\ud800"}`, `{"Nombre":"x"}`, "",
		`{"nombre":"a","nombre":"b"}`, `{"influencers":[null,{"nombre":null}]}`, `{"presupuesto":1e400}`, `{} trailing`,
	} {
		f.Add([]byte(s))
	}
	pasos := nombresPasos(saga.CatalogoPorDefecto())
	campana, lanzamiento := pasos[saga.TipoCampana], pasos[saga.TipoLanzarCampaniaCompleta]
	doc, err := decodificarJSON(esquemas.OpenAPI())
	if err != nil {
		f.Fatal(err)
	}
	v := &validador{doc: doc.(map[string]any)}
	f.Fuzz(func(t *testing.T, cuerpo []byte) {
		sc, err := decodificarCampana(cuerpo, campana, &campos{})
		if err != nil {
			comprobarRechazo(t, err)
		} else {
			comprobarCampana(t, sc, campana)
			cumpleElDocumento(t, v, "SolicitudCampana", cuerpo)
		}
		sl, err := decodificarLanzamiento(cuerpo, lanzamiento, &campos{})
		if err != nil {
			comprobarRechazo(t, err)
		} else {
			comprobarLanzamiento(t, sl, lanzamiento)
			cumpleElDocumento(t, v, "SolicitudLanzamiento", cuerpo)
		}
	})
}

// cumpleElDocumento fails when the API accepted a body that its schema in
// esquemas/openapi.json refuses.
func cumpleElDocumento(t *testing.T, v *validador, esquema string, cuerpo []byte) {
	t.Helper()
	valor, err := decodificarJSON(cuerpo)
	if err != nil {
		t.Fatalf("accepted a body that is not JSON: %v", err)
	}
	if errs := v.validar(map[string]any{"$ref": "#/components/schemas/" + esquema}, valor, "$"); len(errs) > 0 {
		t.Fatalf("accepted a body the document refuses: %v\n%s", errs, cuerpo)
	}
}

func comprobarRechazo(t *testing.T, err error) {
	t.Helper()
	var es *errorSolicitud
	if !errors.As(err, &es) || es.codigo != http.StatusBadRequest || es.mensaje == "" {
		t.Fatalf("a refusal that is not a 400 of the error format: %v", err)
	}
	for _, c := range es.campos {
		if c.Error == "" {
			t.Fatalf("field %q refused without a reason", c.Campo)
		}
	}
}

func textoValido(s string, maximo int) bool {
	return strings.TrimSpace(s) != "" && utf8.RuneCountInString(s) <= maximo
}

func comprobarCampana(t *testing.T, s solicitudCampana, pasos []string) {
	t.Helper()
	ok := textoValido(s.Nombre, largoTexto) && textoValido(s.Tipo, largoTexto) &&
		utf8.RuneCountInString(s.CampaniaID) <= largoID &&
		s.Presupuesto > 0 && s.Presupuesto <= 1e9 &&
		s.Marca != nil && textoValido(s.Marca.IDMarca, largoID) && textoValido(s.Marca.NombreMarca, largoTexto) &&
		len(s.Influencers) >= 1 && len(s.Influencers) <= maximoInfluencers &&
		(s.SimularFallo == nil || slices.Contains(pasos, *s.SimularFallo)) &&
		(s.SimularFalloCompensacion == nil || s.SimularFallo != nil &&
			slices.Index(pasos, *s.SimularFalloCompensacion) >= 0 &&
			slices.Index(pasos, *s.SimularFalloCompensacion) <= slices.Index(pasos, *s.SimularFallo))
	for _, i := range s.Influencers {
		ok = ok && textoValido(i.Nombre, largoTexto) && textoValido(i.Plataforma, largoTexto)
	}
	if !ok {
		t.Fatalf("accepted an invalid campana request: %+v", s)
	}
	var cs campos
	if s.validar(pasos, &cs); cs.error() != nil {
		t.Fatalf("validar finds fault with an accepted request: %v", cs.error())
	}
	entrada := s.entrada("camp")
	b, err := json.Marshal(entrada)
	if err != nil {
		t.Fatalf("the saga input cannot be encoded: %v", err)
	}
	otra, err := decodificarCampana(b, pasos, &campos{})
	if err != nil {
		t.Fatalf("the saga input %s is not a valid request: %v", b, err)
	}
	if !reflect.DeepEqual(otra.entrada("camp"), entrada) {
		t.Fatalf("round trip changed the input:\n%+v\n%+v", otra.entrada("camp"), entrada)
	}
}

var monedaISO = regexp.MustCompile(`^[A-Z]{3}$`)

func comprobarLanzamiento(t *testing.T, s solicitudLanzamiento, pasos []string) {
	t.Helper()
	ok := textoValido(s.Nombre, largoTexto) && utf8.RuneCountInString(s.Descripcion) <= largoDescripcion &&
		s.FechaInicio != nil && s.FechaFin != nil && s.FechaFin.After(*s.FechaInicio) &&
		!s.FechaInicio.Before(fechaMinima) && s.FechaFin.Before(fechaMaxima) &&
		s.Presupuesto > 0 && s.Presupuesto <= 1e9 && monedaISO.MatchString(s.Moneda) &&
		s.Comision != nil && (s.Comision.Tipo == "porcentaje" && s.Comision.Valor > 0 && s.Comision.Valor <= 100 ||
		s.Comision.Tipo == "fijo" && s.Comision.Valor > 0 && s.Comision.Valor <= 1e9) &&
		len(s.CanalesNotificacion) >= 1 && (s.SimularFallo == nil || slices.Contains(pasos, *s.SimularFallo))
	vistos := map[string]bool{}
	for _, c := range s.CanalesNotificacion {
		ok = ok && slices.Contains(canalesNotificacion, c) && !vistos[c]
		vistos[c] = true
	}
	if c := s.CriteriosAfiliados; c != nil {
		ok = ok && c.MinSeguidores >= 0 && c.Maximo >= 0 && len(c.Categorias) <= maximoCategorias
		for _, cat := range c.Categorias {
			ok = ok && textoValido(cat, largoTexto)
		}
	}
	if !ok {
		t.Fatalf("accepted an invalid lanzamiento request: %+v", s)
	}
	var cs campos
	if s.validar(pasos, &cs); cs.error() != nil {
		t.Fatalf("validar finds fault with an accepted request: %v", cs.error())
	}
	entrada := s.entrada("camp")
	b, err := json.Marshal(entrada)
	if err != nil {
		t.Fatalf("the saga input cannot be encoded: %v", err)
	}
	otra, err := decodificarLanzamiento(b, pasos, &campos{})
	if err != nil {
		t.Fatalf("the saga input %s is not a valid request: %v", b, err)
	}
	if !reflect.DeepEqual(otra.entrada("camp"), entrada) {
		t.Fatalf("round trip changed the input:\n%+v\n%+v", otra.entrada("camp"), entrada)
	}
}
