package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
)

// TestParticionDeEsMurmur3 pins the hash to MurmurHash3_x86_32 with seed 0
// (the published test vectors), the scheme other languages' producers must
// use to agree with ours.
func TestParticionDeEsMurmur3(t *testing.T) {
	for _, c := range []struct {
		clave string
		hash  int
	}{
		{"", 0}, {"a", 1009084850}, {"abcd", 1139631978}, {"hello world", 1586663183},
		// The sign bit is cleared, as the Java client does.
		{"ab", 2613040991 & 0x7fffffff}, {"abc", 3017643002 & 0x7fffffff},
	} {
		if got := bus.ParticionDe(c.clave, math.MaxInt32); got != c.hash%math.MaxInt32 {
			t.Errorf("ParticionDe(%q) = %d, want %d", c.clave, got, c.hash)
		}
	}
	if got := bus.ParticionDe("cualquiera", 1); got != 0 {
		t.Errorf("one partition: %d", got)
	}
}

// particionDe parses the partition index out of a partition's topic name.
func particionDe(t *testing.T, topico string) int {
	t.Helper()
	i := strings.LastIndex(topico, "-partition-")
	if i < 0 {
		t.Fatalf("%s is not a partition's name", topico)
	}
	n, err := strconv.Atoi(topico[i+len("-partition-"):])
	if err != nil {
		t.Fatalf("%s: %v", topico, err)
	}
	return n
}

// TestKeySharedSobreParticionesConMasConsumidoresQueParticiones publishes
// keyed messages through a key-batching NuevoProductor to a 3-partition
// topic read by five consumers of one Key_Shared subscription: every message
// arrives once, on the partition Murmur3 of its key names, every key at one
// consumer and in order, and every consumer gets keys (each partition's
// Key_Shared subscription splits its keys among all five).
func TestKeySharedSobreParticionesConMasConsumidoresQueParticiones(t *testing.T) {
	r := repartir(t, pulsar.KeyShared, 5, bus.LotesPorClave)
	for entrada, claves := range r.entradas {
		if len(claves) > 1 {
			t.Errorf("entry %v holds keys %v: a key-based batch mixed keys", entrada, claves)
		}
	}
}

// TestFailoverConLotesMixtosSobreParticiones is the reply topic's setting:
// replies batched across keys (LotesMixtos) on a 3-partition topic read by
// two consumers of one Failover subscription. Every message arrives once, on
// its key's partition, every key at one consumer and in order, both
// consumers get partitions, and batches did join several keys in one entry
// (what the setting is for).
func TestFailoverConLotesMixtosSobreParticiones(t *testing.T) {
	r := repartir(t, pulsar.Failover, 2, bus.LotesMixtos)
	mixtas := 0
	for _, claves := range r.entradas {
		if len(claves) > 1 {
			mixtas++
		}
	}
	if mixtas == 0 {
		t.Errorf("no entry of the %d held two keys: the producer did not batch across keys", len(r.entradas))
	}
	t.Logf("%d entries for %d messages, %d of them with several keys", len(r.entradas), r.mensajes, mixtas)
}

// reparto is what repartir's consumers received: the keys of each broker
// entry (partition, ledger, entry).
type reparto struct {
	entradas map[[3]int64]map[string]bool
	mensajes int
}

// repartir publishes 5 messages for each of 60 keys through NuevoProductor
// (lotes) to a new 3-partition topic read by consumidores consumers of one
// subscription of type tipo, and checks what any setting must keep: every
// message once, on the partition Murmur3 of its key names, every key at one
// consumer and in order, keys on every partition, and every consumer used.
func repartir(t *testing.T, tipo pulsar.SubscriptionType, consumidores int, lotes bus.Lotes) reparto {
	t.Helper()
	url, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ns := "par" + aleatorio()
	a := bus.NuevoAdmin(adminURL)
	if err := a.PrepararNamespace(ctx, "alpespartner", ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	const particiones, claves, porClave = 3, 60, 5
	topico := "persistent://alpespartner/" + ns + "/respuestas"
	if err := a.CrearTopicoParticionado(ctx, topico, particiones); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Particiones(ctx, topico); err != nil || n != particiones {
		t.Fatalf("Particiones = %d, %v", n, err)
	}
	cliente, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cliente.Close()

	type recibido struct {
		consumidor, particion, orden int
	}
	var mu sync.Mutex
	porClaveRecibidos := map[string][]recibido{}
	r := reparto{entradas: map[[3]int64]map[string]bool{}}
	listo := make(chan struct{})
	var wg sync.WaitGroup
	cctx, detener := context.WithCancel(ctx)
	defer detener()
	for i := range consumidores {
		c, err := cliente.Subscribe(pulsar.ConsumerOptions{
			Topic: topico, SubscriptionName: "coordinador", Type: tipo,
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := c.Receive(cctx)
				if err != nil {
					return
				}
				c.Ack(m)
				orden, _ := strconv.Atoi(string(m.Payload()))
				particion := particionDe(t, m.Topic())
				entrada := [3]int64{int64(particion), m.ID().LedgerID(), m.ID().EntryID()}
				mu.Lock()
				porClaveRecibidos[m.Key()] = append(porClaveRecibidos[m.Key()], recibido{i, particion, orden})
				if r.entradas[entrada] == nil {
					r.entradas[entrada] = map[string]bool{}
				}
				r.entradas[entrada][m.Key()] = true
				r.mensajes++
				if r.mensajes == claves*porClave {
					close(listo)
				}
				mu.Unlock()
			}
		}()
	}

	p, err := bus.NuevoProductor(cliente, topico, "", "", lotes)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var errs []error
	var errMu sync.Mutex
	for orden := range porClave {
		for k := range claves {
			p.SendAsync(ctx, &pulsar.ProducerMessage{Key: fmt.Sprintf("saga-%03d", k), Payload: []byte(strconv.Itoa(orden))},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						errMu.Lock()
						errs = append(errs, err)
						errMu.Unlock()
					}
				})
		}
	}
	if err := p.FlushWithCtx(ctx); err != nil || len(errs) > 0 {
		t.Fatalf("publish: %v %v", err, errs)
	}
	select {
	case <-listo:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("received %d of %d messages", r.mensajes, claves*porClave)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	detener()
	wg.Wait()

	usados := map[int]int{}
	porParticion := map[int]int{}
	for clave, rs := range porClaveRecibidos {
		if len(rs) != porClave {
			t.Errorf("%s: received %d times, want %d: %v", clave, len(rs), porClave, rs)
			continue
		}
		want := bus.ParticionDe(clave, particiones)
		for i, r := range rs {
			if r.particion != want {
				t.Errorf("%s landed on partition %d, Murmur3 names %d", clave, r.particion, want)
			}
			if r.consumidor != rs[0].consumidor {
				t.Errorf("%s went to consumers %d and %d", clave, rs[0].consumidor, r.consumidor)
			}
			if r.orden != i {
				t.Errorf("%s out of order: %v", clave, rs)
				break
			}
		}
		usados[rs[0].consumidor]++
		porParticion[want]++
	}
	if len(porClaveRecibidos) != claves {
		t.Errorf("%d keys received, want %d", len(porClaveRecibidos), claves)
	}
	if len(porParticion) != particiones {
		t.Errorf("keys per partition: %v, want keys on all %d", porParticion, particiones)
	}
	if len(usados) != consumidores {
		t.Errorf("keys per consumer: %v, want every one of the %d consumers used", usados, consumidores)
	}
	t.Logf("keys per partition %v, keys per consumer %v", porParticion, usados)
	return r
}
