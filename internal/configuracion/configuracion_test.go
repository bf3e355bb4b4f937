package configuracion

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func entorno(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDocumentoDeConfiguracionAlDiaConLaTabla(t *testing.T) {
	ruta := filepath.Join("..", "..", "docs", "configuration.md")
	b, err := os.ReadFile(ruta)
	if err != nil {
		t.Fatalf("%v (run %s)", err, ComandoDocumento)
	}
	if !bytes.Equal(b, Documento()) {
		t.Fatalf("%s differs from the table in internal/configuracion: run %s and commit the result", ruta, ComandoDocumento)
	}
}

func TestTablaSinNombresRepetidosYConDefectosValidos(t *testing.T) {
	vistos := map[string]bool{}
	for _, v := range Variables {
		for _, n := range append([]string{v.Nombre}, v.Alias...) {
			if vistos[n] {
				t.Errorf("%s appears twice", n)
			}
			vistos[n] = true
		}
		if v.Defecto != "" && !v.Valores.valido(v.Defecto) {
			t.Errorf("%s: default %q fails its own check (%s)", v.Nombre, v.Defecto, v.Valores.Permitidos())
		}
		if v.Binarios == 0 || v.Descripcion == "" {
			t.Errorf("%s: no binary or no description", v.Nombre)
		}
	}
}

func TestValoresAceptanYRechazan(t *testing.T) {
	for _, c := range []struct {
		nombre string
		v      Valores
		bien   []string
		mal    []string
	}{
		{"entero acotado", Entero{1, 256}, []string{"1", "256"}, []string{"0", "257", "x", "1.5"}},
		{"entero libre", Entero{}, []string{"-5", "9223372036854775807"}, []string{"x", "1e3"}},
		{"puerto", Puerto{1}, []string{"1", "65535"}, []string{"0", "65536", "abc"}},
		{"decimal", Decimal{Min: 0, Max: 1}, []string{"0", "0.2", "1"}, []string{"2", "-0.1", "x"}},
		{"duración acotada", Duracion{10 * time.Millisecond, time.Minute}, []string{"10ms", "1m"}, []string{"1ns", "2m", "x"}},
		{"duración no negativa", Duracion{}, []string{"0s", "20ms"}, []string{"-1s", "20"}},
		{"interruptor", Interruptor{}, []string{"on", "OFF", "true", "0", "yes"}, []string{"quizas", ""}},
		{"opciones sin mayúsculas", Opciones{"sqlite", "mysql"}, []string{"sqlite", "MySQL"}, []string{"postgres"}},
		{"url con esquema", URL{"pulsar", "pulsar+ssl"}, []string{"pulsar://h:6650", "pulsar+ssl://h:6651"}, []string{"http://h:6650", "h:6650", "pulsar://"}},
		{"nombre", Nombre{}, []string{"a.b_c-1"}, []string{"a/b", "a b", "a:b", ""}},
		{"sin separadores", SinSeparadores{}, []string{"coordinador-h1", "réplica+1"}, []string{"a/b", "a b", "a:b"}},
		{"dirección", Direccion{}, []string{"127.0.0.1:0", ":9100", "[::1]:80"}, []string{"9100", "h:x", "h:70000", "a b:1"}},
		{"tópico", Topico{}, []string{"persistent://t/n/x"}, []string{"x", "persistent://t/x", "non-persistent://t/n/x"}},
	} {
		for _, s := range c.bien {
			if !c.v.valido(s) {
				t.Errorf("%s: %q refused", c.nombre, s)
			}
		}
		for _, s := range c.mal {
			if c.v.valido(s) {
				t.Errorf("%s: %q accepted", c.nombre, s)
			}
		}
	}
}

func TestLectorUsaElDefectoCuandoFaltaOEstaEnBlanco(t *testing.T) {
	l := Leer(entorno(map[string]string{"SAGAS_PULSAR_TENANT": "  "}))
	if got := l.Texto("SAGAS_PULSAR_TENANT"); got != "alpespartner" {
		t.Errorf("tenant %q", got)
	}
	if got := l.Entero("SAGAS_DB_PORT", 0); got != 3306 {
		t.Errorf("port %d", got)
	}
	if got := l.Duracion("SAGAS_TIMER_INTERVAL", 0); got != 250*time.Millisecond {
		t.Errorf("timer %v", got)
	}
	if !l.Interruptor("SAGAS_PUENTE") {
		t.Error("puente off by default")
	}
	if got := l.Decimal("SAGAS_TASA_FALLO", -1); got != -1 {
		t.Errorf("unset rate without a default: %v, want the caller's -1", got)
	}
	if l.Definida("SAGAS_PULSAR_TENANT") {
		t.Error("a blank variable counts as set")
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestLectorReportaTodosLosProblemasNombrandoLaVariable(t *testing.T) {
	l := Leer(entorno(map[string]string{
		"SAGAS_DB_PORT": "abc", "SAGAS_PUENTE": "quizas", "SAGAS_STORAGE_TYPE": "Postgres", "SAGAS_LATENCIA": "-1s",
	}))
	if got := l.Entero("SAGAS_DB_PORT", 3306); got != 3306 {
		t.Errorf("an invalid value must leave the caller's default: %d", got)
	}
	l.Interruptor("SAGAS_PUENTE")
	l.Texto("SAGAS_STORAGE_TYPE")
	l.Duracion("SAGAS_LATENCIA", 0)
	l.Texto("SAGAS_NO_EXISTE")
	err := l.Err()
	if err == nil {
		t.Fatal("problems not reported")
	}
	for _, want := range []string{
		`SAGAS_DB_PORT="abc": allowed values are TCP ports 1-65535`,
		`SAGAS_PUENTE="quizas": allowed values are on, off`,
		`SAGAS_STORAGE_TYPE="Postgres": allowed values are sqlite, mysql`,
		`SAGAS_LATENCIA="-1s": allowed values are non-negative Go durations`,
		`SAGAS_NO_EXISTE: not in the configuration table`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 5 {
		t.Errorf("%d problems, want 5 (each once):\n%v", n, err)
	}
}

func TestAliasObsoletoSigueFuncionandoConAviso(t *testing.T) {
	for _, c := range []struct {
		nombre string
		env    map[string]string
		want   int
		aviso  string
	}{
		{"solo el nombre nuevo", map[string]string{"SAGAS_CONSUMER_WORKERS": "8"}, 8, ""},
		{"solo el alias", map[string]string{"SAGAS_TRABAJADORES": "16"}, 16, "SAGAS_TRABAJADORES is deprecated: use SAGAS_CONSUMER_WORKERS"},
		{"ambos: gana el nuevo", map[string]string{"SAGAS_CONSUMER_WORKERS": "8", "SAGAS_TRABAJADORES": "16"}, 8, "SAGAS_TRABAJADORES is deprecated and ignored"},
		{"ninguno", nil, 2, ""},
	} {
		l := Leer(entorno(c.env))
		if got := l.Entero("SAGAS_CONSUMER_WORKERS", 0); got != c.want {
			t.Errorf("%s: %d, want %d", c.nombre, got, c.want)
		}
		avisos := strings.Join(l.Avisos(), "\n")
		if c.aviso == "" && avisos != "" || !strings.Contains(avisos, c.aviso) {
			t.Errorf("%s: notices %q, want %q", c.nombre, avisos, c.aviso)
		}
		if err := l.Err(); err != nil {
			t.Errorf("%s: %v", c.nombre, err)
		}
	}
}

func TestErrorDelAliasNombraLaVariableQueSeUso(t *testing.T) {
	l := Leer(entorno(map[string]string{"SAGAS_TRABAJADORES": "0"}))
	l.Entero("SAGAS_CONSUMER_WORKERS", 2)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), `SAGAS_TRABAJADORES="0": allowed values are integers 1-256`) {
		t.Fatalf("error %v", err)
	}
}

func TestAyudaListaLasVariablesDelBinario(t *testing.T) {
	var b bytes.Buffer
	Ayuda(&b, Carga)
	// carga reads the API token and the broker's settings, not the store's.
	if !strings.Contains(b.String(), "SAGAS_API_TOKEN") || !strings.Contains(b.String(), "SAGAS_PULSAR_AUTH") || strings.Contains(b.String(), "SAGAS_DB_HOST") {
		t.Fatalf("carga's help:\n%s", b.String())
	}
}

func TestComprobarNombraLaVariable(t *testing.T) {
	if err := Comprobar("SAGAS_PULSAR_URL", "http://x:1"); err == nil || !strings.Contains(err.Error(), `SAGAS_PULSAR_URL="http://x:1": allowed values are pulsar://host:port`) {
		t.Fatalf("error %v", err)
	}
	if err := Comprobar("SAGAS_PULSAR_URL", "pulsar://x:1"); err != nil {
		t.Fatal(err)
	}
}
