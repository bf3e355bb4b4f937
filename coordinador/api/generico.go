package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/labstack/echo/v4"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// rutaGenerica starts a saga of any tipo whose definition carries an input
// schema (esquema_entrada).
const rutaGenerica = "/api/v1/sagas/:tipo"

// formatoTipo is what a tipo in the path may look like; anything else names
// no flow and is answered 404 without looking.
var formatoTipo = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,99}$`)

// impresora writes the schema library's messages.
var impresora = message.NewPrinter(language.English)

// sinCargas refuses every $ref outside the definition: a schema is data of
// the definition file and never reads files or the network.
type sinCargas struct{}

func (sinCargas) Load(url string) (any, error) {
	return nil, fmt.Errorf("esquema_entrada solo puede referirse a sí mismo: %s no se carga", url)
}

// CompilarEsquemas compiles the input schema (esquema_entrada) of the
// current definition of every tipo that has one, keyed by tipo. It fails
// naming the tipo, version and problem of each schema that does not compile.
func CompilarEsquemas(cat saga.Catalogo) (map[string]*jsonschema.Schema, error) {
	out := map[string]*jsonschema.Schema{}
	var errs []error
	for tipo, def := range cat {
		if len(def.EsquemaEntrada) == 0 {
			continue
		}
		sch, err := compilarEsquema(def)
		if err != nil {
			errs = append(errs, fmt.Errorf("definición %s versión %d: esquema_entrada: %w", tipo, def.Version, err))
			continue
		}
		out[tipo] = sch
	}
	return out, errors.Join(errs...)
}

func compilarEsquema(def *saga.Definicion) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(def.EsquemaEntrada))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(sinCargas{})
	c.AssertFormat()
	ubicacion := "urn:alpespartner:definicion:" + def.Tipo + ":" + strconv.Itoa(def.Version)
	if err := c.AddResource(ubicacion, doc); err != nil {
		return nil, err
	}
	return c.Compile(ubicacion)
}

// iniciarGenerico is POST /api/v1/sagas/{tipo}: the body is the saga's
// input, validated against the definition's esquema_entrada.
func (s *servidor) iniciarGenerico(c echo.Context) error {
	tipo := c.Param("tipo")
	if !formatoTipo.MatchString(tipo) {
		return tipoNoIniciable(tipo, "no es un nombre de tipo")
	}
	esquema, ok := s.esquemas[tipo]
	if !ok {
		if _, err := s.catalogo.Buscar(tipo); err != nil {
			return tipoNoIniciable(tipo, "no hay definición de ese tipo")
		}
		return tipoNoIniciable(tipo, "su definición no trae esquema_entrada; se inicia por su propia ruta")
	}
	var cs campos
	esperar, clave := leerEspera(c, &cs), leerClave(c, &cs)
	cuerpo, err := s.leerCuerpo(c)
	if err != nil {
		return err
	}
	entrada, err := jsonschema.UnmarshalJSON(bytes.NewReader(cuerpo))
	switch {
	case errors.Is(err, io.EOF):
		return errCuerpoVacio
	case err != nil:
		return malformado(err)
	}
	objeto, ok := entrada.(map[string]any)
	if !ok {
		return invalida([]Campo{{Campo: "", Error: "el cuerpo debe ser un objeto JSON"}})
	}
	campaniaID := ""
	if v, ok := objeto["campania_id"]; ok {
		id, esTexto := v.(string)
		if !esTexto || utf8.RuneCountInString(id) > largoID {
			cs.falla("campania_id", fmt.Sprintf("debe ser un texto de hasta %d caracteres: nombra la campaña de la saga", largoID))
		}
		campaniaID = id
	}
	var verr *jsonschema.ValidationError
	if err := esquema.Validate(entrada); errors.As(err, &verr) {
		camposDeValidacion(verr, entrada, &cs)
	} else if err != nil {
		return fmt.Errorf("validar la entrada de %s: %w", tipo, err)
	}
	if err := cs.error(); err != nil {
		return err
	}
	// The fingerprint is of the input's canonical JSON (keys sorted, numbers
	// as float64), so spacing or key order do not make another request.
	var canonica any
	if err := json.Unmarshal(cuerpo, &canonica); err != nil {
		return malformado(err)
	}
	ruta := strings.Replace(rutaGenerica, ":tipo", tipo, 1)
	return s.iniciar(c, ruta, tipo, campaniaID, json.RawMessage(cuerpo), canonica, clave, esperar)
}

// tipoNoIniciable is a tipo the generic route cannot start: 404.
func tipoNoIniciable(tipo, motivo string) *errorSolicitud {
	return &errorSolicitud{codigo: http.StatusNotFound, mensaje: fmt.Sprintf(
		"tipo de saga %q no se puede iniciar por %s: %s", tipo, rutaGenerica, motivo)}
}

// camposDeValidacion adds to cs one field per failed leaf of the schema's
// verdict, named by its path in the input as the other routes name fields
// (marca.id_marca, influencers[1].plataforma); a missing required property
// or an unknown one is named itself.
func camposDeValidacion(e *jsonschema.ValidationError, entrada any, cs *campos) {
	if len(e.Causes) > 0 {
		for _, causa := range e.Causes {
			camposDeValidacion(causa, entrada, cs)
		}
		return
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, p := range k.Missing {
			cs.falla(nombreCampo(entrada, append(slices.Clone(e.InstanceLocation), p)), "es obligatorio")
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			cs.falla(nombreCampo(entrada, append(slices.Clone(e.InstanceLocation), p)), "campo desconocido")
		}
	default:
		cs.falla(nombreCampo(entrada, e.InstanceLocation), e.ErrorKind.LocalizedString(impresora))
	}
}

// nombreCampo writes a location in the input as a field path: members
// joined by dots, list positions in brackets.
func nombreCampo(entrada any, ubicacion []string) string {
	var b strings.Builder
	v := entrada
	for _, parte := range ubicacion {
		switch actual := v.(type) {
		case []any:
			b.WriteString("[" + parte + "]")
			if i, err := strconv.Atoi(parte); err == nil && i >= 0 && i < len(actual) {
				v = actual[i]
			} else {
				v = nil
			}
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(parte)
			m, _ := actual.(map[string]any)
			v = m[parte]
		}
	}
	return b.String()
}
