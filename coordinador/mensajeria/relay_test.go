package mensajeria

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/apache/pulsar-client-go/pulsar"
)

// outboxFalso is an Outbox held in a slice.
type outboxFalso struct {
	filas []almacen.Mensaje
}

func (o *outboxFalso) RegistrarRechazos(context.Context, []almacen.Rechazo, int) ([]almacen.Aparcado, error) {
	return nil, nil
}

func (o *outboxFalso) DrenarOutbox(ctx context.Context, limite int, publicar func(context.Context, []almacen.Mensaje) ([]int64, error)) (int, error) {
	if len(o.filas) == 0 {
		return 0, nil
	}
	ok, err := publicar(ctx, o.filas)
	o.filas = slices.DeleteFunc(o.filas, func(m almacen.Mensaje) bool { return slices.Contains(ok, m.ID) })
	return len(ok), err
}

// TestRelayNoPierdeFilasQueElBrokerCreeDuplicadas reproduces a broker that
// remembers a higher sequence id for the relay's producer name than the ids
// the outbox hands out (a fresh database on an old broker). The broker
// answers those rows as duplicates; the relay must publish them anyway.
func TestRelayNoPierdeFilasQueElBrokerCreeDuplicadas(t *testing.T) {
	url := integracion.PulsarURL(t)
	client, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topico := fmt.Sprintf("persistent://public/default/relay-dup-%d", time.Now().UnixNano())
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topico, SubscriptionName: "prueba", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// scripts/pulsar.sh turns de-duplication on broker-wide; set it on the
	// topic too, so the test holds against any broker.
	if err := bus.NuevoAdmin(integracion.PulsarAdminURL(t)).ActivarDeduplicacion(context.Background(), topico); err != nil {
		t.Fatal(err)
	}

	// An earlier life of replica r1 sent sequence id 1000 under the same name.
	viejo, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topico, Name: "r1-" + topicoCorto(topico)})
	if err != nil {
		t.Fatal(err)
	}
	seq := int64(1000)
	if _, err := viejo.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("viejo"), SequenceID: &seq}); err != nil {
		t.Fatal(err)
	}
	viejo.Close()

	store := &outboxFalso{}
	for i := int64(1); i <= 5; i++ {
		store.filas = append(store.filas, almacen.Mensaje{ID: i, Topico: topico, Clave: "s", Carga: []byte(fmt.Sprint("fila-", i))})
	}
	r := NuevoRelay(OpcionesRelay{Store: store, Client: client, Replica: "r1", Esquema: func(string) string { return "" }})
	defer r.cerrarProductores()
	n, err := store.DrenarOutbox(context.Background(), 100, r.publicar)
	if err != nil || n != 5 || len(store.filas) != 0 {
		t.Fatalf("drained %d (err %v), %d rows left", n, err, len(store.filas))
	}
	var recibidos []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(recibidos) < 6 {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("received only %v: %v", recibidos, err)
		}
		recibidos = append(recibidos, string(m.Payload()))
		cons.Ack(m)
	}
	for i := 1; i <= 5; i++ {
		if !slices.Contains(recibidos, fmt.Sprint("fila-", i)) {
			t.Fatalf("row %d lost: received %v", i, recibidos)
		}
	}
}
