package mensajeria

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// Aplicador applies participants' replies (*motor.Motor).
type Aplicador interface {
	AplicarRespuestas(ctx context.Context, rs []eventos.Respuesta) []error
}

// ManejadorRespuestas decodes a batch of replies from respuestas-saga and
// applies the valid ones together (one transaction when the store can). A
// reply is acked only after its transition committed; a reply that cannot be
// decoded, is invalid, or names an unknown saga is dead-lettered.
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
			case errors.Is(err, almacen.ErrNoEncontrada):
				errs[indices[j]] = bus.Permanente(err)
			default:
				errs[indices[j]] = fmt.Errorf("aplicar respuesta %s de saga %s: %w", r.ID, r.SagaID, err)
			}
		}
		return errs
	}
}

// Vencedor processes due deadlines (VencerPlazos).
type Vencedor interface {
	VencerPlazos(ctx context.Context, limite int) (int, error)
}

// Temporizador sweeps the database for sagas whose deadline passed. Deadlines
// live in the database, so any replica takes over a crashed one's timers.
func Temporizador(ctx context.Context, v Vencedor, cada time.Duration, logger *slog.Logger) {
	const lote = 200
	t := time.NewTicker(cada)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := v.VencerPlazos(ctx, lote)
			if err != nil {
				if ctx.Err() == nil {
					logger.Warn("vencer plazos", "err", err)
				}
				break
			}
			if n < lote {
				break
			}
		}
	}
}

// Oyente reads saga outcomes from eventos-saga, so a replica that holds an
// HTTP request waiting for a saga learns when another replica ended it.
type Oyente struct {
	reader pulsar.Reader
	codec  *eventos.Codec[eventos.Evento]
	avisar func(sagaID string)
	logger *slog.Logger
	hecho  chan struct{}
}

// Escuchar starts a non-durable reader at the end of the topic.
func Escuchar(ctx context.Context, c pulsar.Client, topico string, codec *eventos.Codec[eventos.Evento], avisar func(string), logger *slog.Logger) (*Oyente, error) {
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topico, StartMessageID: pulsar.LatestMessageID()})
	if err != nil {
		return nil, fmt.Errorf("lector de %s: %w", topico, err)
	}
	o := &Oyente{reader: r, codec: codec, avisar: avisar, logger: logger, hecho: make(chan struct{})}
	go o.correr(ctx)
	return o, nil
}

func (o *Oyente) correr(ctx context.Context) {
	defer close(o.hecho)
	for {
		msg, err := o.reader.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			o.logger.Warn("leer eventos-saga", "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		ev, err := o.codec.Decodificar(msg.Payload())
		if err != nil {
			o.logger.Warn("evento de saga ilegible", "err", err)
			continue
		}
		o.avisar(ev.SagaID)
	}
}

// Cerrar waits for the reader loop (cancel its context first) and closes it.
func (o *Oyente) Cerrar() {
	<-o.hecho
	o.reader.Close()
}
