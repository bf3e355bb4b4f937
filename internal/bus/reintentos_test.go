package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
)

func TestEsperaCreceDoblandoHastaElTope(t *testing.T) {
	r := bus.Reintentos{Maximo: 5, Inicial: 100 * time.Millisecond, Tope: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		if got := r.Espera(i + 1); got != w*time.Millisecond {
			t.Errorf("Espera(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := r.Espera(1000); got != time.Second {
		t.Errorf("Espera(1000) = %v, want the cap 1s (no overflow)", got)
	}
	d := bus.Reintentos{}
	if got := []time.Duration{d.Espera(1), d.Espera(2), d.Espera(7), d.Espera(8)}; got[0] != time.Second ||
		got[1] != 2*time.Second || got[2] != time.Minute || got[3] != time.Minute {
		t.Errorf("default waits %v, want 1s 2s 1m 1m", got)
	}
}

func TestAgotadosTrasMaximoReentregas(t *testing.T) {
	r := bus.Reintentos{Maximo: 3}
	for fallos, want := range map[int]bool{1: false, 3: false, 4: true, 9: true} {
		if got := r.Agotados(fallos); got != want {
			t.Errorf("Maximo 3: Agotados(%d) = %v, want %v", fallos, got, want)
		}
	}
	if (bus.Reintentos{}).Agotados(10) || !(bus.Reintentos{}).Agotados(11) {
		t.Error("the zero value must allow 10 redeliveries, then dead-letter")
	}
}

type errorDeRed struct{ plazo bool }

func (e errorDeRed) Error() string   { return "red" }
func (e errorDeRed) Timeout() bool   { return e.plazo }
func (e errorDeRed) Temporary() bool { return false }

var _ net.Error = errorDeRed{}

func TestClasificarPorTipoNoPorTexto(t *testing.T) {
	for _, c := range []struct {
		nombre string
		err    error
		want   bus.Clase
	}{
		{"marcado permanente", bus.Permanente(errors.New("id demasiado largo")), bus.ClasePermanente},
		{"permanente envuelto", fmt.Errorf("respuesta r1: %w", bus.Permanente(errors.New("x"))), bus.ClasePermanente},
		{"ErrPermanente envuelto", fmt.Errorf("x: %w", bus.ErrPermanente), bus.ClasePermanente},
		{"plazo de contexto", fmt.Errorf("aplicar: %w", context.DeadlineExceeded), bus.ClasePlazo},
		{"plazo de red", fmt.Errorf("mysql: %w", errorDeRed{plazo: true}), bus.ClasePlazo},
		{"red sin plazo", errorDeRed{}, bus.ClaseTransitoria},
		{"el texto no cuenta", errors.New("mensaje no procesable"), bus.ClaseTransitoria},
		{"archivo", os.ErrClosed, bus.ClaseTransitoria},
	} {
		if got := bus.Clasificar(c.err); got != c.want {
			t.Errorf("%s: Clasificar(%v) = %s, want %s", c.nombre, c.err, got, c.want)
		}
	}
}

// entorno is a fresh namespace and a client for one broker test.
func entorno(t *testing.T) (pulsar.Client, string, *prometheus.Registry) {
	t.Helper()
	url, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ns := "bus" + aleatorio()
	if err := bus.NuevoAdmin(adminURL).PrepararNamespace(t.Context(), "alpespartner", ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	cliente, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cliente.Close)
	return cliente, "persistent://alpespartner/" + ns + "/", reg
}

func enviar(t *testing.T, c pulsar.Client, topico string, msgs ...[2]string) {
	t.Helper()
	p, err := bus.NuevoProductor(c, topico, "", "", bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, m := range msgs {
		if _, err := p.Send(t.Context(), &pulsar.ProducerMessage{Key: m[0], Payload: []byte(m[1])}); err != nil {
			t.Fatal(err)
		}
	}
}

// leerDLQ reads n dead letters of topico.
func leerDLQ(t *testing.T, c pulsar.Client, topico string, n int) []pulsar.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	k, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topico + "-DLQ", SubscriptionName: "prueba",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	var out []pulsar.Message
	for len(out) < n {
		m, err := k.Receive(ctx)
		if err != nil {
			t.Fatalf("dead letters of %s: %d of %d: %v", topico, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// TestMensajeVenenoVaAlDLQAlInstanteConElMotivo: a permanent error is
// handled once, never retried, and its dead letter says why.
func TestMensajeVenenoVaAlDLQAlInstanteConElMotivo(t *testing.T) {
	cliente, base, reg := entorno(t)
	topico := base + "veneno"
	enviar(t, cliente, topico, [2]string{"saga-1", "veneno"})
	var llamadas sync.Map
	ctx, detener := context.WithCancel(t.Context())
	inicio := time.Now()
	k, err := bus.Consumir(ctx, cliente, bus.OpcionesConsumidor{Topico: topico, Suscripcion: "s", Metricas: bus.NuevasMetricas(reg),
		Reintentos: bus.Reintentos{Maximo: 5, Inicial: 10 * time.Second}},
		func(_ context.Context, m pulsar.Message) error {
			n, _ := llamadas.LoadOrStore(string(m.Payload()), new(int))
			*n.(*int)++
			return fmt.Errorf("guardar: %w", bus.Permanente(errors.New("clave de inbox de 300 caracteres (máximo 255)")))
		})
	if err != nil {
		t.Fatal(err)
	}
	dl := leerDLQ(t, cliente, topico, 1)[0]
	espera := time.Since(inicio)
	detener()
	k.Close()
	if espera > 5*time.Second {
		t.Errorf("dead-lettered after %v: a permanent error must not wait for a retry (first retry after 10s)", espera)
	}
	n, _ := llamadas.Load("veneno")
	if *n.(*int) != 1 {
		t.Errorf("handler called %d times, want 1", *n.(*int))
	}
	p := dl.Properties()
	if p[bus.PropClase] != "permanente" || p[bus.PropReentregas] != "0" ||
		p[bus.PropMotivo] != "guardar: mensaje no procesable: clave de inbox de 300 caracteres (máximo 255)" {
		t.Errorf("dead letter properties %v", p)
	}
	if string(dl.Payload()) != "veneno" || dl.Key() != "saga-1" {
		t.Errorf("dead letter %q key %q, want the message untouched", dl.Payload(), dl.Key())
	}
	if got := valor(t, reg, "sagas_dead_letters_total", map[string]string{"topic": topico, "clase": "permanente"}); got != 1 {
		t.Errorf("sagas_dead_letters_total{clase=permanente} = %v, want 1", got)
	}
	if got := valor(t, reg, "sagas_mensajes_reintentados_total", map[string]string{"topic": topico}); got != 0 {
		t.Errorf("sagas_mensajes_reintentados_total = %v, want 0", got)
	}
}

// TestFalloTransitorioSeReintentaConEsperasCrecientesYLuegoVaAlDLQ: a
// message that keeps failing is delivered 1+Maximo times with doubling
// waits, then dead-lettered with its history; the next message of its key
// waits behind it, while another key goes on at once.
func TestFalloTransitorioSeReintentaConEsperasCrecientesYLuegoVaAlDLQ(t *testing.T) {
	cliente, base, reg := entorno(t)
	topico := base + "transitorio"
	enviar(t, cliente, topico, [2]string{"saga-1", "falla"}, [2]string{"saga-1", "despues"}, [2]string{"saga-2", "otra"})
	var mu sync.Mutex
	var orden []string
	var intentos []time.Time
	ctx, detener := context.WithCancel(t.Context())
	k, err := bus.Consumir(ctx, cliente, bus.OpcionesConsumidor{Topico: topico, Suscripcion: "s", Trabajadores: 1,
		Metricas: bus.NuevasMetricas(reg), Reintentos: bus.Reintentos{Maximo: 3, Inicial: 300 * time.Millisecond, Tope: 700 * time.Millisecond}},
		func(_ context.Context, m pulsar.Message) error {
			mu.Lock()
			defer mu.Unlock()
			orden = append(orden, string(m.Payload()))
			if string(m.Payload()) == "falla" {
				intentos = append(intentos, time.Now())
				return fmt.Errorf("base de datos: intento %d: %w", len(intentos), context.DeadlineExceeded)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	dl := leerDLQ(t, cliente, topico, 1)[0]
	for fin := time.Now().Add(10 * time.Second); time.Now().Before(fin); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(orden)
		mu.Unlock()
		if n >= 6 {
			break
		}
	}
	detener()
	k.Close()

	mu.Lock()
	defer mu.Unlock()
	want := []string{"falla", "otra", "falla", "falla", "falla", "despues"}
	if fmt.Sprint(orden) != fmt.Sprint(want) {
		t.Errorf("handler saw %v, want %v: saga-1's next message after its dead letter, saga-2 not blocked", orden, want)
	}
	if len(intentos) != 4 {
		t.Fatalf("%d deliveries of the failing message, want 1+3", len(intentos))
	}
	for i, minimo := range []time.Duration{300, 600, 700} {
		espera := intentos[i+1].Sub(intentos[i])
		if espera < minimo*time.Millisecond || espera > minimo*time.Millisecond+time.Second {
			t.Errorf("wait before redelivery %d: %v, want about %v", i+1, espera, minimo*time.Millisecond)
		}
	}
	p := dl.Properties()
	if p[bus.PropClase] != "reintentos_agotados" || p[bus.PropReentregas] != "3" ||
		p[bus.PropMotivo] != "base de datos: intento 4: context deadline exceeded" ||
		p[bus.PropPrimerError] != "base de datos: intento 1: context deadline exceeded" || p[bus.PropTopicoOrigen] != topico {
		t.Errorf("dead letter properties %v", p)
	}
	primero, err1 := time.Parse(time.RFC3339Nano, p[bus.PropPrimerFallo])
	ultimo, err2 := time.Parse(time.RFC3339Nano, p[bus.PropUltimoFallo])
	if err1 != nil || err2 != nil || ultimo.Sub(primero) < 1500*time.Millisecond {
		t.Errorf("first failure %q, last %q: want times 0.3+0.6+0.7s apart", p[bus.PropPrimerFallo], p[bus.PropUltimoFallo])
	}
	for _, c := range []struct {
		metrica   string
		etiquetas map[string]string
		want      float64
	}{
		{"sagas_mensajes_reintentados_total", map[string]string{"topic": topico, "clase": "plazo"}, 3},
		{"sagas_dead_letters_total", map[string]string{"topic": topico, "clase": "reintentos_agotados"}, 1},
		{"sagas_mensajes_consumidos_total", map[string]string{"topic": topico, "resultado": "ok"}, 2},
	} {
		if got := valor(t, reg, c.metrica, c.etiquetas); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metrica, c.etiquetas, got, c.want)
		}
	}
}

func TestRechazoDefinitivoSoloLoQueReenviarNoCura(t *testing.T) {
	for _, c := range []struct {
		nombre string
		err    error
		want   bool
	}{
		{"esquema incompatible", errors.New("server error: IncompatibleSchema: org.apache.pulsar.broker.service.schema.exceptions.IncompatibleSchemaException"), true},
		{"tópico inexistente", errors.New("TopicNotFound"), true},
		{"tópico inexistente envuelto", fmt.Errorf("productor de x: %w", bus.ErrTopicoInexistente), true},
		{"sin permiso", errors.New("server error: AuthorizationError: Proxy Client is not authorized to Produce"), true},
		{"sin permiso, envuelto", fmt.Errorf("x: %w", bus.ErrAutorizacion), true},
		{"plazo", fmt.Errorf("productor de x: %w", context.DeadlineExceeded), false},
		{"conexión", errors.New("connection error: dial tcp 127.0.0.1:6650: connect: connection refused"), false},
		{"nada", nil, false},
	} {
		if got := bus.RechazoDefinitivo(c.err); got != c.want {
			t.Errorf("%s: RechazoDefinitivo(%v) = %v, want %v", c.nombre, c.err, got, c.want)
		}
	}
}
