package eventos

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"
)

// ErrMalformado marks a payload that cannot be decoded with the topic's
// schema: a poison message, to be dead-lettered, never retried.
var ErrMalformado = errors.New("mensaje malformado")

// Avro is the Avro configuration of every message of ours: the library's
// defaults but for the largest string or bytes a decoder accepts, which is
// raised from hamba/avro's 1 MiB to the broker's maximum message size, so a
// command that carries up to MaximoCarga decodes wherever it is read.
var Avro = avro.Config{MaxByteSliceSize: MaximoMensajeBroker}.Freeze()

// Codec encodes and decodes one message type with one Avro schema.
type Codec[T any] struct {
	esquema avro.Schema
	texto   string
}

// NuevoCodec parses the Avro schema text (from package esquemas).
func NuevoCodec[T any](esquema string) (*Codec[T], error) {
	s, err := avro.Parse(esquema)
	if err != nil {
		return nil, fmt.Errorf("esquema avro: %w", err)
	}
	return &Codec[T]{esquema: s, texto: esquema}, nil
}

// Esquema returns the schema text, for registration with the broker.
func (c *Codec[T]) Esquema() string { return c.texto }

// Codificar encodes v in Avro binary.
func (c *Codec[T]) Codificar(v T) ([]byte, error) {
	b, err := Avro.Marshal(c.esquema, v)
	if err != nil {
		return nil, fmt.Errorf("codificar %s: %w", c.esquema.(avro.NamedSchema).FullName(), err)
	}
	return b, nil
}

// Decodificar decodes Avro binary; any failure wraps ErrMalformado.
//
// The decoder stops at the end of the record and tolerates short input, so
// the value is encoded again and compared: Avro's binary encoding is
// canonical, so only a payload that is exactly one record passes.
func (c *Codec[T]) Decodificar(b []byte) (T, error) {
	var v T
	if err := Avro.Unmarshal(c.esquema, b, &v); err != nil {
		return v, fmt.Errorf("%w: %v", ErrMalformado, err)
	}
	again, err := Avro.Marshal(c.esquema, v)
	if err != nil || !bytes.Equal(again, b) {
		var zero T
		return zero, fmt.Errorf("%w: %d bytes are not one %s record", ErrMalformado, len(b), c.esquema.(avro.NamedSchema).FullName())
	}
	return v, nil
}
