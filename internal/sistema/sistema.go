// Package sistema starts the whole system for end-to-end tests as a user
// runs it: the coordinator and the six participants as separate OS
// processes, built from this module, against a real broker and a real store.
package sistema

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/go-sql-driver/mysql"
)

// Participantes are the six participant services.
var Participantes = []string{"influencer", "marca", "tracking", "afiliados", "comisiones", "notificaciones"}

var (
	construir sync.Once
	binDir    string
	errBuild  error
)

// Binarios builds the coordinator and participant binaries once per test
// process and returns their directory.
func Binarios(t testing.TB) string {
	t.Helper()
	construir.Do(func() {
		dir, err := os.MkdirTemp("", "sagas-bin-")
		if err != nil {
			errBuild = err
			return
		}
		binDir = dir
		_, archivo, _, _ := runtime.Caller(0)
		raiz := filepath.Join(filepath.Dir(archivo), "..", "..")
		args := []string{"build", "-o", dir + "/", "./coordinador/cmd/coordinador"}
		for _, p := range Participantes {
			args = append(args, "./participantes/"+p)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = raiz
		if out, err := cmd.CombinedOutput(); err != nil {
			errBuild = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if errBuild != nil {
		t.Fatal(errBuild)
	}
	return binDir
}

// EjecutarPruebas is a package's TestMain body: it runs the tests and then
// removes the binaries Binarios built (~300 MB per test process, which
// otherwise stay in the temporary directory after every run).
//
//	func TestMain(m *testing.M) { os.Exit(sistema.EjecutarPruebas(m)) }
func EjecutarPruebas(m *testing.M) int {
	codigo := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintf(os.Stderr, "remove the test binaries: %v\n", err)
		}
	}
	return codigo
}

// Sistema is a running coordinator plus participants.
type Sistema struct {
	t         testing.TB
	API       string            // http://127.0.0.1:port
	APIs      []string          // the other coordinator replicas' APIs (Opciones.Replicas)
	Metricas  map[string]string // participant → http://addr (metrics, /efectos)
	Namespace string
	Env       map[string]string // the environment shared by every process
	// PrepararEnv is added to Env for the provisioning step only (its
	// admin credentials).
	PrepararEnv map[string]string
	Dir         string
	procesos    map[string]*exec.Cmd
	logs        map[string]*os.File
	// credenciales is the secured broker's directory of role tokens ("" on
	// the open broker).
	credenciales string
}

// Opciones of Arrancar.
type Opciones struct {
	Almacen string // sqlite (default) or mysql
	// Seguro runs on the secured broker (integracion.PulsarSeguro: TLS,
	// token authentication, authorization, no topic created on use): the
	// provisioning step as role admin, each process with its own role's
	// token (the role named like the process).
	Seguro bool
	// Replicas is the number of coordinator replicas (default 1); API is
	// the first one's. Several need a MySQL store.
	Replicas int
	Extra    map[string]string // extra environment for every process
	// Instancias runs that many instances of a participant (default one);
	// the second is named "<participant>-2" in Metricas and in the logs,
	// and so on. They share the participant's store.
	Instancias map[string]int
}

func aleatorio() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PuertoLibre returns a free loopback TCP port.
func PuertoLibre(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Arrancar starts the system in its own namespace and store and stops it when
// the test ends.
//
// Almacen "mysql-tls" is the server that requires TLS
// (integracion.MySQLSeguro), verified with its CA: every binary's -preparar
// runs first as the migration user, then every process as the runtime user
// with data privileges only.
func Arrancar(t testing.TB, o Opciones) *Sistema {
	t.Helper()
	var purl, aurl, credenciales string // skip before building
	if o.Seguro {
		b := integracion.PulsarSeguro(t)
		purl, aurl, credenciales = b.URL, b.AdminURL, b.Dir
	} else {
		purl, aurl = integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	}
	bin := Binarios(t)
	ns := "e" + aleatorio()
	dir := t.TempDir()
	s := &Sistema{t: t, Namespace: ns, Dir: dir, Metricas: map[string]string{}, procesos: map[string]*exec.Cmd{}, logs: map[string]*os.File{},
		credenciales: credenciales}
	env := map[string]string{
		"SAGAS_PULSAR_URL": purl, "SAGAS_PULSAR_ADMIN_URL": aurl,
		"SAGAS_PULSAR_NAMESPACE": ns, "SAGAS_DATA_DIR": filepath.Join(dir, "data"),
		"SAGAS_DB_PATH": filepath.Join(dir, "data", "coordinador.db"), "SAGAS_LOG_DIR": filepath.Join(dir, "logs"),
		"SAGAS_LOG_LEVEL": "warn", "SAGAS_REPLICA_ID": "c-" + ns,
	}
	preparar := false
	if o.Almacen == "mysql-tls" {
		seg := integracion.MySQLSeguro(t)
		nombre := seg.BaseNueva(t, "e2e_")
		for _, p := range Participantes {
			seg.BorrarAlTerminar(t, nombre+"_"+p)
		}
		for k, v := range seg.Entorno(t) {
			env[k] = v
		}
		env["SAGAS_DB_NAME"], env["SAGAS_DB_PREFIJO"] = nombre, nombre+"_"
		preparar = true
	}
	if o.Almacen == "mysql" {
		dsn := integracion.MySQLDSN(t)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := strings.Cut(cfg.Addr, ":")
		nombre := "e2e_" + ns
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE DATABASE " + nombre); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			db.Exec("DROP DATABASE " + nombre)
			for _, p := range Participantes {
				db.Exec("DROP DATABASE IF EXISTS " + nombre + "_" + p)
			}
			db.Close()
		})
		for k, v := range map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": host, "SAGAS_DB_PORT": port,
			"SAGAS_DB_NAME": nombre, "SAGAS_DB_PREFIJO": nombre + "_", "SAGAS_DB_USER": cfg.User, "SAGAS_DB_PASSWORD": cfg.Passwd} {
			env[k] = v
		}
	}
	if o.Seguro {
		env["SAGAS_PULSAR_AUTH"] = "token"
		env["SAGAS_PULSAR_TLS_TRUST_CERTS_FILE"] = filepath.Join(credenciales, "ca.pem")
		s.PrepararEnv = map[string]string{"SAGAS_PULSAR_TOKEN_FILE": filepath.Join(credenciales, "admin.token")}
	}
	for k, v := range o.Extra {
		env[k] = v
	}
	s.Env = env
	t.Cleanup(func() {
		s.Detener()
		// Any process may be the one that stalled: a failed test shows
		// every log, as the failing run left it.
		if t.Failed() {
			t.Logf("logs of every process:\n%s", s.Logs())
		}
	})
	if preparar {
		// The participants' stores; the coordinator's is migrated by
		// Preparar below, with the broker.
		for _, p := range Participantes {
			s.preparar(filepath.Join(bin, p), p)
		}
	}

	apiPort := PuertoLibre(t)
	s.API = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	s.Preparar()
	s.iniciar(filepath.Join(bin, "coordinador"), "coordinador", map[string]string{"SAGAS_API_HOST": "127.0.0.1", "SAGAS_API_PORT": fmt.Sprint(apiPort)})
	s.esperarListo(s.API+"/readyz", "coordinador")
	for i := 2; i <= o.Replicas; i++ {
		nombre := fmt.Sprintf("coordinador-%d", i)
		api := fmt.Sprintf("http://127.0.0.1:%d", PuertoLibre(t))
		s.APIs = append(s.APIs, api)
		s.iniciar(filepath.Join(bin, "coordinador"), nombre, map[string]string{"SAGAS_API_HOST": "127.0.0.1",
			"SAGAS_API_PORT": strings.TrimPrefix(api, "http://127.0.0.1:"), "SAGAS_REPLICA_ID": "c" + fmt.Sprint(i) + "-" + ns})
		s.esperarListo(api+"/readyz", nombre)
	}
	var instancias []string
	for _, p := range Participantes {
		for i := range max(o.Instancias[p], 1) {
			nombre := p
			if i > 0 {
				nombre = fmt.Sprintf("%s-%d", p, i+1)
			}
			addr := fmt.Sprintf("127.0.0.1:%d", PuertoLibre(t))
			s.Metricas[nombre] = "http://" + addr
			s.iniciar(filepath.Join(bin, p), nombre, map[string]string{"SAGAS_METRICS_ADDR": addr})
			instancias = append(instancias, nombre)
		}
	}
	for _, nombre := range instancias {
		s.esperarListo(s.Metricas[nombre]+"/readyz", nombre)
	}
	return s
}

// Preparar runs the operator's provisioning step, `coordinador -preparar`,
// with the system's environment (and PrepararEnv over it).
func (s *Sistema) Preparar() {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(Binarios(s.t), "coordinador"), "-preparar")
	cmd.Env = append(os.Environ()[:0:0], "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	for _, e := range []map[string]string{s.Env, s.PrepararEnv} {
		for k, v := range e {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("coordinador -preparar: %v\n%s", err, out)
	}
}

func (s *Sistema) iniciar(bin, nombre string, extra map[string]string) {
	s.t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ()[:0:0], "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if s.credenciales != "" { // each binary authenticates as the role named like it
		cmd.Env = append(cmd.Env, "SAGAS_PULSAR_TOKEN_FILE="+filepath.Join(s.credenciales, filepath.Base(bin)+".token"))
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	log, err := os.Create(filepath.Join(s.Dir, nombre+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.procesos[nombre], s.logs[nombre] = cmd, log
}

// Ejecutar runs one more process of the system's binaries (nombre:
// coordinador or a participant) with the system's environment, its role's
// token and extra over them, until it exits or the deadline passes, and
// returns its output and exit error (processes that fail at start-up).
func (s *Sistema) Ejecutar(nombre string, extra map[string]string, plazo time.Duration) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), plazo)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(Binarios(s.t), nombre))
	cmd.Env = append(os.Environ()[:0:0], "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if s.credenciales != "" {
		cmd.Env = append(cmd.Env, "SAGAS_PULSAR_TOKEN_FILE="+filepath.Join(s.credenciales, nombre+".token"))
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s still running after %s", nombre, plazo)
	}
	return string(out), err
}

// Log returns the tail of a process's log, for failure messages.
func (s *Sistema) Log(nombre string) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, nombre+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Logs returns the tail of every process's log, named, for failure
// messages of tests where any process may be the one that stalled.
func (s *Sistema) Logs() string {
	nombres := make([]string, 0, len(s.logs))
	for n := range s.logs {
		nombres = append(nombres, n)
	}
	sort.Strings(nombres)
	var b strings.Builder
	for _, n := range nombres {
		fmt.Fprintf(&b, "--- %s.log\n%s\n", n, s.Log(n))
	}
	return b.String()
}

// esperarListo polls url until it answers 200.
func (s *Sistema) esperarListo(url, nombre string) {
	s.t.Helper()
	fin := time.Now().Add(90 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			s.t.Fatal(err)
		}
		s.autorizar(req)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if c := s.procesos[nombre]; c.ProcessState != nil || time.Now().After(fin) {
			s.t.Fatalf("%s not ready at %s: %v\n%s", nombre, url, err, s.Log(nombre))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Detener stops every process (SIGTERM, then SIGKILL after 10s).
func (s *Sistema) Detener() {
	for nombre, c := range s.procesos {
		if c.Process == nil {
			continue
		}
		c.Process.Signal(syscall.SIGTERM)
		hecho := make(chan struct{})
		go func() { c.Wait(); close(hecho) }()
		select {
		case <-hecho:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-hecho
		}
		s.logs[nombre].Close()
		delete(s.procesos, nombre)
	}
}

// Matar sends SIGKILL to one process (fault tests).
func (s *Sistema) Matar(nombre string) {
	if c := s.procesos[nombre]; c != nil {
		c.Process.Kill()
		c.Wait()
		s.logs[nombre].Close()
		delete(s.procesos, nombre)
	}
}

// Post sends a JSON POST to the API and returns status and body.
func (s *Sistema) Post(ctx context.Context, ruta, cuerpo string, cabeceras ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.API+ruta, strings.NewReader(cuerpo))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(cabeceras); i += 2 {
		req.Header.Set(cabeceras[i], cabeceras[i+1])
	}
	return hacer(req)
}

// Get sends a GET to the API (or any absolute URL); to a participant's
// listener (Metricas) with Env's SAGAS_METRICS_TOKEN when set.
func (s *Sistema) Get(ctx context.Context, ruta string) (int, []byte, error) {
	url := ruta
	if strings.HasPrefix(ruta, "/") {
		url = s.API + ruta
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	s.autorizar(req)
	return hacer(req)
}

// autorizar adds Env's SAGAS_METRICS_TOKEN, when set, to a request for a
// participant's listener (Metricas): every route there needs it.
func (s *Sistema) autorizar(req *http.Request) {
	token := s.Env["SAGAS_METRICS_TOKEN"]
	if token == "" {
		return
	}
	for _, base := range s.Metricas {
		if strings.HasPrefix(req.URL.String(), base+"/") {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	}
}

func hacer(req *http.Request) (int, []byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}

// GetCon sends a GET with extra headers (name, value pairs).
func (s *Sistema) GetCon(ctx context.Context, ruta string, cabeceras ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.API+ruta, nil)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(cabeceras); i += 2 {
		req.Header.Set(cabeceras[i], cabeceras[i+1])
	}
	return hacer(req)
}

// preparar runs the provisioning step of a binary (-preparar) to its end.
func (s *Sistema) preparar(bin, nombre string) {
	s.t.Helper()
	cmd := exec.Command(bin, "-preparar")
	cmd.Env = append(os.Environ()[:0:0], "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if s.credenciales != "" {
		cmd.Env = append(cmd.Env, "SAGAS_PULSAR_TOKEN_FILE="+filepath.Join(s.credenciales, nombre+".token"))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s -preparar: %v\n%s", nombre, err, out)
	}
}
