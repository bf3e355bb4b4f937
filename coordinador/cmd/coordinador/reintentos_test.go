package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// TestRespuestaConIDMasLargoQueLaColumnaVaAlDLQAlInstante: a reply whose id
// the inbox key column cannot hold fails the same way on every delivery.
// (Only a reply without an attempt is keyed in the inbox: the saga's state
// refuses a redelivery of one that names its attempt.)
// The store classifies it (almacen.ErrInvalido), so the coordinator
// dead-letters it at once with the reason instead of retrying it (its inbox
// key is "respuesta:" + id, 310 characters): the
// first retry would come only after SAGAS_REDELIVERY_DELAY (10s here).
func TestRespuestaConIDMasLargoQueLaColumnaVaAlDLQAlInstante(t *testing.T) {
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntornoConPlazo(t, tipo, time.Minute)
		e.vars["SAGAS_REDELIVERY_DELAY"] = "10s"
		cc, _ := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
		rc, _ := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
		prod, err := bus.NuevoProductor(e.client, e.topo.Respuestas(), "", esquemas.MustAvro(esquemas.RespuestaSaga), bus.LotesMixtos)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		ctx, cancel := context.WithCancel(t.Context())
		// A participant whose reply ids are 300 characters long.
		k, err := bus.Consumir(ctx, e.client, bus.OpcionesConsumidor{
			Topico: e.topo.Comandos("influencer"), Suscripcion: "participante-influencer",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, func(ctx context.Context, msg pulsar.Message) error {
			cmd, err := cc.Decodificar(msg.Payload())
			if err != nil {
				return bus.Permanente(err)
			}
			r := eventos.ResponderA(&cmd, "influencer", true, "", json.RawMessage(`{}`), time.Now())
			r.ID, r.Intento = strings.Repeat("r", 300), 0
			b, err := rc.Codificar(r)
			if err != nil {
				return err
			}
			_, err = prod.Send(ctx, &pulsar.ProducerMessage{Payload: b, Key: cmd.SagaID})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); k.Close() }()
		e.coordinadorEnProceso("r1")
		id := e.iniciar(e.motor(), saga.TipoCampana, `{"nombre":"larga"}`)
		inicio := time.Now()

		dlq, err := e.client.Subscribe(pulsar.ConsumerOptions{Topic: e.topo.Respuestas() + "-DLQ", SubscriptionName: "prueba",
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
		if err != nil {
			t.Fatal(err)
		}
		defer dlq.Close()
		rctx, rcancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer rcancel()
		m, err := dlq.Receive(rctx)
		if err != nil {
			t.Fatalf("no dead letter of the reply: %v", err)
		}
		if espera := time.Since(inicio); espera > 8*time.Second {
			t.Errorf("dead-lettered %v after the saga started: it waited for a retry", espera)
		}
		p := m.Properties()
		if p[bus.PropClase] != string(bus.ClasePermanente) || p[bus.PropReentregas] != "0" ||
			!strings.Contains(p[bus.PropMotivo], "clave de inbox de 310 caracteres (máximo 255)") || m.Key() != id {
			t.Errorf("dead letter key %q properties %v", m.Key(), p)
		}
		if s, err := e.abrir().Saga(t.Context(), id); err != nil || s.Pasos[0].Estado != saga.PasoEjecutando {
			t.Errorf("the refused reply changed the saga: %+v %v", s.Pasos, err)
		}
	})
}
