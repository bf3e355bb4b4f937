package eventos

import (
	"bytes"
	"encoding/json"
)

// Size limits of what a saga carries. A command carries the saga's input plus
// the output of every earlier step, so these bounds keep every message of
// ours under the broker's maximum message size and every write of one saga
// under MySQL's max_allowed_packet (docs/limits.md has the arithmetic).
const (
	// MaximoEntrada bounds a saga's input: the JSON the coordinator stores
	// and sends as "entrada" in every command (512 KiB). The API refuses a
	// larger input with 413 before anything is stored.
	MaximoEntrada = 512 << 10
	// MaximoSalida bounds one step's output: the datos of a reply (512 KiB).
	// A participant whose output is larger replies a failure instead, and
	// the coordinator takes a larger output from anyone as a failed step.
	MaximoSalida = 512 << 10
	// MaximoCarga bounds what a saga carries: the datos of one command, its
	// input plus every earlier output (2 MiB). A reply whose output would
	// take a later command past it fails its step.
	MaximoCarga = 2 << 20
	// MaximoMensajeBroker is Pulsar's default maxMessageSize (5 MiB, broker
	// setting maxMessageSize), which no message of ours may exceed: a command
	// is at most MaximoCarga plus an envelope of a few KiB.
	MaximoMensajeBroker = 5 << 20
)

// CodificarJSON encodes v as compact JSON without HTML escaping: a '<', '>'
// or '&' stays one byte instead of six (\u003c), since this JSON is never
// embedded in HTML. Every JSON a saga carries is encoded with it, so the
// limits above measure what is sent.
func CodificarJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
