package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// entornoExpuesto is a valid environment plus vars.
func entornoExpuesto(t *testing.T, vars map[string]string) func(string) string {
	m := map[string]string{"SAGAS_DB_PATH": t.TempDir() + "/c.db"}
	for k, v := range vars {
		m[k] = v
	}
	return entornoDe(m)
}

func TestConfigRechazaUnaAPIFueraDeLoopbackSinToken(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "203.0.113.7", "sagas.example.com"} {
		_, err := leerConfig(entornoExpuesto(t, map[string]string{"SAGAS_API_HOST": host}))
		if err == nil {
			t.Errorf("SAGAS_API_HOST=%s without a token accepted", host)
			continue
		}
		for _, want := range []string{`SAGAS_API_HOST="` + host + `"`, "SAGAS_API_TOKEN", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("SAGAS_API_HOST=%s: %q does not name %s", host, err, want)
			}
		}
	}
}

func TestConfigAceptaUnaAPIFueraDeLoopbackConTokenOConLaExcepcion(t *testing.T) {
	for _, c := range []struct {
		nombre string
		vars   map[string]string
	}{
		{"loopback sin token", map[string]string{"SAGAS_API_HOST": "127.0.0.1"}},
		{"localhost sin token", map[string]string{"SAGAS_API_HOST": "localhost"}},
		{"ipv6 loopback sin token", map[string]string{"SAGAS_API_HOST": "::1"}},
		{"todas las interfaces con token", map[string]string{"SAGAS_API_HOST": "0.0.0.0", "SAGAS_API_TOKEN": "t"}},
		{"todas las interfaces con la excepción", map[string]string{"SAGAS_API_HOST": "0.0.0.0", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED": "on"}},
	} {
		if _, err := leerConfig(entornoExpuesto(t, c.vars)); err != nil {
			t.Errorf("%s: %v", c.nombre, err)
		}
	}
}

func TestCheckConfigRechazaUnaAPIAbiertaALaRed(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"coordinador", "-check-config"}, entornoExpuesto(t, map[string]string{"SAGAS_API_HOST": "0.0.0.0"}), &out, nil)
	if err == nil || !strings.Contains(err.Error(), "SAGAS_API_TOKEN") || strings.Contains(out.String(), "OK") {
		t.Fatalf("check-config: %v %q", err, out.String())
	}
}

func TestConfigRechazaPprofYMetricasFueraDeLoopback(t *testing.T) {
	for _, c := range []struct {
		nombre string
		vars   map[string]string
		nombra []string // nil: accepted
	}{
		{"pprof en loopback", map[string]string{"SAGAS_PPROF_ADDR": "127.0.0.1:6060"}, nil},
		{"pprof en todas las interfaces", map[string]string{"SAGAS_PPROF_ADDR": ":6060"},
			[]string{`SAGAS_PPROF_ADDR=":6060"`, "pprof has no authentication", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on"}},
		// The API token does not open pprof: it has no authentication at all.
		{"pprof fuera aunque haya token", map[string]string{"SAGAS_PPROF_ADDR": "0.0.0.0:6060", "SAGAS_API_TOKEN": "t", "SAGAS_METRICS_TOKEN": "m"},
			[]string{"SAGAS_PPROF_ADDR"}},
		{"pprof con la excepción", map[string]string{"SAGAS_PPROF_ADDR": "0.0.0.0:6060", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED": "on"}, nil},
		{"métricas en loopback", map[string]string{"SAGAS_METRICS_ADDR": "127.0.0.1:9100"}, nil},
		{"métricas fuera sin token", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100"},
			[]string{`SAGAS_METRICS_ADDR="0.0.0.0:9100"`, "SAGAS_METRICS_TOKEN", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on"}},
		// The operator's API token is not the scraper's.
		{"métricas fuera con solo el token de la API", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_API_TOKEN": "t"},
			[]string{"SAGAS_METRICS_TOKEN"}},
		{"métricas fuera con token", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_METRICS_TOKEN": "m"}, nil},
		{"métricas fuera con la excepción", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED": "on"}, nil},
	} {
		_, err := leerConfig(entornoExpuesto(t, c.vars))
		switch {
		case c.nombra == nil && err != nil:
			t.Errorf("%s: refused: %v", c.nombre, err)
		case c.nombra != nil && err == nil:
			t.Errorf("%s: accepted", c.nombre)
		}
		for _, n := range c.nombra {
			if err != nil && !strings.Contains(err.Error(), n) {
				t.Errorf("%s: %q does not name %s", c.nombre, err, n)
			}
		}
	}
}

func TestConfigLeeElTokenDeMetricasDeUnArchivo(t *testing.T) {
	archivo := filepath.Join(t.TempDir(), "metrics_token")
	if err := os.WriteFile(archivo, []byte("de-archivo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := leerConfig(entornoExpuesto(t, map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_METRICS_TOKEN_FILE": archivo}))
	if err != nil || c.MetricsToken != "de-archivo" {
		t.Fatalf("%q, %v", c.MetricsToken, err)
	}
	_, err = leerConfig(entornoExpuesto(t, map[string]string{"SAGAS_METRICS_TOKEN_FILE": archivo + ".no"}))
	if err == nil || !strings.Contains(err.Error(), "SAGAS_METRICS_TOKEN_FILE") {
		t.Fatalf("a missing token file: %v", err)
	}
}

// servir returns what h answers to GET ruta with the Authorization header
// autorizacion ("" = none).
func servir(h http.Handler, ruta, autorizacion string) (int, string) {
	req := httptest.NewRequest(http.MethodGet, ruta, nil)
	if autorizacion != "" {
		req.Header.Set("Authorization", autorizacion)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestMetricasEnLaAPISoloEnLoopback(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("api " + r.URL.Path)) })
	for _, c := range []struct {
		nombre  string
		vars    map[string]string
		metrics int // status of /metrics on the API listener
		partes  int
		aviso   string
	}{
		{"loopback por defecto", nil, http.StatusOK, 0, ""},
		{"fuera de loopback con token", map[string]string{"SAGAS_API_HOST": "0.0.0.0", "SAGAS_API_TOKEN": "t"}, http.StatusNotFound, 0, "/metrics no se sirve"},
		{"fuera de loopback abierta a propósito", map[string]string{"SAGAS_API_HOST": "0.0.0.0", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED": "on"},
			http.StatusNotFound, 0, "the API (SAGAS_API_HOST=0.0.0.0) is open to the network WITHOUT AUTHENTICATION"},
		{"con listener propio", map[string]string{"SAGAS_METRICS_ADDR": "127.0.0.1:0"}, http.StatusNotFound, 1, ""},
	} {
		cfg, err := leerConfig(entornoExpuesto(t, c.vars))
		if err != nil {
			t.Fatalf("%s: %v", c.nombre, err)
		}
		var log bytes.Buffer
		h, partes := exponer(cfg, api, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&log, nil)))
		if codigo, _ := servir(h, "/metrics", ""); codigo != c.metrics {
			t.Errorf("%s: /metrics on the API listener %d, want %d", c.nombre, codigo, c.metrics)
		}
		for _, ruta := range []string{"/metrics/", "//metrics", "/x/../metrics"} {
			if codigo, _ := servir(h, ruta, ""); c.metrics == http.StatusNotFound && codigo != http.StatusNotFound {
				t.Errorf("%s: %s on the API listener %d", c.nombre, ruta, codigo)
			}
		}
		if codigo, cuerpo := servir(h, "/api/v1/sagas", ""); codigo != http.StatusOK || cuerpo != "api /api/v1/sagas" {
			t.Errorf("%s: the API's own routes: %d %q", c.nombre, codigo, cuerpo)
		}
		if len(partes) != c.partes {
			t.Errorf("%s: %d extra components, want %d", c.nombre, len(partes), c.partes)
		}
		if c.aviso != "" && (!strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), c.aviso)) {
			t.Errorf("%s: log lacks the warning %q:\n%s", c.nombre, c.aviso, log.String())
		}
		if c.aviso == "" && log.Len() > 0 {
			t.Errorf("%s: unexpected log:\n%s", c.nombre, log.String())
		}
	}
}

func TestListenerDeMetricasExigeSuToken(t *testing.T) {
	cfg, err := leerConfig(entornoExpuesto(t, map[string]string{
		"SAGAS_API_HOST": "0.0.0.0", "SAGAS_API_TOKEN": "operador",
		"SAGAS_METRICS_ADDR": "127.0.0.1:0", "SAGAS_METRICS_TOKEN": "raspador",
	}))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sagas_prueba_total", Help: "prueba"}))
	_, partes := exponer(cfg, http.NotFoundHandler(), reg, slog.New(slog.DiscardHandler))
	if len(partes) != 1 {
		t.Fatalf("%d components", len(partes))
	}
	ctx, cancel := context.WithCancel(context.Background())
	fin := make(chan error, 1)
	srv := partes[0].Componente.(interface {
		Correr(context.Context) error
		Listo() <-chan struct{}
		Direccion() string
	})
	go func() { fin <- srv.Correr(ctx) }()
	<-srv.Listo()
	defer func() {
		cancel()
		if err := <-fin; err != nil {
			t.Error(err)
		}
	}()
	get := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Direccion()+"/metrics", nil)
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
	for _, token := range []string{"", "operador", "raspado"} {
		if codigo, cuerpo := get(token); codigo != http.StatusUnauthorized || strings.Contains(cuerpo, "sagas_prueba_total") {
			t.Errorf("token %q: %d %q", token, codigo, cuerpo)
		}
	}
	if codigo, cuerpo := get("raspador"); codigo != http.StatusOK || !strings.Contains(cuerpo, "sagas_prueba_total 0") {
		t.Errorf("the scraper's token: %d %q", codigo, cuerpo)
	}
}
