package configuracion

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoopbackSoloParaDireccionesLocales(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost", "localhost."} {
		if !Loopback(h) {
			t.Errorf("%q should be loopback", h)
		}
	}
	for _, h := range []string{"", "0.0.0.0", "::", "[::]", "10.0.0.5", "203.0.113.7", "2001:db8::1", "sagas.example.com", "localhost.example.com", "mylocalhost"} {
		if Loopback(h) {
			t.Errorf("%q should not be loopback", h)
		}
	}
}

func TestComprobarExposicion(t *testing.T) {
	api := func(host string, token bool) Listener {
		return Listener{Que: "the API", Variable: "SAGAS_API_HOST", Valor: host, Host: host, VariableToken: "SAGAS_API_TOKEN", ConToken: token}
	}
	pprof := Listener{Que: "pprof", Variable: "SAGAS_PPROF_ADDR", Valor: "0.0.0.0:6060", Host: "0.0.0.0"}
	for _, c := range []struct {
		nombre    string
		l         Listener
		permitido bool
		nombra    []string // nil: accepted
	}{
		{"loopback sin token", api("127.0.0.1", false), false, nil},
		{"todas las interfaces con token", api("0.0.0.0", true), false, nil},
		{"todas las interfaces sin token", api("0.0.0.0", false), false, []string{`SAGAS_API_HOST="0.0.0.0"`, "SAGAS_API_TOKEN", PermitirSinAutenticacion}},
		{"ipv6 sin token", api("::", false), false, []string{`SAGAS_API_HOST="::"`}},
		{"ip pública sin token", api("203.0.113.7", false), false, []string{"SAGAS_API_TOKEN"}},
		{"nombre que no es localhost", api("sagas.example.com", false), false, []string{"SAGAS_API_TOKEN"}},
		{"sin token con la excepción", api("0.0.0.0", false), true, nil},
		{"pprof fuera de loopback", pprof, false, []string{`SAGAS_PPROF_ADDR="0.0.0.0:6060"`, "pprof has no authentication", PermitirSinAutenticacion}},
		{"pprof con la excepción", pprof, true, nil},
	} {
		err := ComprobarExposicion(c.l, c.permitido)
		if c.nombra == nil {
			if err != nil {
				t.Errorf("%s: refused: %v", c.nombre, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", c.nombre)
			continue
		}
		for _, n := range c.nombra {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("%s: %q does not name %s", c.nombre, err, n)
			}
		}
	}
}

func TestAvisoAbiertoLoDiceEnUnaLinea(t *testing.T) {
	a := AvisoAbierto(Listener{Que: "the API", Variable: "SAGAS_API_HOST", Valor: "0.0.0.0", Host: "0.0.0.0", VariableToken: "SAGAS_API_TOKEN"})
	for _, want := range []string{"the API", "SAGAS_API_HOST=0.0.0.0", "WITHOUT AUTHENTICATION", PermitirSinAutenticacion} {
		if !strings.Contains(a, want) || strings.Contains(a, "\n") {
			t.Errorf("%q lacks %q", a, want)
		}
	}
}

func TestSecretoEnLineaOEnArchivo(t *testing.T) {
	dir := t.TempDir()
	archivo := filepath.Join(dir, "token")
	os.WriteFile(archivo, []byte("de-archivo\n"), 0o600)
	vacio := filepath.Join(dir, "vacio")
	os.WriteFile(vacio, []byte("\n"), 0o600)
	for _, c := range []struct {
		nombre string
		env    map[string]string
		want   string
		error  string
	}{
		{"sin nada", nil, "", ""},
		{"en línea", map[string]string{"SAGAS_METRICS_TOKEN": "en-linea"}, "en-linea", ""},
		{"archivo sin el salto de línea", map[string]string{"SAGAS_METRICS_TOKEN_FILE": archivo}, "de-archivo", ""},
		{"los dos", map[string]string{"SAGAS_METRICS_TOKEN": "x", "SAGAS_METRICS_TOKEN_FILE": archivo}, "x", "not both"},
		{"archivo que falta", map[string]string{"SAGAS_METRICS_TOKEN_FILE": filepath.Join(dir, "no")}, "", "cannot read it"},
		{"archivo vacío", map[string]string{"SAGAS_METRICS_TOKEN_FILE": vacio}, "", "the file is empty"},
	} {
		l := Leer(entorno(c.env))
		got := l.Secreto("SAGAS_METRICS_TOKEN")
		err := l.Err()
		switch {
		case got != c.want:
			t.Errorf("%s: %q, want %q", c.nombre, got, c.want)
		case c.error == "" && err != nil:
			t.Errorf("%s: %v", c.nombre, err)
		case c.error != "" && (err == nil || !strings.Contains(err.Error(), c.error) || !strings.Contains(err.Error(), "SAGAS_METRICS_TOKEN_FILE")):
			t.Errorf("%s: error %v, want one naming SAGAS_METRICS_TOKEN_FILE with %q", c.nombre, err, c.error)
		}
	}
}
