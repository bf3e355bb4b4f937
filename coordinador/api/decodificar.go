package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decodificar reads the JSON object in cuerpo into dst (a pointer to a
// struct with json tags). Unlike json.Unmarshal it reports every problem at
// once, each by its JSON path (marca.id_marca, influencers[1].plataforma):
// unknown fields, values of the wrong type and non-objects where an object
// belongs. Field names match exactly (encoding/json would accept "Nombre"
// for "nombre"). A JSON null leaves the field at its zero value.
//
// The error is a 400 *errorSolicitud: malformed JSON, or invalid fields.
// Fields found wrong here are recorded in cs so validation does not report
// them twice.
func decodificar(cuerpo []byte, dst any, cs *campos) error {
	dec := json.NewDecoder(bytes.NewReader(cuerpo))
	var raiz json.RawMessage
	if err := dec.Decode(&raiz); err != nil {
		if errors.Is(err, io.EOF) {
			return errCuerpoVacio
		}
		return malformado(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformado(errors.New("hay datos después del objeto JSON"))
	}
	if !esObjeto(raiz) {
		return invalida([]Campo{{Campo: "", Error: "el cuerpo debe ser un objeto JSON"}})
	}
	decodificarObjeto(raiz, reflect.ValueOf(dst).Elem(), "", cs)
	return nil
}

// decodificarObjeto fills the struct v from the JSON object raw.
func decodificarObjeto(raw json.RawMessage, v reflect.Value, prefijo string, cs *campos) {
	var miembros map[string]json.RawMessage
	if err := json.Unmarshal(raw, &miembros); err != nil {
		cs.falla(prefijo, "debe ser un objeto")
		return
	}
	t := v.Type()
	conocidos := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		nombre := nombreJSON(f)
		if nombre == "" {
			continue
		}
		conocidos[nombre] = true
		valor, ok := miembros[nombre]
		if !ok || esNulo(valor) {
			continue
		}
		decodificarValor(valor, v.Field(i), ruta(prefijo, nombre), cs)
	}
	var desconocidos []string
	for k := range miembros {
		if !conocidos[k] {
			desconocidos = append(desconocidos, k)
		}
	}
	sort.Strings(desconocidos)
	for _, k := range desconocidos {
		cs.falla(ruta(prefijo, k), "campo desconocido")
	}
}

// decodificarValor fills v from raw: nested structs and slices of structs
// recursively, anything else with encoding/json.
func decodificarValor(raw json.RawMessage, v reflect.Value, campo string, cs *campos) {
	t := v.Type()
	switch {
	case esCompuesto(t):
		if !esObjeto(raw) {
			cs.falla(campo, "debe ser un objeto")
			return
		}
		decodificarObjeto(raw, v, campo, cs)
	case t.Kind() == reflect.Pointer && esCompuesto(t.Elem()):
		if !esObjeto(raw) {
			cs.falla(campo, "debe ser un objeto")
			return
		}
		nuevo := reflect.New(t.Elem())
		decodificarObjeto(raw, nuevo.Elem(), campo, cs)
		v.Set(nuevo)
	case t.Kind() == reflect.Slice && esCompuesto(t.Elem()):
		var elementos []json.RawMessage
		if err := json.Unmarshal(raw, &elementos); err != nil {
			cs.falla(campo, "debe ser una lista")
			return
		}
		lista := reflect.MakeSlice(t, len(elementos), len(elementos))
		for i, e := range elementos {
			item := campo + "[" + strconv.Itoa(i) + "]"
			if !esObjeto(e) {
				cs.falla(item, "debe ser un objeto")
				continue
			}
			decodificarObjeto(e, lista.Index(i), item, cs)
		}
		v.Set(lista)
	default:
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			cs.falla(campo, "debe ser "+descripcionTipo(t))
		}
	}
}

var (
	tipoUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	tipoFecha       = reflect.TypeFor[time.Time]()
)

// esCompuesto reports whether t is a struct this decoder walks field by
// field (a struct that decodes itself, like time.Time, is a scalar).
func esCompuesto(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(tipoUnmarshaler)
}

// descripcionTipo says in words what JSON a Go type expects.
func descripcionTipo(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == tipoFecha {
		return "una fecha RFC 3339 (por ejemplo 2025-03-01T00:00:00Z)"
	}
	switch t.Kind() {
	case reflect.String:
		return "un texto"
	case reflect.Bool:
		return "un booleano"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "un número entero"
	case reflect.Float32, reflect.Float64:
		return "un número"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "una lista de textos"
		}
		return "una lista"
	default:
		return "un valor de tipo " + t.String()
	}
}

func nombreJSON(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	nombre, _, _ := strings.Cut(tag, ",")
	if nombre == "" {
		return f.Name
	}
	return nombre
}

func ruta(prefijo, nombre string) string {
	if prefijo == "" {
		return nombre
	}
	return prefijo + "." + nombre
}

func esObjeto(raw json.RawMessage) bool {
	b := bytes.TrimLeft(raw, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

func esNulo(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
