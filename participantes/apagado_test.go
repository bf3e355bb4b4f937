package participantes_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/participantes"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

// proxy forwards TCP to destino until Cortar, which closes the listener and
// every connection: the broker is gone.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func nuevoProxy(t *testing.T, destino string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", destino)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go io.Copy(d, c)
			go io.Copy(c, d)
		}
	}()
	t.Cleanup(p.Cortar)
	return p
}

func (p *proxy) Cortar() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestApagadoConElBrokerCaidoTerminaATiempo: a participant whose broker
// went away still stops within its shutdown bound when asked to, instead of
// waiting for the broker forever (the Go client's Close retries while it
// reconnects).
func TestApagadoConElBrokerCaidoTerminaATiempo(t *testing.T) {
	e := pt.Nuevo(t)
	e.Preparar(t, "prueba")
	px := nuevoProxy(t, strings.TrimPrefix(e.PulsarURL, "pulsar://"))
	env := map[string]string{
		"SAGAS_PULSAR_URL": "pulsar://" + px.ln.Addr().String(), "SAGAS_PULSAR_ADMIN_URL": e.AdminURL,
		"SAGAS_PULSAR_TENANT": e.Topologia.Tenant, "SAGAS_PULSAR_NAMESPACE": e.Topologia.Namespace,
		"SAGAS_DATA_DIR": t.TempDir(), "SAGAS_METRICS_ADDR": "127.0.0.1:0",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var salida buffer
	fin := make(chan error, 1)
	go func() {
		fin <- participantes.Correr(ctx, []string{"prueba"}, func(k string) string { return env[k] }, &salida, participantes.ServicioPrueba())
	}()
	for limite := time.Now().Add(plazo); !strings.Contains(salida.String(), "participante iniciado"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(limite) {
			t.Fatalf("the participant did not start:\n%s", salida.String())
		}
	}
	px.Cortar()
	time.Sleep(500 * time.Millisecond) // the client notices and starts reconnecting
	inicio := time.Now()
	cancel()
	select {
	case <-fin:
		t.Logf("stopped %s after the signal, with the broker gone", time.Since(inicio).Round(time.Millisecond))
	case <-time.After(25 * time.Second): // its shutdown bound is 15 s; Close alone took 30 s here
		t.Fatalf("the participant did not stop within 25 s of the signal with its broker gone:\n%s", salida.String())
	}
}
