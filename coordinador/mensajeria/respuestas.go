package mensajeria

import (
	"context"
	"errors"
	"fmt"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// Aplicador applies participants' replies (*motor.Motor).
type Aplicador interface {
	AplicarRespuestas(ctx context.Context, rs []eventos.Respuesta) []error
}

// Respuestas consumes respuestas-saga with a Key_Shared subscription, so
// replicas split sagas between them, and hands each batch to
// ManejadorRespuestas.
type Respuestas struct {
	cliente  pulsar.Client
	opciones bus.OpcionesConsumidor
	manejar  bus.ManejadorLote
	listo    chan struct{}
}

// NuevasRespuestas builds the reply consumer; o names the topic, the
// subscription and its type. Correr runs it.
func NuevasRespuestas(c pulsar.Client, o bus.OpcionesConsumidor, codec *eventos.Codec[eventos.Respuesta], motor Aplicador) *Respuestas {
	return &Respuestas{cliente: c, opciones: o, manejar: ManejadorRespuestas(codec, motor), listo: make(chan struct{})}
}

// Listo is closed once the subscription exists.
func (r *Respuestas) Listo() <-chan struct{} { return r.listo }

// Correr subscribes and consumes until ctx ends, then lets the batches in
// hand finish and closes the subscription.
func (r *Respuestas) Correr(ctx context.Context) error {
	k, err := bus.ConsumirLotes(ctx, r.cliente, r.opciones, r.manejar)
	if err != nil {
		return err
	}
	close(r.listo)
	<-ctx.Done()
	k.Close()
	return nil
}

// ManejadorRespuestas decodes a batch of replies from respuestas-saga and
// applies the valid ones together (one transaction when the store can). A
// reply is acked only after its transition committed; a reply that cannot be
// decoded, is invalid, names an unknown saga or carries a value the store
// refuses (almacen.ErrInvalido) is dead-lettered at once.
func ManejadorRespuestas(codec *eventos.Codec[eventos.Respuesta], motor Aplicador) bus.ManejadorLote {
	return func(ctx context.Context, msgs []pulsar.Message) []error {
		errs := make([]error, len(msgs))
		validas := make([]eventos.Respuesta, 0, len(msgs))
		indices := make([]int, 0, len(msgs))
		for i, msg := range msgs {
			r, err := codec.Decodificar(msg.Payload())
			if err == nil {
				err = r.Validar()
			}
			if err != nil {
				errs[i] = bus.Permanente(err)
				continue
			}
			validas = append(validas, r)
			indices = append(indices, i)
		}
		if len(validas) == 0 {
			return errs
		}
		for j, err := range motor.AplicarRespuestas(ctx, validas) {
			r := &validas[j]
			switch {
			case err == nil:
			case errors.Is(err, almacen.ErrNoEncontrada), errors.Is(err, almacen.ErrInvalido):
				// The same reply fails the same way every time: an unknown
				// saga, or a value the store cannot hold (a reply id longer
				// than the inbox key column, output that is not JSON).
				errs[indices[j]] = bus.Permanente(fmt.Errorf("aplicar respuesta %s de saga %s: %w", r.ID, r.SagaID, err))
			default:
				errs[indices[j]] = fmt.Errorf("aplicar respuesta %s de saga %s: %w", r.ID, r.SagaID, err)
			}
		}
		return errs
	}
}
