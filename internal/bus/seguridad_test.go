package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
)

// seguro is the secured broker and a namespace of this test's own on it.
type seguro struct {
	integracion.BrokerSeguro
	ns    string     // public/<random>
	admin *bus.Admin // as role admin
	t     *testing.T
}

func nuevoSeguro(t *testing.T) seguro {
	t.Helper()
	b := integracion.PulsarSeguro(t)
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	s := seguro{BrokerSeguro: b, ns: "seg" + hex.EncodeToString(r)}
	admin, err := bus.NuevoAdminSeguro(b.AdminURL, s.comoToken("admin"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PrepararNamespace(ctx, "public", s.ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatalf("preparar namespace como admin: %v", err)
	}
	s.admin, s.t = admin, t
	return s
}

// topico creates the topic as admin (the secured broker creates none on
// use, as production brokers) and returns its name.
func (s seguro) topico(nombre string) string {
	s.t.Helper()
	topico := "persistent://public/" + s.ns + "/" + nombre
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin.CrearTopico(ctx, topico); err != nil {
		s.t.Fatalf("crear %s como admin: %v", topico, err)
	}
	return topico
}

func (s seguro) comoToken(rol string) bus.Seguridad {
	return bus.Seguridad{Auth: bus.AuthToken, TokenFile: filepath.Join(s.Dir, rol+".token"), TrustCertsFile: filepath.Join(s.Dir, "ca.pem")}
}

func (s seguro) comoTLS(rol string) bus.Seguridad {
	return bus.Seguridad{Auth: bus.AuthTLS, CertFile: filepath.Join(s.Dir, rol+".pem"), KeyFile: filepath.Join(s.Dir, rol+".key"),
		TrustCertsFile: filepath.Join(s.Dir, "ca.pem")}
}

// token signs a JWT for rol with the broker's secret key (HS256, as
// `pulsar tokens create` does), expiring at exp when exp is not zero.
func (s seguro) token(t *testing.T, rol string, exp time.Time) string {
	return integracion.TokenDelBroker(t, s.Dir, rol, exp)
}

func escribir(t *testing.T, ruta, contenido string) {
	t.Helper()
	// Replaced as operators and secret managers do: a new file renamed over.
	if err := os.WriteFile(ruta+".tmp", []byte(contenido+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ruta+".tmp", ruta); err != nil {
		t.Fatal(err)
	}
}

func conectar(t *testing.T, url string, s bus.Seguridad) pulsar.Client {
	t.Helper()
	c, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)), bus.ConSeguridad(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// ida sends one message on topico and reads it back.
func ida(ctx context.Context, c pulsar.Client, topico, sub string) error {
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topico, SubscriptionName: sub,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		return fmt.Errorf("suscribir: %w", err)
	}
	defer cons.Close()
	p, err := bus.NuevoProductor(c, topico, "", "", bus.LotesPorClave)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("hola"), Key: "k"}); err != nil {
		return fmt.Errorf("enviar: %w", err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		return fmt.Errorf("recibir: %w", err)
	}
	if string(m.Payload()) != "hola" {
		return fmt.Errorf("recibido %q", m.Payload())
	}
	return cons.Ack(m)
}

func TestBrokerSeguroAceptaTokenYCertificadoDeCliente(t *testing.T) {
	s := nuevoSeguro(t)
	for _, c := range []struct {
		nombre string
		seg    bus.Seguridad
	}{
		{"token de admin en archivo", s.comoToken("admin")},
		{"certificado de cliente de admin (mTLS)", s.comoTLS("admin")},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.seg.Validar(s.URL, s.AdminURL); err != nil {
				t.Fatal(err)
			}
			if err := bus.ComprobarConexion(ctx, s.URL, c.seg, 10*time.Second); err != nil {
				t.Fatalf("ComprobarConexion: %v", err)
			}
			admin, err := bus.NuevoAdminSeguro(s.AdminURL, c.seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := admin.Vivo(ctx); err != nil {
				t.Fatalf("admin por https: %v", err)
			}
			if err := ida(ctx, conectar(t, s.URL, c.seg), s.topico("ida-"+c.seg.Auth), "prueba"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBrokerSeguroRechazaNombrandoLaCausa(t *testing.T) {
	s := nuevoSeguro(t)
	dir := t.TempDir()
	vencido := filepath.Join(dir, "vencido.token")
	escribir(t, vencido, s.token(t, "admin", time.Now().Add(-time.Hour)))
	falso := filepath.Join(dir, "falso.token")
	escribir(t, falso, strings.TrimSuffix(s.token(t, "admin", time.Time{}), "A")+"xyz")
	otraCA := filepath.Join(dir, "otra-ca.pem")
	// The client certificate of a role is a certificate, but no CA of the broker's.
	b, err := os.ReadFile(filepath.Join(s.Dir, "marca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	escribir(t, otraCA, string(b))

	conArchivo := func(ruta string) bus.Seguridad {
		seg := s.comoToken("admin")
		seg.TokenFile = ruta
		return seg
	}
	sinToken := s.comoToken("admin")
	sinToken.Auth, sinToken.TokenFile = bus.AuthNinguna, ""
	caAjena := s.comoToken("admin")
	caAjena.TrustCertsFile = otraCA

	for _, c := range []struct {
		nombre    string
		seg       bus.Seguridad
		causa     error
		textos    []string
		adminErrs []error
	}{
		{"sin credenciales", sinToken, bus.ErrAutenticacion, nil, []error{bus.ErrAutenticacion}},
		{"token vencido", conArchivo(vencido), bus.ErrAutenticacion, []string{"xpired"}, []error{bus.ErrAutenticacion}},
		{"token con otra firma", conArchivo(falso), bus.ErrAutenticacion, nil, []error{bus.ErrAutenticacion}},
		{"certificado del broker no firmado por la CA de confianza", caAjena, bus.ErrTLS, []string{otraCA}, []error{bus.ErrTLS}},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := bus.ComprobarConexion(ctx, s.URL, c.seg, 10*time.Second)
			t.Logf("ComprobarConexion: %v", err)
			if !errors.Is(err, c.causa) {
				t.Fatalf("ComprobarConexion = %v, want %v", err, c.causa)
			}
			for _, txt := range c.textos {
				if !strings.Contains(err.Error(), txt) {
					t.Errorf("ComprobarConexion = %v, want it to mention %q", err, txt)
				}
			}
			admin, err := bus.NuevoAdminSeguro(s.AdminURL, c.seg)
			if err != nil {
				t.Fatal(err)
			}
			err = admin.Vivo(ctx)
			t.Logf("admin: %v", err)
			for _, want := range c.adminErrs {
				if !errors.Is(err, want) {
					t.Errorf("admin.Vivo = %v, want %v", err, want)
				}
			}
		})
	}
}

// TestRolSinPermisoSobreElTopicoDeOtroServicioEsRechazadoPorAutorizacion:
// marca, allowed only on its own command topic, tries to consume
// influencer's. The refusal comes at once (not at a timeout), names the
// role, the operation and the topic, and leaves nothing running.
func TestRolSinPermisoSobreElTopicoDeOtroServicioEsRechazadoPorAutorizacion(t *testing.T) {
	s := nuevoSeguro(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := bus.NuevoAdminSeguro(s.AdminURL, s.comoToken("admin"))
	if err != nil {
		t.Fatal(err)
	}
	propio, ajeno := s.topico("comandos-marca"), s.topico("comandos-influencer")
	for _, topico := range []string{propio, ajeno, propio + "-DLQ"} {
		if err := admin.CrearTopico(ctx, topico); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.ConcederPermiso(ctx, propio, "marca", "consume"); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConcederPermiso(ctx, propio+"-DLQ", "marca", "produce"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		nombre string
		seg    bus.Seguridad
		quien  string
	}{
		{"token", s.comoToken("marca"), "el rol «marca»"},
		{"certificado de cliente", s.comoTLS("marca"), "el rol «marca»"},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			if err := bus.ComprobarConexion(ctx, s.URL, c.seg, 10*time.Second); err != nil {
				t.Fatalf("ComprobarConexion como marca: %v", err)
			}
			cliente := conectar(t, s.URL, c.seg)
			nada := func(context.Context, pulsar.Message) error { return nil }
			cctx, parar := context.WithCancel(ctx)
			defer parar()
			// Its own topic works: the refusal below is about the topic.
			k, err := bus.Consumir(cctx, cliente, bus.OpcionesConsumidor{Topico: propio, Suscripcion: "marca"}, nada)
			if err != nil {
				t.Fatalf("marca en su propio tópico: %v", err)
			}
			parar()
			k.Close()

			time.Sleep(200 * time.Millisecond) // let the closed consumer's goroutines end
			antes := runtime.NumGoroutine()
			inicio := time.Now()
			k, err = bus.Consumir(ctx, cliente, bus.OpcionesConsumidor{Topico: ajeno, Suscripcion: "marca"}, nada)
			if err == nil {
				k.Close()
				t.Fatal("marca consumió comandos-influencer")
			}
			t.Logf("Consumir (%s): %v", time.Since(inicio).Round(time.Millisecond), err)
			if d := time.Since(inicio); d > 5*time.Second {
				t.Errorf("refused after %s: want it at once", d)
			}
			want := c.quien + " no tiene permiso para consumir " + ajeno
			if !errors.Is(err, bus.ErrAutorizacion) || !strings.Contains(err.Error(), want) {
				t.Errorf("Consumir = %v, want ErrAutorizacion saying %q", err, want)
			}
			if k != nil {
				t.Errorf("Consumir returned a consumer with its error")
			}
			if err := k.Close(); err != nil { // safe on what a failed Consumir returns
				t.Errorf("Close: %v", err)
			}
			// Nothing half-started: no goroutine of a consumer loop is left.
			limite := time.Now().Add(3 * time.Second)
			for runtime.NumGoroutine() > antes && time.Now().Before(limite) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > antes {
				t.Errorf("%d goroutines after the refused Consumir, %d before", n, antes)
			}
			// The producer side says the same.
			_, err = bus.NuevoProductor(cliente, ajeno, "", "", bus.LotesPorClave)
			if want := c.quien + " no tiene permiso para producir " + ajeno; !errors.Is(err, bus.ErrAutorizacion) || err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("NuevoProductor = %v, want ErrAutorizacion saying %q", err, want)
			}
			// And the admin API.
			adminMarca, err := bus.NuevoAdminSeguro(s.AdminURL, c.seg)
			if err != nil {
				t.Fatal(err)
			}
			err = adminMarca.ActivarDeduplicacion(ctx, ajeno)
			t.Logf("admin como marca: %v", err)
			if want := c.quien + " no tiene permiso para administrar " + ajeno; !errors.Is(err, bus.ErrAutorizacion) || !errors.Is(err, bus.ErrRechazado) || !strings.Contains(err.Error(), want) {
				t.Errorf("ActivarDeduplicacion como marca = %v, want ErrAutorizacion saying %q", err, want)
			}
		})
	}
}

// The broker re-checks a connection's credentials every
// authenticationRefreshCheckSeconds (scripts/test.sh sets 5 s for the secured
// broker) and, once the token has expired, challenges the client, which
// answers with the token file's current content.
func TestArchivoDeTokenReemplazadoSeUsaSinReiniciar(t *testing.T) {
	s := nuevoSeguro(t)
	dir := t.TempDir()
	vence := time.Now().Add(6 * time.Second)
	rotado, fijo := filepath.Join(dir, "rotado.token"), filepath.Join(dir, "fijo.token")
	escribir(t, rotado, s.token(t, "admin", vence))
	escribir(t, fijo, s.token(t, "admin", vence))
	conArchivo := func(ruta string) bus.Seguridad {
		seg := s.comoToken("admin")
		seg.TokenFile = ruta
		return seg
	}
	enviar := func(p pulsar.Producer) error {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		_, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("x")})
		return err
	}
	productores := map[string]pulsar.Producer{}
	for nombre, ruta := range map[string]string{"rotado": rotado, "fijo": fijo} {
		p, err := bus.NuevoProductor(conectar(t, s.URL, conArchivo(ruta)), s.topico("rotacion-"+nombre), "", "", bus.LotesPorClave)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		if err := enviar(p); err != nil {
			t.Fatalf("%s: primer envío: %v", nombre, err)
		}
		productores[nombre] = p
	}
	escribir(t, rotado, s.token(t, "admin", time.Time{}))
	admin, err := bus.NuevoAdminSeguro(s.AdminURL, conArchivo(rotado))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(vence) + 12*time.Second)
	if err := admin.Vivo(context.Background()); err != nil {
		t.Errorf("admin con el archivo reemplazado: %v", err)
	}
	if err := enviar(productores["rotado"]); err != nil {
		t.Errorf("con el archivo reemplazado, tras vencer el primer token: %v", err)
	}
	// The control: the same client without a new token is cut off.
	if err := enviar(productores["fijo"]); err == nil {
		t.Errorf("con el token vencido y sin reemplazo, el envío funcionó: the broker did not re-check")
	} else {
		t.Logf("sin reemplazo: %v", err)
	}
}
