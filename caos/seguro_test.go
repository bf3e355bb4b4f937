package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/integracion"
)

// TestLeerDLQsUsaLasCredencialesDelEntorno: caos's own clients (the admin
// listing and the reader of the dead-letter topics) authenticate as
// SAGAS_PULSAR_AUTH and its family say, here as role caos on the secured
// broker, and name the role when it lacks a permission.
func TestLeerDLQsUsaLasCredencialesDelEntorno(t *testing.T) {
	b := integracion.PulsarSeguro(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	ns := "caos" + hex.EncodeToString(r)
	ca := filepath.Join(b.Dir, "ca.pem")
	comoAdmin := bus.Seguridad{Auth: bus.AuthToken, TokenFile: filepath.Join(b.Dir, "admin.token"), TrustCertsFile: ca}
	admin, err := bus.NuevoAdminSeguro(b.AdminURL, comoAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PrepararNamespace(ctx, tenant, ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	dlq := "persistent://" + tenant + "/" + ns + "/comandos-marca-DLQ"
	if err := admin.CrearTopico(ctx, dlq); err != nil { // provisioned, as coordinador -preparar does
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := bus.Conectar(b.URL, logger, bus.ConSeguridad(comoAdmin))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := bus.NuevoProductor(c, dlq, "", "", bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("veneno")}); err != nil {
		t.Fatal(err)
	}
	p.Close()

	env := func(seg map[string]string) func(string) string {
		return func(k string) string { return seg[k] }
	}
	comoCaos := env(map[string]string{"SAGAS_PULSAR_AUTH": "token", "SAGAS_PULSAR_TOKEN_FILE": filepath.Join(b.Dir, "caos.token"),
		"SAGAS_PULSAR_TLS_TRUST_CERTS_FILE": ca})
	// caos checks the settings against its world's URLs; this test points
	// the same settings at the secured broker.
	seg := leerSeguridad(t, comoCaos, b.URL, b.AdminURL)

	_, err = leerDLQs(ctx, b.AdminURL, b.URL, seg, ns, logger)
	t.Logf("sin permiso: %v", err)
	if !errors.Is(err, bus.ErrAutorizacion) || !strings.Contains(err.Error(), "el rol «caos»") {
		t.Errorf("leerDLQs as caos without a grant = %v, want ErrAutorizacion naming el rol «caos»", err)
	}

	// An operator grants caos consume on the namespace.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, admin.URL+"/admin/v2/namespaces/"+tenant+"/"+ns+"/permissions/caos", strings.NewReader(`["consume"]`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := admin.HTTP.Do(req)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("grant: %v %v", err, resp)
	}
	resp.Body.Close()
	res, err := leerDLQs(ctx, b.AdminURL, b.URL, seg, ns, logger)
	if err != nil {
		t.Fatalf("leerDLQs as caos: %v", err)
	}
	if len(res.Topicos) != 1 || res.Mensajes != 1 || res.Veneno != 1 {
		t.Fatalf("leerDLQs = %+v, want the one poison message of %s", res, dlq)
	}
}

func TestConfiguracionDelBrokerSeCompruebaContraElBrokerDelMundo(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"SAGAS_PULSAR_AUTH": "tls", "SAGAS_PULSAR_TLS_CERT_FILE": "/no/existe.pem", "SAGAS_PULSAR_TLS_KEY_FILE": "/no/existe.key"}
	err := run(context.Background(), []string{"caos", "-corto"}, func(k string) string { return env[k] }, &out)
	if err == nil {
		t.Fatal("caos accepted SAGAS_PULSAR_AUTH=tls towards its plaintext broker")
	}
	for _, want := range []string{"SAGAS_PULSAR_TLS_CERT_FILE=\"/no/existe.pem\"", "SAGAS_PULSAR_URL=\"pulsar://127.0.0.1:6661\": must be pulsar+ssl://"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if out.Len() != 0 {
		t.Errorf("caos started something: %s", out.String())
	}
}

func leerSeguridad(t *testing.T, getenv func(string) string, urlBroker, urlAdmin string) bus.Seguridad {
	t.Helper()
	l := configuracion.Leer(getenv)
	seg := bus.LeerSeguridad(l, urlBroker, urlAdmin)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return seg
}
