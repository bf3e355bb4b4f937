package api

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
)

// consultasCaidas answers like a database that is down (err) or, with err
// nil, hangs until the caller's deadline.
type consultasCaidas struct{ err error }

func (c consultasCaidas) esperar(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	<-ctx.Done()
	return fmt.Errorf("consulta: %w", ctx.Err())
}

func (c consultasCaidas) Saga(ctx context.Context, _ string) (saga.Saga, error) {
	return saga.Saga{}, c.esperar(ctx)
}

func (c consultasCaidas) Listar(ctx context.Context, _ almacen.Filtro) ([]saga.Saga, error) {
	return nil, c.esperar(ctx)
}

func (c consultasCaidas) Contar(ctx context.Context, _ almacen.Filtro) (almacen.Resumen, error) {
	return nil, c.esperar(ctx)
}

func (c consultasCaidas) Aparcados(ctx context.Context, _ int) ([]almacen.Aparcado, error) {
	return nil, c.esperar(ctx)
}

func (c consultasCaidas) ContarAparcados(ctx context.Context) (int, error) { return 0, c.esperar(ctx) }

func (c consultasCaidas) Reenviar(ctx context.Context, _ int64) (almacen.Aparcado, error) {
	return almacen.Aparcado{}, c.esperar(ctx)
}

func TestBaseDeDatosCaidaOLentaResponde503ConRetryAfterATiempo(t *testing.T) {
	rechazada := &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}
	casos := []struct {
		nombre string
		err    error
		clase  string
	}{
		{"connection refused", rechazada, "conexion_rechazada"},
		{"bad connection", fmt.Errorf("leer: %w", driver.ErrBadConn), "conexion_invalida"},
		{"hang", nil, "tiempo_agotado"},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			en := nuevoEntorno(t, func(o *Opciones) {
				o.Consultas = consultasCaidas{c.err}
				o.Outbox = consultasCaidas{c.err}
				o.PlazoAlmacen = 200 * time.Millisecond
				o.BaseDatos = func(ctx context.Context) error { return consultasCaidas{c.err}.esperar(ctx) }
				o.PlazoSalud = 200 * time.Millisecond
			})
			inicio := time.Now()
			r := en.hacer(http.MethodGet, "/api/v1/sagas", "")
			if d := time.Since(inicio); d > 2*time.Second {
				t.Fatalf("answered after %v", d)
			}
			if r.codigo != http.StatusServiceUnavailable || r.cabecera.Get("Retry-After") != "5" || !strings.Contains(r.json(t)["error"].(string), c.clase) {
				t.Fatalf("%d Retry-After=%q %s", r.codigo, r.cabecera.Get("Retry-After"), r.cuerpo)
			}
			for _, ruta := range []string{"/api/v1/outbox/aparcados", "/api/v1/outbox/aparcados/7/reenviar"} {
				metodo := http.MethodGet
				if strings.HasSuffix(ruta, "reenviar") {
					metodo = http.MethodPost
				}
				inicio = time.Now()
				r := en.hacer(metodo, ruta, "")
				if d := time.Since(inicio); d > 2*time.Second || r.codigo != http.StatusServiceUnavailable || r.cabecera.Get("Retry-After") != "5" {
					t.Fatalf("%s %s: %d after %v: %s", metodo, ruta, r.codigo, d, r.cuerpo)
				}
			}
			r = en.hacer(http.MethodGet, "/readyz", "")
			causas, _ := r.json(t)["causas"].(map[string]any)
			if r.codigo != http.StatusServiceUnavailable || causas["base_de_datos"] != c.clase || r.cabecera.Get("Retry-After") == "" {
				t.Fatalf("/readyz: %d %s", r.codigo, r.cuerpo)
			}
		})
	}
}

func TestOtroErrorDelAlmacenSigueSiendo500(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Consultas = consultasCaidas{fmt.Errorf("columna desconocida")} })
	if r := en.hacer(http.MethodGet, "/api/v1/sagas", ""); r.codigo != http.StatusInternalServerError || r.cabecera.Get("Retry-After") != "" {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
}

func TestBrokerCaidoAceptaElPostYReadyzNombraAlBroker(t *testing.T) {
	// The broker check dials a port nobody listens on; the outbox holds
	// the command, so the POST is still accepted.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := l.Addr().String()
	l.Close()
	en := nuevoEntorno(t, func(o *Opciones) {
		o.Broker = func(ctx context.Context) error {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", dir)
			if err == nil {
				c.Close()
			}
			return err
		}
	})
	r := en.hacer(http.MethodGet, "/readyz", "")
	causas, _ := r.json(t)["causas"].(map[string]any)
	if r.codigo != http.StatusServiceUnavailable || causas["broker"] != "conexion_rechazada" || causas["base_de_datos"] != nil {
		t.Fatalf("/readyz: %d %s", r.codigo, r.cuerpo)
	}
	if r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas); r.codigo != http.StatusAccepted {
		t.Fatalf("POST with the broker down: %d %s", r.codigo, r.cuerpo)
	}
}
