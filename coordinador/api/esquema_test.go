package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// validador checks JSON values against the subset of JSON Schema (OpenAPI
// 3.0 flavour) that esquemas/openapi.json uses: $ref, type, nullable, enum,
// required, properties, additionalProperties (false or a schema), items,
// oneOf, format date-time, minimum/maximum/exclusiveMinimum,
// minLength/maxLength, minItems/maxItems/uniqueItems and pattern. Any other
// keyword is an error, so the document cannot use a rule that goes
// unchecked. Numbers are compared exactly (math/big), and an integer is a
// JSON number without fraction or exponent, as OpenAPI 3.0's JSON Schema
// and encoding/json have it.
type validador struct{ doc map[string]any }

var palabrasConocidas = map[string]bool{
	"$ref": true, "type": true, "nullable": true, "enum": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true, "format": true, "minimum": true, "maximum": true,
	"exclusiveMinimum": true, "minLength": true, "maxLength": true, "minItems": true, "maxItems": true,
	"uniqueItems": true, "pattern": true, "description": true, "example": true, "oneOf": true,
}

// decodificarJSON keeps numbers as json.Number, so integers can be told apart.
func decodificarJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// resolver follows a local $ref (#/components/...).
func (v *validador) resolver(ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var nodo any = v.doc
	for _, parte := range strings.Split(ref[2:], "/") {
		m, ok := nodo.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not an object", ref, parte)
		}
		if nodo, ok = m[parte]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, parte)
		}
	}
	m, ok := nodo.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q is not an object", ref)
	}
	return m, nil
}

// validar returns every way valor breaks esquema, each with its path.
func (v *validador) validar(esquema map[string]any, valor any, ruta string) []string {
	var errs []string
	fallo := func(f string, a ...any) { errs = append(errs, ruta+": "+fmt.Sprintf(f, a...)) }
	for k := range esquema {
		if !palabrasConocidas[k] {
			fallo("schema keyword %q is not supported by the validator", k)
		}
	}
	if ref, ok := esquema["$ref"].(string); ok {
		destino, err := v.resolver(ref)
		if err != nil {
			fallo("%v", err)
			return errs
		}
		return append(errs, v.validar(destino, valor, ruta)...)
	}
	if alternativas, ok := esquema["oneOf"].([]any); ok {
		var cumplen int
		var motivos []string
		for i, a := range alternativas {
			e := v.validar(a.(map[string]any), valor, ruta)
			if len(e) == 0 {
				cumplen++
			}
			motivos = append(motivos, fmt.Sprintf("oneOf[%d]: %v", i, e))
		}
		if cumplen != 1 {
			fallo("%d of the oneOf alternatives match, want exactly 1: %v", cumplen, motivos)
		}
	}
	if valor == nil {
		if esquema["nullable"] == true || esquema["type"] == nil {
			return errs
		}
		fallo("null where %v is expected", esquema["type"])
		return errs
	}
	if tipo, ok := esquema["type"].(string); ok && !esDeTipo(valor, tipo) {
		fallo("%s where %s is expected", describir(valor), tipo)
		return errs
	}
	if enum, ok := esquema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(valor) }) {
		fallo("%v is not one of %v", valor, enum)
	}
	switch x := valor.(type) {
	case map[string]any:
		errs = append(errs, v.validarObjeto(esquema, x, ruta)...)
	case []any:
		if n, ok := numero(esquema["minItems"]); ok && float64(len(x)) < n {
			fallo("%d items, at least %v", len(x), n)
		}
		if n, ok := numero(esquema["maxItems"]); ok && float64(len(x)) > n {
			fallo("%d items, at most %v", len(x), n)
		}
		if esquema["uniqueItems"] == true {
			vistos := map[string]bool{}
			for _, e := range x {
				k := fmt.Sprint(e)
				if vistos[k] {
					fallo("repeated item %v", e)
				}
				vistos[k] = true
			}
		}
		if items, ok := esquema["items"].(map[string]any); ok {
			for i, e := range x {
				errs = append(errs, v.validar(items, e, fmt.Sprintf("%s[%d]", ruta, i))...)
			}
		}
	case string:
		if esquema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				fallo("%q is not a date-time", x)
			}
		}
		if n, ok := numero(esquema["minLength"]); ok && float64(len([]rune(x))) < n {
			fallo("%q shorter than %v", x, n)
		}
		if n, ok := numero(esquema["maxLength"]); ok && float64(len([]rune(x))) > n {
			fallo("%q longer than %v", x, n)
		}
		if p, ok := esquema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			fallo("%q does not match %s", x, p)
		}
	case json.Number:
		f, _ := racional(x)
		if n, ok := racional(esquema["minimum"]); ok && (f.Cmp(n) < 0 || esquema["exclusiveMinimum"] == true && f.Cmp(n) == 0) {
			fallo("%v below the minimum %v", x, esquema["minimum"])
		}
		if n, ok := racional(esquema["maximum"]); ok && f.Cmp(n) > 0 {
			fallo("%v above the maximum %v", x, esquema["maximum"])
		}
	}
	return errs
}

func (v *validador) validarObjeto(esquema map[string]any, x map[string]any, ruta string) []string {
	var errs []string
	props, _ := esquema["properties"].(map[string]any)
	if req, ok := esquema["required"].([]any); ok {
		for _, r := range req {
			if _, ok := x[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing required %q", ruta, r))
			}
		}
	}
	claves := make([]string, 0, len(x))
	for k := range x {
		claves = append(claves, k)
	}
	sort.Strings(claves)
	for _, k := range claves {
		if p, ok := props[k].(map[string]any); ok {
			errs = append(errs, v.validar(p, x[k], ruta+"."+k)...)
			continue
		}
		switch ad := esquema["additionalProperties"].(type) {
		case bool:
			if !ad {
				errs = append(errs, fmt.Sprintf("%s: property %q is not in the schema", ruta, k))
			}
		case map[string]any:
			errs = append(errs, v.validar(ad, x[k], ruta+"."+k)...)
		}
	}
	return errs
}

func esDeTipo(v any, tipo string) bool {
	switch tipo {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		return ok && enteroJSON.MatchString(string(n))
	}
	return false
}

func describir(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// enteroJSON is a JSON number without fraction or exponent.
var enteroJSON = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// racional is a number of the document or of a value, exactly.
func racional(v any) (*big.Rat, bool) {
	var texto string
	switch n := v.(type) {
	case json.Number:
		texto = string(n)
	case float64:
		texto = strconv.FormatFloat(n, 'g', -1, 64)
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(texto)
	return r, ok
}

func numero(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

func TestValidadorDetectaCadaRegla(t *testing.T) {
	doc, err := decodificarJSON([]byte(`{"components":{"schemas":{
		"E":{"type":"string","enum":["A","B"]},
		"O":{"type":"object","additionalProperties":false,"required":["id","n"],"properties":{
			"id":{"type":"string","minLength":1,"maxLength":3,"pattern":"^[a-z]+$"},
			"n":{"type":"integer","minimum":0,"exclusiveMinimum":true,"maximum":10},
			"e":{"$ref":"#/components/schemas/E"},
			"f":{"type":"string","format":"date-time"},
			"l":{"type":"array","minItems":1,"maxItems":2,"uniqueItems":true,"items":{"type":"boolean"}},
			"x":{"type":"string","nullable":true},
			"m":{"type":"object","additionalProperties":{"type":"integer"}},
			"cualquiera":{"description":"any JSON"},
			"c":{"oneOf":[{"type":"integer","maximum":5},{"type":"string"}]},
			"g":{"type":"integer","maximum":9223372036854775807}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	v := &validador{doc: doc.(map[string]any)}
	esquema := map[string]any{"$ref": "#/components/schemas/O"}
	casos := []struct {
		json string
		want []string // parts of the expected errors; none means valid
	}{
		{`{"id":"ab","n":3,"e":"A","f":"2025-03-01T00:00:00Z","l":[true],"x":null,"m":{"a":1},"cualquiera":[1,"x"]}`, nil},
		{`{"n":3}`, []string{`missing required "id"`}},
		{`{"id":"ab","n":3,"otro":1}`, []string{`"otro" is not in the schema`}},
		{`{"id":7,"n":3}`, []string{".id: a number where string"}},
		{`{"id":"ab","n":1.5}`, []string{".n: a number where integer"}},
		{`{"id":"ab","n":0}`, []string{"below the minimum"}},
		{`{"id":"ab","n":11}`, []string{"above the maximum"}},
		{`{"id":"abcd","n":1}`, []string{"longer than"}},
		{`{"id":"","n":1}`, []string{"shorter than", "does not match"}},
		{`{"id":"AB","n":1}`, []string{"does not match"}},
		{`{"id":"ab","n":1,"e":"C"}`, []string{"not one of"}},
		{`{"id":"ab","n":1,"f":"ayer"}`, []string{"not a date-time"}},
		{`{"id":"ab","n":1,"l":[]}`, []string{"at least"}},
		{`{"id":"ab","n":1,"l":[true,false,true]}`, []string{"at most", "repeated item"}},
		{`{"id":"ab","n":1,"l":["si"]}`, []string{".l[0]: a string where boolean"}},
		{`{"id":null,"n":1}`, []string{".id: null where string"}},
		{`{"id":"ab","n":1,"m":{"a":"uno"}}`, []string{".m.a: a string where integer"}},
		{`{"id":"ab","n":1,"c":5,"g":9223372036854775807}`, nil},
		{`{"id":"ab","n":1,"c":"x"}`, nil},
		{`{"id":"ab","n":1,"c":6}`, []string{"0 of the oneOf alternatives match"}},
		{`{"id":"ab","n":1,"g":9223372036854775808}`, []string{"above the maximum"}},
		{`{"id":"ab","n":1.0}`, []string{".n: a number where integer"}},
		{`{"id":"ab","n":1e0}`, []string{".n: a number where integer"}},
		{`[]`, []string{"an array where object"}},
	}
	for _, c := range casos {
		valor, err := decodificarJSON([]byte(c.json))
		if err != nil {
			t.Fatal(err)
		}
		errs := v.validar(esquema, valor, "$")
		if len(c.want) == 0 && len(errs) > 0 {
			t.Errorf("%s: valid, got %v", c.json, errs)
		}
		if len(errs) != len(c.want) {
			t.Errorf("%s: got %v, want %d errors %v", c.json, errs, len(c.want), c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(errs[i], w) {
				t.Errorf("%s: error %d is %q, want it to say %q", c.json, i, errs[i], w)
			}
		}
	}
	if errs := v.validar(map[string]any{"type": "string", "oneOf": []any{}}, "x", "$"); len(errs) != 1 || !strings.Contains(errs[0], "oneOf") {
		t.Errorf("an unsupported keyword went unnoticed: %v", errs)
	}
}
