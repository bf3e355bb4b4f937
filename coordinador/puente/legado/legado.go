// Package legado holds the Avro schemas of the legacy AlpesPartner messages
// that the choreography bridge accepts, exactly as the Python producers
// register them (pulsar-client's pulsar.schema.Record classes with
// AvroSchema(Class)): record names are the Python class names with no
// namespace, every scalar is a nullable union ["null", T], the payload is a
// nested record, and fields come in declaration order.
//
// The bridge does not decode with these files: it reads each message with the
// writer schema the broker stored for the message's schema version, because
// legacy producers differ in field order (older pulsar-client releases sorted
// fields alphabetically) and may add fields. The files document the contract
// and let tests and tools produce legacy messages from Go.
package legado

import (
	"embed"
	"fmt"
)

//go:embed *.avsc
var archivos embed.FS

// Record names of the legacy messages, one per legacy topic.
const (
	// EventoCampaniaCreada is the record of persistent://public/default/eventos-campania.
	EventoCampaniaCreada = "EventoCampaniaCreada"
	// ComandoLanzarCampaniaCompleta is the record of
	// persistent://public/default/comando-lanzar-campania-completa.
	ComandoLanzarCampaniaCompleta = "ComandoLanzarCampaniaCompleta"
)

// Esquema returns the Avro schema (JSON text) of the named legacy record.
func Esquema(nombre string) (string, error) {
	b, err := archivos.ReadFile(nombre + ".avsc")
	if err != nil {
		return "", fmt.Errorf("esquema legado %q: %w", nombre, err)
	}
	return string(b), nil
}
