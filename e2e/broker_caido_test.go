package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/sistema"
)

// corte is a TCP proxy that can play a broker that went away: cortar closes
// every connection and refuses new ones; sanar forwards again.
type corte struct {
	ln      net.Listener
	destino string
	mu      sync.Mutex
	cortado bool
	conns   map[net.Conn]bool
}

func nuevoCorte(t *testing.T, destino string) *corte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &corte{ln: ln, destino: destino, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); c.cortar() })
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			go c.reenviar(a)
		}
	}()
	return c
}

func (c *corte) direccion() string { return c.ln.Addr().String() }

func (c *corte) reenviar(a net.Conn) {
	c.mu.Lock()
	if c.cortado {
		c.mu.Unlock()
		a.Close()
		return
	}
	c.mu.Unlock()
	b, err := net.DialTimeout("tcp", c.destino, 5*time.Second)
	if err != nil {
		a.Close()
		return
	}
	c.mu.Lock()
	if c.cortado {
		c.mu.Unlock()
		a.Close()
		b.Close()
		return
	}
	c.conns[a], c.conns[b] = true, true
	c.mu.Unlock()
	go func() { io.Copy(b, a); b.Close(); a.Close() }()
	io.Copy(a, b)
	a.Close()
	b.Close()
}

func (c *corte) cortar() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cortado = true
	for k := range c.conns {
		k.Close()
	}
	c.conns = map[net.Conn]bool{}
}

func (c *corte) sanar() {
	c.mu.Lock()
	c.cortado = false
	c.mu.Unlock()
}

// While the broker is unreachable the API still accepts a saga (its command
// waits in the outbox) and /readyz says the broker is why it is not ready;
// once the broker is back the saga completes. On both stores (issue 24,
// item 4). Every process reaches the broker through a proxy of the test.
func TestBrokerCaidoElPostSeAceptaYReadyzLoDice(t *testing.T) {
	for _, a := range []string{"sqlite", "mysql"} {
		t.Run(a, func(t *testing.T) {
			pulsarURL, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
			binario := nuevoCorte(t, strings.TrimPrefix(pulsarURL, "pulsar://"))
			admin := nuevoCorte(t, strings.TrimPrefix(adminURL, "http://"))
			s := sistema.Arrancar(t, sistema.Opciones{Almacen: a, Extra: map[string]string{
				"SAGAS_PULSAR_URL": "pulsar://" + binario.direccion(), "SAGAS_PULSAR_ADMIN_URL": "http://" + admin.direccion(),
				"SAGAS_LOG_LEVEL": "info",
			}})
			ctx := context.Background()
			binario.cortar()
			admin.cortar()

			inicio := time.Now()
			code, b, err := s.Post(ctx, "/campana-saga", fmt.Sprintf(cuerpoCampana, ""))
			if err != nil || code != 202 {
				t.Fatalf("POST with the broker down: %d %v %s, want 202", code, err, b)
			}
			if d := time.Since(inicio); d > 10*time.Second {
				t.Errorf("POST with the broker down took %s", d)
			}
			id := decodificar(t, b).ID

			fin := time.Now().Add(30 * time.Second)
			for {
				code, b, err := s.Get(ctx, "/readyz")
				var r struct {
					Estado string            `json:"estado"`
					Causas map[string]string `json:"causas"`
				}
				if err == nil && code == 503 && json.Unmarshal(b, &r) == nil && r.Causas["broker"] != "" {
					if _, ok := r.Causas["base_de_datos"]; ok {
						t.Errorf("/readyz blames the database too: %s", b)
					}
					break
				}
				if time.Now().After(fin) {
					t.Fatalf("/readyz with the broker down: %d %v %s; want 503 naming the broker", code, err, b)
				}
				time.Sleep(500 * time.Millisecond)
			}
			if code, b, _ := s.Get(ctx, "/saga/"+id+"/estado"); code != 200 || decodificar(t, b).Estado == "COMPLETADA" {
				t.Fatalf("saga %s with the broker down: %d %s", id, code, b)
			}

			binario.sanar()
			admin.sanar()
			fin = time.Now().Add(120 * time.Second)
			for {
				code, b, _ := s.Get(ctx, "/saga/"+id+"/estado")
				if code == 200 {
					if e := decodificar(t, b).Estado; e == "COMPLETADA" || e == "COMPENSADA" || e == "COMPENSACION_FALLIDA" {
						if e != "COMPLETADA" {
							t.Errorf("saga %s ended %s once the broker was back: %s", id, e, b)
						}
						break
					}
				}
				if time.Now().After(fin) {
					t.Fatalf("saga %s not ended 120 s after the broker came back: %d %s", id, code, b)
				}
				time.Sleep(500 * time.Millisecond)
			}
			if code, _, _ := s.Get(ctx, "/readyz"); code != 200 {
				t.Errorf("/readyz after the broker came back: %d", code)
			}
		})
	}
}
