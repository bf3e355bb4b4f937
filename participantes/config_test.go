package participantes

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/bus"
)

func entorno(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLeerConfigSinVariablesUsaLosValoresPorDefecto(t *testing.T) {
	c, err := LeerConfig("marca", entorno(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Servicio: "marca", PulsarURL: "pulsar://127.0.0.1:6650", PulsarAdminURL: "http://127.0.0.1:8080",
		Almacen: "sqlite", RutaSQLite: filepath.Join(".run", "data", "participante-marca.db"), DireccionHTTP: "127.0.0.1:0",
		MySQL:        ConfigMySQL{Servidor: c.MySQL.Servidor, BaseDatos: "participante_marca"},
		NivelLog:     slog.LevelInfo,
		Trabajadores: TrabajadoresPorDefecto,
		Seguridad:    bus.Seguridad{Auth: bus.AuthNinguna},
		Retencion:    168 * time.Hour, IntervaloRetencion: 10 * time.Minute,
		Particiones: 1,
		Reintentos:  bus.ReintentosPorDefecto,
	}
	want.Topologia.Tenant, want.Topologia.Namespace = "alpespartner", "sagas"
	want.Fallos.Semilla = c.Fallos.Semilla // from the clock
	if c.Fallos.Tasa != nil || c.Fallos.Semillas || c.Fallos.Latencia != 0 {
		t.Errorf("failure injection must be off by default: %+v", c.Fallos)
	}
	c.Fallos = want.Fallos
	if m := c.MySQL.Servidor.Config("x"); m.Addr != "127.0.0.1:3306" || m.User != "sagas" || m.TLSConfig != "" || c.MySQL.Servidor.ConMigracionAparte() {
		t.Errorf("mysql: %s as %s, tls %q, migration user %q", m.Addr, m.User, m.TLSConfig, c.MySQL.Servidor.UsuarioMigracion)
	}
	if c != want {
		t.Errorf("config\n got %+v\nwant %+v", c, want)
	}
}

func TestLeerConfigLeeCadaVariable(t *testing.T) {
	c, err := LeerConfig("tracking", entorno(map[string]string{
		"SAGAS_PULSAR_URL": "pulsar://broker:6651", "SAGAS_PULSAR_ADMIN_URL": "http://broker:8081",
		"SAGAS_PULSAR_TENANT": "t1", "SAGAS_PULSAR_NAMESPACE": "ns1", "SAGAS_STORAGE_TYPE": "mysql",
		"SAGAS_DATA_DIR": "/var/lib/sagas", "SAGAS_DB_HOST": "db", "SAGAS_DB_PORT": "3307", "SAGAS_DB_USER": "u",
		"SAGAS_DB_PASSWORD": "p", "SAGAS_METRICS_ADDR": ":9100", "SAGAS_METRICS_TOKEN": "m", "SAGAS_FALLOS": "semillas", "SAGAS_TASA_FALLO": "0.2",
		"SAGAS_SEMILLA": "42", "SAGAS_LATENCIA": "20ms", "SAGAS_LOG_LEVEL": "debug", "SAGAS_TRABAJADORES": "16",
		"SAGAS_PPROF_ADDR": "127.0.0.1:6061",
	}))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.PulsarURL != "pulsar://broker:6651" || c.PulsarAdminURL != "http://broker:8081":
		t.Errorf("pulsar: %s %s", c.PulsarURL, c.PulsarAdminURL)
	case c.Topologia.Comandos("tracking") != "persistent://t1/ns1/comandos-tracking":
		t.Errorf("topologia: %+v", c.Topologia)
	case c.Almacen != "mysql" || c.MySQL.BaseDatos != "participante_tracking" ||
		c.MySQL.Servidor.DSN(c.MySQL.BaseDatos) != "u:p@tcp(db:3307)/participante_tracking?readTimeout=30s&timeout=10s&writeTimeout=30s":
		t.Errorf("mysql: %s %s", c.Almacen, c.MySQL.Servidor.DSN(c.MySQL.BaseDatos))
	case c.RutaSQLite != "/var/lib/sagas/participante-tracking.db":
		t.Errorf("sqlite: %s", c.RutaSQLite)
	case c.DireccionHTTP != ":9100" || c.TokenHTTP != "m" || c.NivelLog != slog.LevelDebug || c.Trabajadores != 16 || c.DireccionPprof != "127.0.0.1:6061":
		t.Errorf("http %s token %q log %v trabajadores %d pprof %s", c.DireccionHTTP, c.TokenHTTP, c.NivelLog, c.Trabajadores, c.DireccionPprof)
	case !c.Fallos.Semillas || c.Fallos.Tasa == nil || *c.Fallos.Tasa != 0.2 || c.Fallos.Semilla != 42 || c.Fallos.Latencia != 20*time.Millisecond:
		t.Errorf("fallos: %+v", c.Fallos)
	}
}

func TestLeerConfigReportaTodosLosProblemasALaVez(t *testing.T) {
	_, err := LeerConfig("marca", entorno(map[string]string{
		"SAGAS_STORAGE_TYPE": "postgres", "SAGAS_DB_PORT": "abc", "SAGAS_TASA_FALLO": "2", "SAGAS_LATENCIA": "-1s",
		"SAGAS_FALLOS": "todos", "SAGAS_PULSAR_URL": "http://broker:6650", "SAGAS_PULSAR_ADMIN_URL": "broker:8080",
		"SAGAS_METRICS_ADDR": "9100", "SAGAS_LOG_LEVEL": "verbose", "SAGAS_SEMILLA": "x", "SAGAS_TRABAJADORES": "0",
		"SAGAS_PULSAR_NAMESPACE": "a/b",
	}))
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{
		`SAGAS_STORAGE_TYPE="postgres": allowed values are sqlite, mysql`,
		`SAGAS_DB_PORT="abc": allowed values are TCP ports 1-65535`,
		`SAGAS_TASA_FALLO="2": allowed values are numbers from 0 to 1`,
		`SAGAS_LATENCIA="-1s": allowed values are non-negative Go durations`,
		`SAGAS_FALLOS="todos": allowed values are no, semillas`,
		`SAGAS_PULSAR_URL="http://broker:6650": allowed values are pulsar://host:port`,
		`SAGAS_PULSAR_ADMIN_URL="broker:8080": allowed values are http://host:port`,
		`SAGAS_METRICS_ADDR="9100": allowed values are host:port`,
		`SAGAS_LOG_LEVEL="verbose": allowed values are debug, info, warn, error`,
		`SAGAS_SEMILLA="x": allowed values are integers`,
		`SAGAS_TRABAJADORES="0": allowed values are integers 1-256`,
		`SAGAS_PULSAR_NAMESPACE="a/b": allowed are letters, digits, _ . -`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 12 {
		t.Errorf("%d problems reported, want 12 (each once):\n%v", n, err)
	}
}

func TestTasaEfectivaSigueLaPrioridadDeLasVariables(t *testing.T) {
	dos := 0.2
	for _, c := range []struct {
		nombre string
		f      ConfigFallos
		want   float64
	}{
		{"apagado por defecto", ConfigFallos{}, 0},
		{"semillas", ConfigFallos{Semillas: true}, 0.1},
		{"tasa explícita sin semillas", ConfigFallos{Tasa: &dos}, 0.2},
		{"tasa explícita gana a semillas", ConfigFallos{Semillas: true, Tasa: &dos}, 0.2},
	} {
		if got := c.f.TasaEfectiva(0.1); got != c.want {
			t.Errorf("%s: %v, want %v", c.nombre, got, c.want)
		}
	}
}

func TestLeerConfigTrabajadoresConElNombreComunYElObsoleto(t *testing.T) {
	for _, c := range []struct {
		nombre string
		env    map[string]string
		want   int
	}{
		{"nombre común con el coordinador", map[string]string{"SAGAS_CONSUMER_WORKERS": "8"}, 8},
		{"nombre obsoleto", map[string]string{"SAGAS_TRABAJADORES": "16"}, 16},
		{"el nombre común gana", map[string]string{"SAGAS_CONSUMER_WORKERS": "8", "SAGAS_TRABAJADORES": "16"}, 8},
	} {
		cfg, err := LeerConfig("marca", entorno(c.env))
		if err != nil || cfg.Trabajadores != c.want {
			t.Errorf("%s: %d, %v; want %d", c.nombre, cfg.Trabajadores, err, c.want)
		}
	}
}

func TestValidarUnaConfigConstruidaEnCodigoNombraCadaVariable(t *testing.T) {
	c, err := LeerConfig("marca", entorno(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validar(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.PulsarURL, c.Topologia.Namespace, c.Almacen, c.DireccionHTTP, c.Trabajadores = "http://b:1", "a/b", "postgres", "9100", 0
	err = c.Validar()
	for _, want := range []string{
		`SAGAS_PULSAR_URL="http://b:1": allowed values are pulsar://host:port`,
		`SAGAS_PULSAR_NAMESPACE="a/b": allowed are letters, digits, _ . -`,
		`SAGAS_STORAGE_TYPE="postgres": allowed values are sqlite, mysql`,
		`SAGAS_METRICS_ADDR="9100": allowed values are host:port`,
		`SAGAS_CONSUMER_WORKERS="0": allowed values are integers 1-256`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
}

func TestLeerConfigRechazaHTTPFueraDeLoopbackSinToken(t *testing.T) {
	for _, c := range []struct {
		nombre string
		env    map[string]string
		nombra []string // nil: accepted
	}{
		{"por defecto", nil, nil},
		{"loopback", map[string]string{"SAGAS_METRICS_ADDR": "127.0.0.1:9100"}, nil},
		{"localhost", map[string]string{"SAGAS_METRICS_ADDR": "localhost:9100"}, nil},
		{"todas las interfaces", map[string]string{"SAGAS_METRICS_ADDR": ":9100"},
			[]string{`SAGAS_METRICS_ADDR=":9100"`, "SAGAS_METRICS_TOKEN", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on"}},
		{"0.0.0.0", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100"}, []string{"SAGAS_METRICS_TOKEN"}},
		{"ipv6", map[string]string{"SAGAS_METRICS_ADDR": "[::]:9100"}, []string{"SAGAS_METRICS_TOKEN"}},
		{"un nombre", map[string]string{"SAGAS_METRICS_ADDR": "marca.interno:9100"}, []string{"SAGAS_METRICS_TOKEN"}},
		// The coordinator's operator token is not the participants' token.
		{"solo el token de la API", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_API_TOKEN": "t"}, []string{"SAGAS_METRICS_TOKEN"}},
		{"con token", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_METRICS_TOKEN": "m"}, nil},
		{"con la excepción", map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED": "on"}, nil},
		{"pprof en loopback", map[string]string{"SAGAS_PPROF_ADDR": "127.0.0.1:6061"}, nil},
		{"pprof en todas las interfaces", map[string]string{"SAGAS_PPROF_ADDR": ":6061"},
			[]string{`SAGAS_PPROF_ADDR=":6061"`, "pprof has no authentication", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on"}},
		// No token protects pprof.
		{"pprof fuera aunque haya token", map[string]string{"SAGAS_PPROF_ADDR": "0.0.0.0:6061", "SAGAS_METRICS_TOKEN": "m"}, []string{"SAGAS_PPROF_ADDR"}},
		{"pprof con la excepción", map[string]string{"SAGAS_PPROF_ADDR": "0.0.0.0:6061", "SAGAS_HTTP_ALLOW_UNAUTHENTICATED": "on"}, nil},
		{"pprof sin puerto", map[string]string{"SAGAS_PPROF_ADDR": "127.0.0.1"}, []string{"SAGAS_PPROF_ADDR"}},
	} {
		_, err := LeerConfig("marca", entorno(c.env))
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

func TestValidarRechazaHTTPFueraDeLoopbackSinToken(t *testing.T) {
	c, err := LeerConfig("marca", entorno(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.DireccionHTTP = "0.0.0.0:9100"
	if err := c.Validar(); err == nil || !strings.Contains(err.Error(), "SAGAS_METRICS_TOKEN") {
		t.Fatalf("a Config built in code: %v", err)
	}
	c.TokenHTTP = "m"
	if err := c.Validar(); err != nil {
		t.Fatal(err)
	}
}

func TestLeerConfigTokenHTTPDeUnArchivo(t *testing.T) {
	archivo := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(archivo, []byte("de-archivo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LeerConfig("marca", entorno(map[string]string{"SAGAS_METRICS_ADDR": "0.0.0.0:9100", "SAGAS_METRICS_TOKEN_FILE": archivo}))
	if err != nil || c.TokenHTTP != "de-archivo" {
		t.Fatalf("%q, %v", c.TokenHTTP, err)
	}
}

func TestLeerConfigReintentosYSuTopeNoMenorQueLaPrimeraEspera(t *testing.T) {
	c, err := LeerConfig("marca", entorno(map[string]string{
		"SAGAS_MAX_REDELIVERIES": "4", "SAGAS_REDELIVERY_DELAY": "250ms", "SAGAS_REDELIVERY_DELAY_MAX": "3s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (bus.Reintentos{Maximo: 4, Inicial: 250 * time.Millisecond, Tope: 3 * time.Second}); c.Reintentos != want {
		t.Errorf("Reintentos = %+v, want %+v", c.Reintentos, want)
	}
	_, err = LeerConfig("marca", entorno(map[string]string{"SAGAS_REDELIVERY_DELAY": "2s", "SAGAS_REDELIVERY_DELAY_MAX": "1s"}))
	if err == nil || !strings.Contains(err.Error(), "SAGAS_REDELIVERY_DELAY_MAX") {
		t.Errorf("a cap below the first wait: %v, want an error naming SAGAS_REDELIVERY_DELAY_MAX", err)
	}
	_, err = LeerConfig("marca", entorno(map[string]string{"SAGAS_MAX_REDELIVERIES": "0"}))
	if err == nil || !strings.Contains(err.Error(), "SAGAS_MAX_REDELIVERIES") {
		t.Errorf("no redelivery at all: %v, want an error naming SAGAS_MAX_REDELIVERIES", err)
	}
}
