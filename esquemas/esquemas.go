// Package esquemas holds the schemas users consume: the Avro schema of every
// message on our topics (the source of truth, registered in Pulsar's schema
// registry) and the OpenAPI document of the HTTP API.
package esquemas

import (
	"embed"
	"fmt"
)

//go:embed avro/*.avsc
var archivos embed.FS

// Avro schema names, one per topic family.
const (
	ComandoSaga   = "ComandoSaga"   // comandos-<servicio>
	RespuestaSaga = "RespuestaSaga" // respuestas-saga
	EventoSaga    = "EventoSaga"    // eventos-saga
)

// Avro returns the Avro schema (JSON text) of the named record.
func Avro(nombre string) (string, error) {
	b, err := archivos.ReadFile("avro/" + nombre + ".avsc")
	if err != nil {
		return "", fmt.Errorf("esquema avro %q: %w", nombre, err)
	}
	return string(b), nil
}

// MustAvro is Avro for the names above, which are embedded at build time.
func MustAvro(nombre string) string {
	s, err := Avro(nombre)
	if err != nil {
		panic(err)
	}
	return s
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.0 document of the coordinator's HTTP API
// (JSON). Each call returns a fresh copy.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
