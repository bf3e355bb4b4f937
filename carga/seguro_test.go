package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/integracion"
)

// mundoSeguro is a namespace of this test's own on the secured broker where
// role carga may produce and consume, and the settings of each credential.
type mundoSeguro struct {
	integracion.BrokerSeguro
	ns    string
	admin *bus.Admin
}

func nuevoMundoSeguro(t *testing.T) mundoSeguro {
	t.Helper()
	b := integracion.PulsarSeguro(t)
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	m := mundoSeguro{BrokerSeguro: b, ns: "carga" + hex.EncodeToString(r)}
	var err error
	m.admin, err = bus.NuevoAdminSeguro(b.AdminURL, bus.Seguridad{Auth: bus.AuthToken,
		TokenFile: filepath.Join(b.Dir, "admin.token"), TrustCertsFile: filepath.Join(b.Dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.admin.PrepararNamespace(ctx, "public", m.ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	// The secured broker creates no topic on use; carga's bounds name
	// topics at random, so its namespace allows it, as an operator would
	// set up a namespace for load tests.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.admin.URL+"/admin/v2/namespaces/public/"+m.ns+"/autoTopicCreation",
		strings.NewReader(`{"allowAutoTopicCreation":true,"topicType":"non-partitioned"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.admin.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("autoTopicCreation on public/%s: %s", m.ns, resp.Status)
	}
	return m
}

// conceder grants rol the actions on the whole namespace, as an operator
// would for carga (its bounds create topics of random names).
func (m mundoSeguro) conceder(t *testing.T, ns, rol string, acciones ...string) {
	t.Helper()
	b, _ := json.Marshal(acciones)
	req, _ := http.NewRequest(http.MethodPost, m.admin.URL+"/admin/v2/namespaces/public/"+ns+"/permissions/"+rol, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.admin.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("grant %v on public/%s to %s: %s", acciones, ns, rol, resp.Status)
	}
}

// entorno is carga's environment for the secured broker with these
// credential variables.
func (m mundoSeguro) entorno(credenciales map[string]string) func(string) string {
	env := map[string]string{
		"SAGAS_PULSAR_URL":                  m.URL,
		"SAGAS_PULSAR_ADMIN_URL":            m.AdminURL,
		"SAGAS_PULSAR_TLS_TRUST_CERTS_FILE": filepath.Join(m.Dir, "ca.pem"),
	}
	for k, v := range credenciales {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

func (m mundoSeguro) comoToken(archivo string) map[string]string {
	return map[string]string{"SAGAS_PULSAR_AUTH": "token", "SAGAS_PULSAR_TOKEN_FILE": archivo}
}

func (m mundoSeguro) comoTLS(rol string) map[string]string {
	return map[string]string{"SAGAS_PULSAR_AUTH": "tls",
		"SAGAS_PULSAR_TLS_CERT_FILE": filepath.Join(m.Dir, rol+".pem"), "SAGAS_PULSAR_TLS_KEY_FILE": filepath.Join(m.Dir, rol+".key")}
}

// coordinadorFalso answers POST /campana-saga with 202 and a new saga id and
// publishes that saga's outcome on the namespace's eventos-saga, as the
// coordinator would once the saga completes.
func (m mundoSeguro) coordinadorFalso(t *testing.T) *httptest.Server {
	t.Helper()
	c, err := bus.Conectar(m.URL, slog.New(slog.NewTextHandler(io.Discard, nil)), bus.ConSeguridad(bus.Seguridad{Auth: bus.AuthToken,
		TokenFile: filepath.Join(m.Dir, "admin.token"), TrustCertsFile: filepath.Join(m.Dir, "ca.pem")}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	topo := eventos.Topologia{Tenant: "public", Namespace: m.ns}
	p, err := bus.NuevoProductor(c, topo.Eventos(), "", "", bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	codec, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/campana-saga" {
			http.NotFound(w, r)
			return
		}
		id := fmt.Sprintf("saga-%s-%d", m.ns, n.Add(1))
		b, err := codec.Codificar(eventos.Evento{ID: id, Type: "SagaCompletada.v1", SagaID: id, TipoSaga: "campana", Estado: "COMPLETADA"})
		if err == nil {
			_, err = p.Send(r.Context(), &pulsar.ProducerMessage{Key: id, Payload: b})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id_saga":%q}`, id)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tokenFirmado is a JWT for rol signed HS256 with clave, as `pulsar tokens
// create` signs them.
func tokenFirmado(t *testing.T, clave []byte, rol string) string {
	return integracion.Token(rol, clave, time.Time{})
}

func escribirArchivo(t *testing.T, contenido string) string {
	t.Helper()
	ruta := filepath.Join(t.TempDir(), "archivo")
	if err := os.WriteFile(ruta, []byte(contenido), 0o600); err != nil {
		t.Fatal(err)
	}
	return ruta
}

// TestCargaUsaLasCredencialesDelBrokerSeguroComoRolCarga runs carga end to
// end as role carga (a token, then a client certificate) against the
// secured broker: it reads the outcomes of the sagas it starts over
// pulsar+ssl, and its broker bound publishes and consumes through the same
// client.
func TestCargaUsaLasCredencialesDelBrokerSeguroComoRolCarga(t *testing.T) {
	m := nuevoMundoSeguro(t)
	m.conceder(t, m.ns, "carga", "produce", "consume")
	api := m.coordinadorFalso(t)
	for _, c := range []struct {
		nombre       string
		credenciales map[string]string
	}{
		{"token", m.comoToken(filepath.Join(m.Dir, "carga.token"))},
		{"certificado de cliente (mTLS)", m.comoTLS("carga")},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			var out, errw bytes.Buffer
			args := []string{"carga", "-api", api.URL, "-n", "3", "-concurrencia", "1", "-cotas=false", "-cpu=false",
				"-progreso", "0", "-espera", "30s", "-tenant", "public", "-namespace", m.ns}
			if err := run(ctx, args, m.entorno(c.credenciales), &out, &errw); err != nil {
				t.Fatalf("carga: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errw.String())
			}
			if !strings.Contains(out.String(), "3 completadas") {
				t.Fatalf("carga did not see the 3 outcomes:\n%s", out.String())
			}

			// The broker bound: keyed produce → Key_Shared consume, as carga.
			var o opciones
			env := m.entorno(c.credenciales)
			o.pulsar, o.admin = env("SAGAS_PULSAR_URL"), env("SAGAS_PULSAR_ADMIN_URL")
			seg := seguridadDe(t, env, o)
			client, admin, err := conectarBroker(ctx, o, seg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			tasa, err := cotaIdaYVuelta(ctx, client, eventos.Topologia{Tenant: "public", Namespace: m.ns}, admin, 1)
			if err != nil || tasa <= 0 {
				t.Fatalf("broker bound as carga: %v msgs/s, %v", tasa, err)
			}
		})
	}
}

// TestCargaRechazadaNombraLaCausa: wrong credentials, an untrusted broker
// certificate and a role without permission each stop carga at once with
// an error that names the cause.
func TestCargaRechazadaNombraLaCausa(t *testing.T) {
	m := nuevoMundoSeguro(t)
	ajeno := nuevoMundoSeguro(t) // a namespace where carga has no permission
	m.conceder(t, m.ns, "carga", "produce", "consume")
	otraClave := make([]byte, 32)
	_, _ = rand.Read(otraClave)
	tokenFalso := escribirArchivo(t, tokenFirmado(t, otraClave, "carga"))
	otraCA, err := os.ReadFile(filepath.Join(m.Dir, "carga.pem")) // a certificate, but no CA of the broker's
	if err != nil {
		t.Fatal(err)
	}
	caAjena := m.comoTLS("carga")
	caAjena["SAGAS_PULSAR_TLS_TRUST_CERTS_FILE"] = escribirArchivo(t, string(otraCA))
	sinCertificado := m.comoTLS("carga")
	delete(sinCertificado, "SAGAS_PULSAR_TLS_KEY_FILE")

	for _, c := range []struct {
		nombre       string
		credenciales map[string]string
		ns           string
		causa        error
		textos       []string
	}{
		{"token firmado con otra clave", m.comoToken(tokenFalso), m.ns, bus.ErrAutenticacion, []string{"SAGAS_PULSAR_AUTH=token", "carga", tokenFalso}},
		{"certificado del broker fuera del almacén de confianza", caAjena, m.ns, bus.ErrTLS, []string{caAjena["SAGAS_PULSAR_TLS_TRUST_CERTS_FILE"]}},
		{"rol carga sin permiso en el namespace", m.comoToken(filepath.Join(m.Dir, "carga.token")), ajeno.ns, bus.ErrAutorizacion,
			[]string{"el rol «carga» no tiene permiso para leer persistent://public/" + ajeno.ns + "/eventos-saga"}},
		{"certificado sin su clave", sinCertificado, m.ns, nil, []string{"SAGAS_PULSAR_TLS_KEY_FILE"}},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out, errw bytes.Buffer
			args := []string{"carga", "-api", "http://127.0.0.1:1", "-n", "1", "-cotas=false", "-cpu=false",
				"-progreso", "0", "-tenant", "public", "-namespace", c.ns}
			inicio := time.Now()
			err := run(ctx, args, m.entorno(c.credenciales), &out, &errw)
			t.Logf("carga (%s): %v", time.Since(inicio).Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("carga ran")
			}
			if c.causa != nil && !errors.Is(err, c.causa) {
				t.Errorf("error %v, want %v", err, c.causa)
			}
			for _, txt := range c.textos {
				if !strings.Contains(err.Error(), txt) {
					t.Errorf("error %q does not mention %q", err, txt)
				}
			}
			if d := time.Since(inicio); d > 20*time.Second {
				t.Errorf("refused after %s: want it at once, not at a timeout", d)
			}
		})
	}
}

// seguridadDe reads the broker settings from env as run does.
func seguridadDe(t *testing.T, env func(string) string, o opciones) bus.Seguridad {
	t.Helper()
	l := configuracion.Leer(env)
	seg := bus.LeerSeguridad(l, o.pulsar, o.admin)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return seg
}
