package bus_test

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alpespartner/sagas/internal/bus"
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
