package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
)

func TestNombreTopicoEsElQueEtiquetaElBroker(t *testing.T) {
	for _, c := range []struct{ nombre, topico, want string }{
		{"nombre completo", "persistent://alpespartner/sagas/comandos-marca", "persistent://alpespartner/sagas/comandos-marca"},
		{"no persistente", "non-persistent://t/ns/x", "non-persistent://t/ns/x"},
		{"nombre sin tenant ni namespace", "comandos-marca", "persistent://public/default/comandos-marca"},
		{"tenant y namespace sin dominio", "alpespartner/sagas/comandos-marca", "persistent://alpespartner/sagas/comandos-marca"},
		{"partición", "persistent://t/ns/respuestas-saga-partition-3", "persistent://t/ns/respuestas-saga"},
		{"sufijo que no es una partición", "persistent://t/ns/x-partition-a", "persistent://t/ns/x-partition-a"},
	} {
		if got := bus.NombreTopico(c.topico); got != c.want {
			t.Errorf("%s: NombreTopico(%q) = %q, want %q", c.nombre, c.topico, got, c.want)
		}
	}
}

// TestConsumidorMideCadaMensajeYCadaLlamadaPorTopico consumes five messages
// and a poison one through one worker, so the handler gets them in one or
// more batches: the per-message histogram counts every message, the batch
// histogram every handler call, and every series (the client's
// pulsar_client_* included) carries the full topic name.
func TestConsumidorMideCadaMensajeYCadaLlamadaPorTopico(t *testing.T) {
	url, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := "bus" + aleatorio()
	if err := bus.NuevoAdmin(adminURL).PrepararNamespace(ctx, "alpespartner", ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	topico := "persistent://alpespartner/" + ns + "/metricas"
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewPedanticRegistry()
	cliente, err := bus.Conectar(url, logger, bus.ConMetricas(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer cliente.Close()

	productor, err := bus.NuevoProductor(cliente, topico, "", "", bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	for _, cuerpo := range []string{"1", "2", "3", "veneno", "4", "5"} {
		if _, err := productor.Send(ctx, &pulsar.ProducerMessage{Key: "saga-1", Payload: []byte(cuerpo)}); err != nil {
			t.Fatal(err)
		}
	}
	productor.Close()

	var llamadas, mensajes atomic.Int64
	cctx, detener := context.WithCancel(ctx)
	k, err := bus.ConsumirLotes(cctx, cliente, bus.OpcionesConsumidor{
		Topico: topico, Suscripcion: "prueba", Trabajadores: 1, Logger: logger, Metricas: bus.NuevasMetricas(reg),
	}, func(_ context.Context, msgs []pulsar.Message) []error {
		time.Sleep(5 * time.Millisecond) // let the queue fill: batches of several
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			if string(m.Payload()) == "veneno" {
				errs[i] = bus.Permanente(errors.New("veneno"))
			}
		}
		llamadas.Add(1)
		mensajes.Add(int64(len(msgs)))
		return errs
	})
	if err != nil {
		t.Fatal(err)
	}
	for mensajes.Load() < 6 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	detener()
	k.Close()

	etiqueta := map[string]string{"topic": topico}
	for _, c := range []struct {
		metrica   string
		etiquetas map[string]string
		want      float64
	}{
		{"sagas_mensajes_consumidos_total", map[string]string{"topic": topico, "resultado": "ok"}, 5},
		{"sagas_mensajes_consumidos_total", map[string]string{"topic": topico, "resultado": "dead_letter"}, 1},
		{"sagas_dead_letters_total", map[string]string{"topic": topico, "clase": "permanente"}, 1},
		{"sagas_mensaje_procesamiento_seconds", etiqueta, 6},
		{"sagas_lote_procesamiento_seconds", etiqueta, float64(llamadas.Load())},
		{"pulsar_client_messages_received", etiqueta, 6},
	} {
		if got := valor(t, reg, c.metrica, c.etiquetas); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.metrica, c.etiquetas, got, c.want)
		}
	}
	t.Logf("6 mensajes en %d llamadas al manejador", llamadas.Load())
}

func TestConectarRegistraLasMetricasDelClienteSoloDondeSeLePide(t *testing.T) {
	globales := func() int {
		n := 0
		for _, m := range nombres(t, prometheus.DefaultGatherer) {
			if strings.HasPrefix(m, "pulsar_client_") {
				n++
			}
		}
		return n
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		nombre         string
		registrar      bool
		wantEnRegistro bool
	}{
		{"sin ConMetricas, en ningún registro servido", false, false},
		{"con ConMetricas, en el registro del proceso", true, true},
	} {
		reg := prometheus.NewPedanticRegistry()
		var opciones []bus.OpcionConexion
		if c.registrar {
			opciones = append(opciones, bus.ConMetricas(reg))
		}
		antes := globales()
		// The client registers its metrics on creation, before connecting.
		cliente, err := bus.Conectar("pulsar://127.0.0.1:1", logger, opciones...)
		if err != nil {
			t.Fatal(err)
		}
		cliente.Close()
		enRegistro := slices.Contains(nombres(t, reg), "pulsar_client_connections_opened")
		if enRegistro != c.wantEnRegistro {
			t.Errorf("%s: pulsar_client_connections_opened in the registry: %v, want %v", c.nombre, enRegistro, c.wantEnRegistro)
		}
		if despues := globales(); despues != antes {
			t.Errorf("%s: %d pulsar_client_* metrics in prometheus.DefaultRegisterer, before %d", c.nombre, despues, antes)
		}
	}
}

// valor is the counter's value, or the histogram's sample count, summed over
// the series of metrica whose labels include etiquetas.
func valor(t *testing.T, g prometheus.Gatherer, metrica string, etiquetas map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range fams {
		if f.GetName() != metrica {
			continue
		}
		for _, m := range f.GetMetric() {
			if !incluye(m, etiquetas) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func incluye(m *dto.Metric, etiquetas map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := etiquetas[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(etiquetas)
}

func nombres(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		out = append(out, f.GetName())
	}
	return out
}

func aleatorio() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}
