package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
)

// documentoServido is the OpenAPI document this deployment serves:
// esquemas/openapi.json as it is, unless the deployment differs from what the
// file describes. Without an operator token no route needs one, so the
// security requirements and the 401 and 403 answers go; with another
// catalogue the saga tipos and the step names simular_fallo admits are the
// catalogue's.
func documentoServido(conToken bool, tipos []string, pasos map[string][]string) ([]byte, error) {
	original := esquemas.OpenAPI()
	dec := json.NewDecoder(bytes.NewReader(original))
	dec.UseNumber() // 9223372036854775807 stays exact
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("esquemas/openapi.json: %w", err)
	}
	cambiado := false
	if !conToken {
		doc["security"] = []any{}
		if comp, ok := doc["components"].(map[string]any); ok {
			delete(comp, "securitySchemes")
		}
		for _, item := range mapa(doc["paths"]) {
			for _, op := range mapa(item) {
				o := mapa(op)
				delete(o, "security")
				delete(mapa(o["responses"]), "401")
				delete(mapa(o["responses"]), "403")
			}
		}
		cambiado = true
	}
	enums := []struct {
		ruta    []string
		valores []string
		nulo    bool
	}{
		{[]string{"components", "parameters", "tipo", "schema"}, tipos, false},
		{[]string{"components", "schemas", "SolicitudCampana", "properties", "simular_fallo"}, pasos[saga.TipoCampana], true},
		{[]string{"components", "schemas", "SolicitudCampana", "properties", "simular_fallo_compensacion"}, pasos[saga.TipoCampana], true},
		{[]string{"components", "schemas", "SolicitudLanzamiento", "properties", "simular_fallo"}, pasos[saga.TipoLanzarCampaniaCompleta], true},
	}
	for _, e := range enums {
		nodo := any(doc)
		for _, parte := range e.ruta {
			nodo = mapa(nodo)[parte]
		}
		esquema := mapa(nodo)
		if esquema == nil {
			return nil, fmt.Errorf("esquemas/openapi.json: falta %v", e.ruta)
		}
		valores := make([]any, 0, len(e.valores)+1)
		for _, v := range e.valores {
			valores = append(valores, v)
		}
		if e.nulo {
			valores = append(valores, nil)
		}
		if actual, _ := esquema["enum"].([]any); !slices.Equal(actual, valores) {
			esquema["enum"] = valores
			cambiado = true
		}
	}
	if !cambiado {
		return original, nil
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("codificar el documento OpenAPI: %w", err)
	}
	return append(b, '\n'), nil
}

// mapa is v as a JSON object, nil when it is not one.
func mapa(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
