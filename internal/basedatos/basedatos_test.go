package basedatos_test

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/integracion"
)

func leer(env map[string]string) (basedatos.Servidor, error) {
	l := configuracion.Leer(func(k string) string { return env[k] })
	s := basedatos.Leer(l, env["SAGAS_STORAGE_TYPE"] == "mysql")
	return s, l.Err()
}

func fichero(t *testing.T, contenido string) string {
	t.Helper()
	ruta := filepath.Join(t.TempDir(), "secreto")
	if err := os.WriteFile(ruta, []byte(contenido), 0o600); err != nil {
		t.Fatal(err)
	}
	return ruta
}

func TestClavePorDefectoSoloEnLoopback(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1", "localhost", "127.0.0.2"} {
		s, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": host})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got := s.Config("sagas").Passwd; got != basedatos.ClaveLocal {
			t.Errorf("%s: password %q, want the loopback default", host, got)
		}
	}
	for _, host := range []string{"sagas-db", "10.0.0.5", "db.example.com"} {
		_, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": host})
		if err == nil || !strings.Contains(err.Error(), "SAGAS_DB_PASSWORD") || !strings.Contains(err.Error(), host) {
			t.Errorf("%s without a password: %v, want an error naming SAGAS_DB_PASSWORD and the host", host, err)
		}
	}
	// SQLite needs no MySQL password anywhere.
	if _, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "sqlite", "SAGAS_DB_HOST": "sagas-db"}); err != nil {
		t.Errorf("sqlite: %v", err)
	}
}

func TestClaveDesdeFicheroSinSaltoDeLinea(t *testing.T) {
	s, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": "sagas-db",
		"SAGAS_DB_PASSWORD_FILE": fichero(t, "s3creta\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Config("sagas").Passwd; got != "s3creta" {
		t.Errorf("password %q", got)
	}
}

func TestClaveYSuFicheroALaVezEsUnError(t *testing.T) {
	_, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_PASSWORD": "x",
		"SAGAS_DB_PASSWORD_FILE": fichero(t, "y")})
	if err == nil || !strings.Contains(err.Error(), "set either SAGAS_DB_PASSWORD or SAGAS_DB_PASSWORD_FILE, not both") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), `"x"`) {
		t.Errorf("the password leaks into the message: %v", err)
	}
}

func TestTLSConCAVerificaNombreYCadena(t *testing.T) {
	ca, _ := crearCA(t)
	s, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_TLS": "on", "SAGAS_DB_TLS_CA_FILE": ca})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(s.DSN("sagas"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.TLSConfig, "sagas-ca-") || cfg.TLS == nil || cfg.TLS.InsecureSkipVerify || cfg.TLS.RootCAs == nil || cfg.TLS.ServerName != "127.0.0.1" {
		t.Errorf("tls %q %+v: want the registered CA, the host name checked", cfg.TLSConfig, cfg.TLS)
	}
	s, err = leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_TLS": "on"})
	if err != nil || s.Config("sagas").TLSConfig != "true" {
		t.Errorf("on without a CA file: %v %q, want the system's CAs (tls=true)", err, s.Config("sagas").TLSConfig)
	}
}

func TestCombinacionesDeTLSQueNoTienenSentido(t *testing.T) {
	ca, _ := crearCA(t)
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SAGAS_DB_TLS_CA_FILE": ca}, "SAGAS_DB_TLS_CA_FILE"},
		{map[string]string{"SAGAS_DB_TLS": "skip-verify", "SAGAS_DB_TLS_CA_FILE": ca}, "skip-verify"},
		{map[string]string{"SAGAS_DB_TLS": "on", "SAGAS_DB_TLS_CA_FILE": "/no/existe.pem"}, "cannot read it"},
		{map[string]string{"SAGAS_DB_TLS": "on", "SAGAS_DB_TLS_CA_FILE": fichero(t, "no es PEM")}, "no PEM certificate"},
		{map[string]string{"SAGAS_DB_TLS": "verify-full"}, "allowed values are off, on, skip-verify"},
		{map[string]string{"SAGAS_DB_MIGRATION_PASSWORD": "x"}, "SAGAS_DB_MIGRATION_USER"},
	} {
		c.env["SAGAS_STORAGE_TYPE"] = "mysql"
		if _, err := leer(c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to mention %q", c.env, err, c.want)
		}
	}
}

func TestDSNSinBaseDeDatosYSinMezclarConHost(t *testing.T) {
	s, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql",
		"SAGAS_DB_DSN_FILE": fichero(t, "app:clave@tcp(db.example.com:3306)/?tls=skip-verify&readTimeout=5s\n")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config("participante_marca")
	if cfg.Addr != "db.example.com:3306" || cfg.User != "app" || cfg.Passwd != "clave" || cfg.DBName != "participante_marca" || cfg.TLSConfig != "skip-verify" || cfg.ReadTimeout != 5*time.Second {
		t.Errorf("config %+v", cfg)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SAGAS_DB_DSN": "app:clave@tcp(db:3306)/sagas"}, `names database "sagas"`},
		{map[string]string{"SAGAS_DB_DSN": "app:clave@tcp(db:3306)/", "SAGAS_DB_HOST": "otro"}, "SAGAS_DB_HOST"},
		{map[string]string{"SAGAS_DB_DSN": "app:clave@tcp(db:3306)/?tls=true", "SAGAS_DB_TLS": "on"}, "set only one"},
		{map[string]string{"SAGAS_DB_DSN": "app:clave@db:3306"}, "not a go-sql-driver/mysql DSN"},
	} {
		c.env["SAGAS_STORAGE_TYPE"] = "mysql"
		_, err := leer(c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want it to mention %q", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "clave") {
			t.Errorf("the DSN's password leaks into the message: %v", err)
		}
	}
}

func TestUsuarioDeMigracion(t *testing.T) {
	s, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_USER": "app", "SAGAS_DB_PASSWORD": "a",
		"SAGAS_DB_MIGRATION_USER": "mig", "SAGAS_DB_MIGRATION_PASSWORD_FILE": fichero(t, "m\n")})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.ConfigMigracion("sagas"); c.User != "mig" || c.Passwd != "m" || !s.ConMigracionAparte() {
		t.Errorf("migration config %s/%s", c.User, c.Passwd)
	}
	if c := s.Config("sagas"); c.User != "app" || c.Passwd != "a" {
		t.Errorf("runtime config %s/%s", c.User, c.Passwd)
	}
	// The runtime does not need the migration password; -preparar does.
	s, err = leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_MIGRATION_USER": "mig"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidarMigracion(); err == nil || !strings.Contains(err.Error(), "SAGAS_DB_MIGRATION_PASSWORD") {
		t.Errorf("ValidarMigracion = %v", err)
	}
	// Single-user mode: the runtime user migrates.
	s, _ = leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql"})
	if c := s.ConfigMigracion("sagas"); c.User != "sagas" || s.ConMigracionAparte() || s.ValidarMigracion() != nil {
		t.Errorf("single user: %s", c.User)
	}
}

// conectar opens env's server as the runtime user and pings it, explaining
// the failure as the stores do.
func conectar(t *testing.T, env map[string]string) error {
	t.Helper()
	s, err := leer(env)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config("sagas")
	con, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(con)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return basedatos.Explicar(ctx, db.PingContext(ctx), cfg)
}

func TestConTLSYLaCAConecta(t *testing.T) {
	seg := integracion.MySQLSeguro(t)
	if err := conectar(t, seg.Entorno(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSinTLSElServidorQueLoExigeRechazaYElMensajeLoDice(t *testing.T) {
	seg := integracion.MySQLSeguro(t)
	env := seg.Entorno(t)
	delete(env, "SAGAS_DB_TLS")
	delete(env, "SAGAS_DB_TLS_CA_FILE")
	err := conectar(t, env)
	if !errors.Is(err, basedatos.ErrAcceso) || !basedatos.Definitivo(err) {
		t.Fatalf("err = %v, want ErrAcceso", err)
	}
	t.Log(err)
	for _, want := range []string{"sagas_app", "SAGAS_DB_TLS=off", "el servidor ofrece TLS", "SAGAS_DB_TLS=on"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from: %v", want, err)
		}
	}
}

func TestCADesconocidaSeRechazaNombrandoLa(t *testing.T) {
	seg := integracion.MySQLSeguro(t)
	env := seg.Entorno(t)
	env["SAGAS_DB_TLS_CA_FILE"], _ = crearCA(t)
	err := conectar(t, env)
	if !errors.Is(err, basedatos.ErrCertificado) || !basedatos.Definitivo(err) {
		t.Fatalf("err = %v, want ErrCertificado", err)
	}
	t.Log(err)
	for _, want := range []string{"no lo firma una CA de confianza", "SAGAS_DB_TLS_CA_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from: %v", want, err)
		}
	}
}

func TestClaveIncorrectaConTLSEsAccesoDenegadoSinPistaDeTLS(t *testing.T) {
	seg := integracion.MySQLSeguro(t)
	env := seg.Entorno(t)
	delete(env, "SAGAS_DB_PASSWORD_FILE")
	env["SAGAS_DB_PASSWORD"] = "incorrecta"
	err := conectar(t, env)
	if !errors.Is(err, basedatos.ErrAcceso) || strings.Contains(err.Error(), "SAGAS_DB_TLS=on") {
		t.Fatalf("err = %v, want ErrAcceso without the TLS hint", err)
	}
}

func TestTLSContraUnServidorSinTLS(t *testing.T) {
	cfg, err := mysql.ParseDSN(integracion.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	ofrece, err := basedatos.OfreceTLS(context.Background(), cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if ofrece {
		t.Skipf("the plain test server %s offers TLS", cfg.Addr)
	}
	cfg.TLSConfig, cfg.DBName = "true", ""
	s := basedatos.DesdeConfig(cfg)
	c := s.Config("")
	con, err := mysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(con)
	defer db.Close()
	err = basedatos.Explicar(context.Background(), db.Ping(), c)
	if !errors.Is(err, basedatos.ErrSinTLS) || !strings.Contains(err.Error(), "SAGAS_DB_TLS") {
		t.Fatalf("err = %v, want ErrSinTLS naming SAGAS_DB_TLS", err)
	}
	t.Log(err)
}

// crearCA writes a throwaway CA certificate that signed nothing the
// servers use, and returns its file.
func crearCA(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	ca, cert := integracion.CAAjena(t)
	return fichero(t, ca), cert
}

// A runtime connection bounds each read and write, so a partitioned or
// frozen server fails a statement in seconds; a DSN's own bounds win, and
// the migration user's DDL is not cut short.
func TestPlazosDeLecturaYEscritura(t *testing.T) {
	s, err := leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_MIGRATION_USER": "mig"})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Config("x"); c.ReadTimeout != basedatos.PlazoLectura || c.WriteTimeout != basedatos.PlazoLectura {
		t.Errorf("runtime: read %s, write %s; want %s", c.ReadTimeout, c.WriteTimeout, basedatos.PlazoLectura)
	}
	if c := s.ConfigMigracion("x"); c.ReadTimeout != 0 || c.WriteTimeout != 0 {
		t.Errorf("migration: read %s, write %s; want none", c.ReadTimeout, c.WriteTimeout)
	}
	s, err = leer(map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_DSN": "u:p@tcp(db:3306)/?readTimeout=5s&writeTimeout=7s"})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Config("x"); c.ReadTimeout != 5*time.Second || c.WriteTimeout != 7*time.Second {
		t.Errorf("the DSN's bounds: read %s, write %s", c.ReadTimeout, c.WriteTimeout)
	}
}
