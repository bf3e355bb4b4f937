package api

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/internal/integracion"
)

// proxy forwards TCP to destino and can silently drop everything (colgar),
// as a partition does, or refuse and cut every connection (cortar).
type proxy struct {
	t       *testing.T
	destino string
	dir     string
	colgado atomic.Bool
	mu      sync.Mutex
	l       net.Listener
	conns   []net.Conn
}

func nuevoProxy(t *testing.T, destino string) *proxy {
	p := &proxy{t: t, destino: destino}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = l.Addr().String()
	p.servir(l)
	t.Cleanup(p.cortar)
	return p
}

func (p *proxy) servir(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.unir(c)
		}
	}()
}

func (p *proxy) unir(c net.Conn) {
	d, err := net.Dial("tcp", p.destino)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, d)
	p.mu.Unlock()
	copiar := func(a, b net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := b.Read(buf)
			if n > 0 && !p.colgado.Load() {
				if _, err := a.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				a.Close()
				return
			}
		}
	}
	go copiar(d, c)
	go copiar(c, d)
}

// cortar closes the listener (connection refused) and every connection.
func (p *proxy) cortar() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// sanar listens again on the same address and forwards again.
func (p *proxy) sanar() {
	p.colgado.Store(false)
	l, err := net.Listen("tcp", p.dir)
	if err != nil {
		p.t.Fatal(err)
	}
	p.servir(l)
}

func TestMariaDBCaidaOColgadaDetrasDeUnProxyResponde503ATiempoYSeRecupera(t *testing.T) {
	cfg := integracion.BaseMySQL(t, "api_degradado_")
	p := nuevoProxy(t, cfg.Addr)
	cfg.Addr = p.dir
	cfg.Timeout = time.Second // dial timeout, one of the DSN timeouts the note asks for
	store, err := almacen.Abrir(context.Background(), almacen.Config{Tipo: "mysql", DSN: cfg.FormatDSN()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	const plazo = 300 * time.Millisecond
	en := nuevoEntorno(t, func(o *Opciones) {
		o.Consultas, o.BaseDatos, o.PlazoAlmacen, o.PlazoSalud = store, store.Ping, plazo, plazo
	})
	pedir := func(ruta string, quiero int, clase string) {
		t.Helper()
		inicio := time.Now()
		r := en.hacer(http.MethodGet, ruta, "")
		if d := time.Since(inicio); d > plazo+2*time.Second {
			t.Fatalf("%s answered after %v", ruta, d)
		}
		if r.codigo != quiero {
			t.Fatalf("%s: %d, want %d: %s", ruta, r.codigo, quiero, r.cuerpo)
		}
		if quiero == http.StatusServiceUnavailable && r.cabecera.Get("Retry-After") == "" {
			t.Fatalf("%s: 503 without Retry-After", ruta)
		}
		if clase != "" && ruta == "/readyz" {
			if causas, _ := r.json(t)["causas"].(map[string]any); causas["base_de_datos"] == nil {
				t.Fatalf("/readyz names no cause: %s", r.cuerpo)
			}
		}
	}
	pedir("/api/v1/sagas", http.StatusOK, "")
	pedir("/readyz", http.StatusOK, "")

	p.colgado.Store(true) // a partition: packets vanish, nothing is refused
	pedir("/api/v1/sagas", http.StatusServiceUnavailable, "")
	pedir("/readyz", http.StatusServiceUnavailable, "tiempo_agotado")

	p.cortar() // the server is gone: connections cut, new ones refused
	pedir("/api/v1/sagas", http.StatusServiceUnavailable, "")
	pedir("/readyz", http.StatusServiceUnavailable, "conexion")

	p.sanar()
	plazoSanar := time.Now().Add(10 * time.Second)
	for {
		r := en.hacer(http.MethodGet, "/api/v1/sagas", "")
		if r.codigo == http.StatusOK {
			break
		}
		if time.Now().After(plazoSanar) {
			t.Fatalf("after healing still %d: %s", r.codigo, r.cuerpo)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
