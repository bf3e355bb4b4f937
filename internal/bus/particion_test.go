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
// keyed messages through NuevoProductor to a 3-partition topic read by five
// consumers of one Key_Shared subscription: every message arrives once, on
// the partition Murmur3 of its key names, every key at one consumer and in
// order, and every consumer gets keys (each partition's Key_Shared
// subscription splits its keys among all five).
func TestKeySharedSobreParticionesConMasConsumidoresQueParticiones(t *testing.T) {
	url, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ns := "par" + aleatorio()
	a := bus.NuevoAdmin(adminURL)
	if err := a.PrepararNamespace(ctx, "alpespartner", ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	const particiones, consumidores, claves, porClave = 3, 5, 60, 5
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
	total := 0
	listo := make(chan struct{})
	var wg sync.WaitGroup
	cctx, detener := context.WithCancel(ctx)
	defer detener()
	for i := range consumidores {
		c, err := cliente.Subscribe(pulsar.ConsumerOptions{
			Topic: topico, SubscriptionName: "coordinador", Type: pulsar.KeyShared,
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
				mu.Lock()
				porClaveRecibidos[m.Key()] = append(porClaveRecibidos[m.Key()], recibido{i, particionDe(t, m.Topic()), orden})
				total++
				if total == claves*porClave {
					close(listo)
				}
				mu.Unlock()
			}
		}()
	}

	p, err := bus.NuevoProductor(cliente, topico, "", "")
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
		t.Fatalf("received %d of %d messages", total, claves*porClave)
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
}
