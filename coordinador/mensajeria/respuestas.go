package mensajeria

import (
	"context"
	"errors"
	"fmt"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/apache/pulsar-client-go/pulsar"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Aplicador applies participants' replies (*motor.Motor); trazas holds each
// reply's traceparent, the context its commands are sent in.
type Aplicador interface {
	AplicarRespuestas(ctx context.Context, rs []eventos.Respuesta, trazas []string) []error
}

// Respuestas consumes respuestas-saga with a Failover subscription (each
// partition read by one replica at a time, in order, so participants may
// batch replies across sagas: bus.LotesMixtos), and hands each batch to
// ManejadorRespuestas.
type Respuestas struct {
	cliente  pulsar.Client
	opciones bus.OpcionesConsumidor
	manejar  bus.ManejadorLote
	listo    chan struct{}
}

// NuevasRespuestas builds the reply consumer; o names the topic, the
// subscription and its type; tz makes a span per reply (nil: none). Correr
// runs it.
func NuevasRespuestas(c pulsar.Client, o bus.OpcionesConsumidor, codec *eventos.Codec[eventos.Respuesta], motor Aplicador, tz *traza.Trazador) *Respuestas {
	return &Respuestas{cliente: c, opciones: o, manejar: ManejadorRespuestas(codec, motor, tz), listo: make(chan struct{})}
}

// Listo is closed once the subscription exists.
func (r *Respuestas) Listo() <-chan struct{} { return r.listo }

// Correr subscribes and consumes until ctx ends, then lets the batches in
// hand finish and closes the subscription.
func (r *Respuestas) Correr(ctx context.Context) error {
	k, err := bus.Abrir(ctx, r.opciones.Logger, "suscripción a "+r.opciones.Topico, func() (*bus.Consumidor, error) {
		return bus.ConsumirLotes(ctx, r.cliente, r.opciones, r.manejar)
	})
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
// refuses (almacen.ErrInvalido) is dead-lettered at once. Each valid reply
// is handled in a span of tz (a child of the reply's traceparent), in which
// the commands it causes are sent.
func ManejadorRespuestas(codec *eventos.Codec[eventos.Respuesta], motor Aplicador, tz *traza.Trazador) bus.ManejadorLote {
	return func(ctx context.Context, msgs []pulsar.Message) []error {
		errs := make([]error, len(msgs))
		validas := make([]eventos.Respuesta, 0, len(msgs))
		indices := make([]int, 0, len(msgs))
		trazas := make([]string, 0, len(msgs))
		spans := make([]trace.Span, 0, len(msgs))
		for i, msg := range msgs {
			r, err := codec.Decodificar(msg.Payload())
			if err == nil {
				err = r.Validar()
			}
			if err != nil {
				errs[i] = bus.Permanente(err)
				continue
			}
			sctx, span := tz.Iniciar(traza.Contexto(ctx, msg.Properties()[eventos.PropTraceparent]),
				"respuesta "+eventos.NombreDeTipo(r.Type), traza.Consumidor, traza.Desde(msg.PublishTime()),
				traza.Atributos(traza.Saga(r.SagaID, r.Paso)...),
				traza.Atributos(attribute.String("saga.accion", r.Accion), attribute.Bool("saga.exito", r.Exito),
					attribute.String("saga.servicio", r.ServiceName)))
			validas = append(validas, r)
			indices = append(indices, i)
			trazas = append(trazas, traza.Traceparent(sctx))
			spans = append(spans, span)
		}
		if len(validas) == 0 {
			return errs
		}
		defer func() {
			for j, span := range spans {
				traza.Fallo(span, errs[indices[j]])
				span.End()
			}
		}()
		for j, err := range motor.AplicarRespuestas(ctx, validas, trazas) {
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
