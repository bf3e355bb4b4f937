package mensajeria

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// Oyente reads saga outcomes from eventos-saga, so a replica that holds an
// HTTP request waiting for a saga learns when another replica ended it.
type Oyente struct {
	cliente pulsar.Client
	topico  string
	codec   *eventos.Codec[eventos.Evento]
	avisar  func(sagaID string)
	logger  *slog.Logger
	listo   chan struct{}
}

// NuevoOyente builds a listener that calls avisar with the saga id of every
// outcome published on topico from the moment it starts. Correr runs it.
func NuevoOyente(c pulsar.Client, topico string, codec *eventos.Codec[eventos.Evento], avisar func(sagaID string), logger *slog.Logger) *Oyente {
	if logger == nil {
		logger = slog.Default()
	}
	return &Oyente{cliente: c, topico: topico, codec: codec, avisar: avisar, logger: logger, listo: make(chan struct{})}
}

// Listo is closed once the reader is open.
func (o *Oyente) Listo() <-chan struct{} { return o.listo }

// Correr opens a non-durable reader at the end of the topic and reads until
// ctx ends, then closes it.
func (o *Oyente) Correr(ctx context.Context) error {
	r, err := bus.Abrir(ctx, o.logger, "lector de "+o.topico, func() (pulsar.Reader, error) {
		return o.cliente.CreateReader(pulsar.ReaderOptions{Topic: o.topico, StartMessageID: pulsar.LatestMessageID()})
	})
	if err != nil {
		return fmt.Errorf("lector de %s: %w", o.topico, err)
	}
	defer r.Close()
	close(o.listo)
	for {
		msg, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			o.logger.Warn("leer eventos-saga", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
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
