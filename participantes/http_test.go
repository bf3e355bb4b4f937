package participantes_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/participantes"
	"github.com/alpespartner/sagas/participantes/internal/prueba"
)

// servirParticipante serves the HTTP of a participant on a SQLite store of
// its own (no broker needed) with env added to a loopback configuration.
func servirParticipante(t *testing.T, env map[string]string, log io.Writer) (*participantes.Participante, *httptest.Server) {
	t.Helper()
	s := prueba.Servicio()
	vars := map[string]string{"SAGAS_DATA_DIR": t.TempDir()}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := participantes.LeerConfig(s.Nombre, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	p, err := participantes.Nuevo(context.Background(), cfg, s, slog.New(slog.NewJSONHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(func() { srv.Close(); p.Close() })
	return p, srv
}

func pedir(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPConTokenExigeloEnCadaRuta(t *testing.T) {
	_, srv := servirParticipante(t, map[string]string{"SAGAS_METRICS_TOKEN": "raspador"}, io.Discard)
	for _, ruta := range []string{"/metrics", "/healthz", "/readyz", "/efectos/saga-1"} {
		for _, token := range []string{"", "otro", "raspado"} {
			codigo, cuerpo := pedir(t, srv.URL+ruta, token)
			if codigo != http.StatusUnauthorized || strings.Contains(cuerpo, "go_goroutines") || strings.Contains(cuerpo, "saga-1") || cuerpo == "ok\n" ||
				strings.Contains(cuerpo, "consumidor") {
				t.Errorf("%s with token %q: %d %q", ruta, token, codigo, cuerpo)
			}
		}
	}
	if codigo, cuerpo := pedir(t, srv.URL+"/metrics", "raspador"); codigo != http.StatusOK || !strings.Contains(cuerpo, "go_goroutines") {
		t.Errorf("/metrics with the token: %d", codigo)
	}
	if codigo, cuerpo := pedir(t, srv.URL+"/healthz", "raspador"); codigo != http.StatusOK || cuerpo != "ok\n" {
		t.Errorf("/healthz with the token: %d %q", codigo, cuerpo)
	}
	if codigo, cuerpo := pedir(t, srv.URL+"/efectos/saga-1", "raspador"); codigo != http.StatusOK || !strings.Contains(cuerpo, `"saga_id":"saga-1"`) {
		t.Errorf("/efectos with the token: %d %q", codigo, cuerpo)
	}
}

func TestHTTPSinTokenEnLoopbackNoPideCredenciales(t *testing.T) {
	_, srv := servirParticipante(t, nil, io.Discard)
	for _, ruta := range []string{"/metrics", "/healthz", "/efectos/saga-1"} {
		if codigo, _ := pedir(t, srv.URL+ruta, ""); codigo != http.StatusOK {
			t.Errorf("%s: %d", ruta, codigo)
		}
	}
}

func TestHealthzNoFiltraElErrorDelAlmacen(t *testing.T) {
	var log bytes.Buffer
	p, srv := servirParticipante(t, map[string]string{"SAGAS_METRICS_TOKEN": "raspador"}, &log)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	codigo, cuerpo := pedir(t, srv.URL+"/healthz", "raspador")
	if codigo != http.StatusServiceUnavailable || cuerpo != "no disponible\n" {
		t.Errorf("/healthz with the store closed: %d %q, want 503 and only the status word", codigo, cuerpo)
	}
	// The cause is for the operator, in the log.
	if !strings.Contains(log.String(), "healthz") || !strings.Contains(log.String(), "closed") {
		t.Errorf("the store's error is not in the log:\n%s", log.String())
	}
}

// A participant whose consumer has not subscribed yet is alive but not
// ready: commands would wait in the subscription.
func TestReadyzEsperaAlConsumidorYAlAlmacen(t *testing.T) {
	var log bytes.Buffer
	p, srv := servirParticipante(t, nil, &log)
	if p.Consumiendo() {
		t.Fatal("Consumiendo before any consumer was built")
	}
	if codigo, cuerpo := pedir(t, srv.URL+"/healthz", ""); codigo != http.StatusOK {
		t.Errorf("/healthz without a consumer: %d %q, want 200 (alive)", codigo, cuerpo)
	}
	if codigo, cuerpo := pedir(t, srv.URL+"/readyz", ""); codigo != http.StatusServiceUnavailable || cuerpo != "consumidor no iniciado\n" {
		t.Errorf("/readyz without a consumer: %d %q, want 503 naming the consumer", codigo, cuerpo)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if codigo, cuerpo := pedir(t, srv.URL+"/readyz", ""); codigo != http.StatusServiceUnavailable || cuerpo != "almacén no disponible\n" {
		t.Errorf("/readyz with the store closed: %d %q", codigo, cuerpo)
	}
	if !strings.Contains(log.String(), "readyz") || !strings.Contains(log.String(), "closed") {
		t.Errorf("the store's error is not in the log:\n%s", log.String())
	}
}

func TestCheckConfigRechazaHTTPAbiertoALaRed(t *testing.T) {
	var out bytes.Buffer
	s := prueba.Servicio()
	env := map[string]string{"SAGAS_DATA_DIR": t.TempDir(), "SAGAS_METRICS_ADDR": "0.0.0.0:9100"}
	err := participantes.Correr(context.Background(), []string{s.Nombre, "-check-config"}, func(k string) string { return env[k] }, &out, s)
	if err == nil || !strings.Contains(err.Error(), "SAGAS_METRICS_TOKEN") || !strings.Contains(err.Error(), "SAGAS_HTTP_ALLOW_UNAUTHENTICATED") {
		t.Fatalf("check-config: %v %q", err, out.String())
	}
	env["SAGAS_METRICS_TOKEN"] = "raspador"
	if err := participantes.Correr(context.Background(), []string{s.Nombre, "-check-config"}, func(k string) string { return env[k] }, &out, s); err != nil {
		t.Fatalf("check-config with a token: %v", err)
	}
}
