package mensajeria

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/apache/pulsar-client-go/pulsar"
)

// TestRelayEntregaCadaFilaUnaVezTrasReiniciarConYSinParticiones publishes
// outbox rows through the relay to a 3-partition topic (and, for
// comparison, a non-partitioned one), several rows per key, restarts it (a new
// relay and producer under the same replica name) and publishes more. A
// consumer of every partition proves each row delivered exactly once, on
// the partition Murmur3 of its key names; a row held back in the first life
// (an id below what its partition already stored) is not lost as a
// "duplicate"; and a third life re-sending every acknowledged row under the
// relay's name and sequence ids is answered as a duplicate on every
// partition and delivers nothing.
func TestRelayEntregaCadaFilaUnaVezTrasReiniciarConYSinParticiones(t *testing.T) {
	url, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	b := make([]byte, 5)
	rand.Read(b)
	ns := "rel" + hex.EncodeToString(b)
	admin := bus.NuevoAdmin(adminURL)
	// The namespace turns de-duplication on, as coordinador -preparar does.
	if err := admin.PrepararNamespace(ctx, "alpespartner", ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	for _, particiones := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d particiones", particiones), func(t *testing.T) {
			topico := fmt.Sprintf("persistent://alpespartner/%s/comandos-%d", ns, particiones)
			crear := func() error { return admin.CrearTopico(ctx, topico) }
			if particiones > 1 {
				crear = func() error { return admin.CrearTopicoParticionado(ctx, topico, particiones) }
			}
			if err := crear(); err != nil {
				t.Fatal(err)
			}
			probarRelayTrasReiniciar(ctx, t, url, topico, particiones)
		})
	}
}

func probarRelayTrasReiniciar(ctx context.Context, t *testing.T, url, topico string, particiones int) {
	client, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topico, SubscriptionName: "prueba", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	fila := func(id int64) almacen.Mensaje {
		return almacen.Mensaje{ID: id, Topico: topico, Clave: fmt.Sprintf("saga-%d", id%10), Carga: []byte(fmt.Sprint("fila-", id))}
	}
	const retenida = 17
	drenar := func(vida string, ids ...int64) {
		t.Helper()
		store := &outboxFalso{}
		for _, id := range ids {
			store.filas = append(store.filas, fila(id))
		}
		r := NuevoRelay(OpcionesRelay{Store: store, Client: client, Replica: "r1", Esquema: func(string) string { return "" }})
		defer r.cerrarProductores()
		n, err := store.DrenarOutbox(ctx, 100, r.publicar)
		if err != nil || n != len(ids) || len(store.filas) != 0 {
			t.Fatalf("%s: drained %d of %d (err %v), %d rows left", vida, n, len(ids), err, len(store.filas))
		}
	}
	var primera, segunda []int64
	for id := int64(1); id <= 30; id++ {
		if id != retenida {
			primera = append(primera, id)
		}
	}
	drenar("first life", primera...)
	segunda = append(segunda, retenida)
	for id := int64(31); id <= 60; id++ {
		segunda = append(segunda, id)
	}
	// The restart: a new relay, new producers, the same names.
	drenar("second life", segunda...)

	type entrega struct {
		particion int
		productor string
	}
	var mu sync.Mutex
	recibidas := map[int64][]entrega{}
	total := 0
	// leer receives until esperadas messages arrived in all (or 20 s
	// passed), then for extra more, which is when a duplicate would come.
	leer := func(esperadas int, extra time.Duration) {
		rctx, fin := context.WithTimeout(ctx, 20*time.Second)
		defer fin()
		for {
			if total == esperadas {
				var fin2 context.CancelFunc
				rctx, fin2 = context.WithTimeout(ctx, extra)
				defer fin2()
				esperadas = -1
			}
			m, err := cons.Receive(rctx)
			if err != nil {
				return
			}
			cons.Ack(m)
			id, err := strconv.ParseInt(strings.TrimPrefix(string(m.Payload()), "fila-"), 10, 64)
			if err != nil {
				t.Errorf("payload %q", m.Payload())
				continue
			}
			p := 0
			if i := strings.LastIndex(m.Topic(), "-partition-"); i >= 0 {
				p, _ = strconv.Atoi(m.Topic()[i+len("-partition-"):])
			}
			mu.Lock()
			recibidas[id] = append(recibidas[id], entrega{p, m.ProducerName()})
			total++
			mu.Unlock()
		}
	}
	leer(60, time.Second)

	nombre := "r1-" + topicoCorto(topico)
	usadas := map[int]bool{}
	for id := int64(1); id <= 60; id++ {
		es := recibidas[id]
		if len(es) != 1 {
			t.Errorf("row %d delivered %d times: %v", id, len(es), es)
			continue
		}
		if want := bus.ParticionDe(fila(id).Clave, particiones); es[0].particion != want {
			t.Errorf("row %d (key %s) on partition %d, Murmur3 names %d", id, fila(id).Clave, es[0].particion, want)
		}
		usadas[es[0].particion] = true
		// The held-back row went through the unnamed producer: its
		// partition had stored higher ids under the relay's name.
		if id != retenida && es[0].productor != nombre {
			t.Errorf("row %d published by %q, want the relay's named producer %q", id, es[0].productor, nombre)
		}
	}
	if len(usadas) != particiones {
		t.Errorf("rows on partitions %v, want all %d", usadas, particiones)
	}
	if es := recibidas[retenida]; len(es) == 1 && es[0].productor == nombre {
		t.Errorf("row %d went through the named producer: the test meant it below its partition's last id", retenida)
	}

	// A third life re-sends every acknowledged row under the relay's name
	// and ids: the broker recognises each on its partition.
	r := NuevoRelay(OpcionesRelay{Store: &outboxFalso{}, Client: client, Replica: "r1", Esquema: func(string) string { return "" }})
	defer r.cerrarProductores()
	p, err := r.productor(topico, false)
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 60; id++ {
		if id == retenida {
			continue // never sent under the name
		}
		m := fila(id)
		seq := m.ID
		mid, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: m.Carga, Key: m.Clave, SequenceID: &seq})
		if err != nil {
			t.Fatalf("re-send row %d: %v", id, err)
		}
		if mid.LedgerID() >= 0 {
			t.Errorf("re-sent row %d stored again at %v: the broker did not de-duplicate it", id, mid)
		}
	}
	leer(60, 2*time.Second)
	for id, es := range recibidas {
		if len(es) != 1 {
			t.Errorf("after the re-send, row %d delivered %d times: %v", id, len(es), es)
		}
	}
}
