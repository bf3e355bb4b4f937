package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Credentials of the database user scripts/mariadb.sh creates.
const (
	usuarioDB = "sagas"
	claveDB   = "sagas123"
	baseCoord = "sagas"
	tenant    = "alpespartner"
)

// Bounds of the world's start-up and shut-down.
const (
	plazoListo   = 150 * time.Second // a process becomes ready
	plazoDetener = 20 * time.Second  // a process stops after TERM
	plazoScript  = 6 * time.Minute   // one scripts/*.sh call
)

// mundo is the isolated world of one run: broker and database (through
// scripts/), the coordinator replicas and the participants (as child
// processes in their own process groups, logs in the state dir).
type mundo struct {
	cfg     config
	b       *bitacora
	dirBin  string
	dirLogs string
	dirPids string

	// vida ends when Apagar starts, so restarts and waits in flight give up.
	vida      context.Context
	finVida   context.CancelFunc
	reinicios sync.WaitGroup

	mu            sync.Mutex
	procesos      []*proceso // in start order
	caidas        []caida
	apagando      bool
	apagado       bool
	tiempoBroker  time.Duration // how long the first broker start took
	tiempoDB      time.Duration
	coordinadores []*proceso
	participantes map[string]*proceso

	// On the cluster: the broker killed and not yet restarted (0: none),
	// and whether caos started the cluster (then it stops it at the end).
	brokerCaido     int
	clusterIniciado bool

	// proxyDB (coordinator replica 2 to MariaDB) and proxyBroker (the
	// participantVictima to the broker) exist in plans that cut them.
	proxyDB, proxyBroker *proxy
}

// caida is a process exit the plan did not ask for.
type caida struct {
	Proceso string
	Cuando  time.Time
	Estado  string
	Cola    string // last lines of its log
}

func nuevoMundo(cfg config, b *bitacora) *mundo {
	vida, fin := context.WithCancel(context.Background())
	return &mundo{
		cfg: cfg, b: b,
		dirBin:  filepath.Join(cfg.Estado, "bin"),
		dirLogs: filepath.Join(cfg.Estado, "logs"),
		dirPids: filepath.Join(cfg.Estado, "pids"),
		vida:    vida, finVida: fin,
		participantes: map[string]*proceso{},
	}
}

// Preparar starts from clean data: broker and MariaDB through the scripts,
// the binaries built, two coordinator replicas and the six participants
// started and ready.
func (m *mundo) Preparar(ctx context.Context) error {
	for _, d := range []string{m.dirBin, m.dirLogs, m.dirPids, filepath.Join(m.cfg.Estado, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	m.limpiarRestos()
	// Each run's logs start empty (the broker's and MariaDB's own logs live
	// in their instance dirs, which the scripts' clean removes).
	viejos, _ := filepath.Glob(filepath.Join(m.dirLogs, "*.log"))
	for _, v := range viejos {
		os.Remove(v)
	}
	for _, p := range []int{m.cfg.PuertosAPI[0], m.cfg.PuertosAPI[1]} {
		if puertoAbierto(p) {
			return fmt.Errorf("port %d is already in use", p)
		}
	}
	for i := range servicios() {
		if p := m.cfg.PuertoMetricas + i; puertoAbierto(p) {
			return fmt.Errorf("port %d is already in use", p)
		}
	}

	if m.cfg.Cluster {
		m.b.Printf("limpiando datos de un run anterior (mariadb.sh clean); el cluster conserva los suyos, cada run usa su propio namespace")
	} else {
		m.b.Printf("limpiando datos de un run anterior (pulsar.sh clean, mariadb.sh clean)")
		if err := m.script(ctx, "pulsar.sh", "clean"); err != nil {
			return err
		}
	}
	if err := m.script(ctx, "mariadb.sh", "clean"); err != nil {
		return err
	}

	// The broker takes tens of seconds: start it while the database starts
	// and the binaries build.
	if m.cfg.Cluster {
		m.b.Printf("cluster de scripts/cluster.sh (%s, estado %s, %d particiones por tópico), MariaDB en 127.0.0.1:%d y compilando", m.cfg.urlPulsar(), m.cfg.EstadoCluster, m.cfg.Particiones, m.cfg.PuertoDB)
	} else {
		m.b.Printf("iniciando broker en 127.0.0.1:%d/%d, MariaDB en 127.0.0.1:%d y compilando", m.cfg.PuertoPulsar, m.cfg.PuertoPulsarHTTP, m.cfg.PuertoDB)
	}
	errBroker := make(chan error, 1)
	go func() {
		t := time.Now()
		var err error
		if m.cfg.Cluster {
			err = m.iniciarCluster(ctx)
		} else {
			err = m.script(ctx, "pulsar.sh", "start")
		}
		m.mu.Lock()
		m.tiempoBroker = time.Since(t)
		m.mu.Unlock()
		errBroker <- err
	}()
	t := time.Now()
	errDB := m.script(ctx, "mariadb.sh", "start")
	m.tiempoDB = time.Since(t)
	errBuild := m.compilar(ctx)
	if err := errors.Join(<-errBroker, errDB, errBuild); err != nil {
		return err
	}
	m.b.Printf("broker listo en %s, MariaDB en %s", m.tiempoBroker.Round(100*time.Millisecond), m.tiempoDB.Round(100*time.Millisecond))

	if usaProxies(m.cfg.Plan) {
		var err error
		if m.proxyDB, err = nuevoProxy(fmt.Sprintf("127.0.0.1:%d", m.cfg.PuertoDB)); err != nil {
			return err
		}
		if m.proxyBroker, err = nuevoProxy(fmt.Sprintf("127.0.0.1:%d", m.cfg.PuertoPulsar)); err != nil {
			return err
		}
		m.b.Printf("proxies: coordinador-2 → MariaDB por %s, %s → broker por %s", m.proxyDB.Direccion(), participanteVictima, m.proxyBroker.Direccion())
	}
	for i, puerto := range m.cfg.PuertosAPI {
		nombre := fmt.Sprintf("coordinador-%d", i+1)
		env := append(m.entornoComun(),
			"SAGAS_DB_NAME="+baseCoord,
			"SAGAS_API_HOST=127.0.0.1",
			"SAGAS_API_PORT="+strconv.Itoa(puerto),
			"SAGAS_REPLICA_ID=caos-"+nombre,
			"SAGAS_LOG_DIR=off",
		)
		// Later entries win in exec's environment.
		if i == 1 && m.proxyDB != nil {
			env = append(env, "SAGAS_DB_PORT="+strconv.Itoa(m.proxyDB.Puerto()))
		}
		if i == 1 && m.cfg.Plan == planDesfase {
			env = append(env, "SAGAS_CAOS_DESFASE_RELOJ="+desfaseReloj.String())
		}
		p := m.nuevoProceso(nombre, "coordinador", env)
		p.listo = m.coordinadorListo(puerto)
		p.puertos = []int{puerto}
		m.coordinadores = append(m.coordinadores, p)
	}
	for i, s := range servicios() {
		env := append(m.entornoComun(),
			"SAGAS_FALLOS=semillas",
			"SAGAS_SEMILLA="+strconv.FormatInt(m.cfg.Semilla, 10),
			"SAGAS_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(m.cfg.PuertoMetricas+i),
			"SAGAS_DATA_DIR="+filepath.Join(m.cfg.Estado, "data"),
		)
		if s.Servicio == participanteVictima && m.proxyBroker != nil {
			env = append(env, "SAGAS_PULSAR_URL=pulsar://"+m.proxyBroker.Direccion())
		}
		p := m.nuevoProceso(s.Servicio, s.Servicio, env)
		p.listo = lineaEnLog("participante iniciado")
		p.puertos = []int{m.cfg.PuertoMetricas + i}
		m.participantes[s.Servicio] = p
	}
	// The operator's provisioning step first (database schema, topics,
	// schemas, permissions), as `make run` does; then every process, the
	// coordinators first.
	if err := m.preparar(ctx); err != nil {
		return err
	}
	if err := m.arrancar(ctx, m.coordinadores[0]); err != nil {
		return err
	}
	resto := append(append([]*proceso{}, m.coordinadores[1:]...), m.procesosParticipantes()...)
	var wg sync.WaitGroup
	errs := make([]error, len(resto))
	for i, p := range resto {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.arrancar(ctx, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.b.Printf("mundo listo: 2 coordinadores (API %d, %d), 6 participantes (SAGAS_FALLOS=semillas, SAGAS_SEMILLA=%d); logs en %s",
		m.cfg.PuertosAPI[0], m.cfg.PuertosAPI[1], m.cfg.Semilla, m.dirLogs)
	return nil
}

func (m *mundo) procesosParticipantes() []*proceso {
	var ps []*proceso
	for _, s := range servicios() {
		ps = append(ps, m.participantes[s.Servicio])
	}
	return ps
}

// entornoBase is this process's environment without any SAGAS_ or PULSAR_
// setting (an engineer's shell must not leak into the isolated world), with
// the sbin directories MariaDB's binaries live in and, unless set,
// GOMAXPROCS=1 as scripts/run.sh sets it.
func entornoBase() []string {
	var env []string
	if os.Getenv("GOMAXPROCS") == "" {
		env = append(env, "GOMAXPROCS=1")
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "SAGAS_CACHE_DIR":
		case strings.HasPrefix(k, "SAGAS_"), strings.HasPrefix(k, "PULSAR_"):
			continue
		case k == "PATH":
			kv = "PATH=" + v + ":/usr/sbin:/sbin"
		}
		env = append(env, kv)
	}
	return env
}

func (m *mundo) entornoComun() []string {
	return append(entornoBase(),
		"SAGAS_PULSAR_URL="+m.cfg.urlPulsar(),
		fmt.Sprintf("SAGAS_PULSAR_ADMIN_URL=%s", m.adminURL()),
		"SAGAS_PULSAR_TENANT="+tenant,
		"SAGAS_PULSAR_NAMESPACE="+m.cfg.Namespace,
		"SAGAS_STORAGE_TYPE=mysql",
		"SAGAS_DB_HOST=127.0.0.1",
		"SAGAS_DB_PORT="+strconv.Itoa(m.cfg.PuertoDB),
		"SAGAS_DB_USER="+usuarioDB,
		"SAGAS_DB_PASSWORD="+claveDB,
		"SAGAS_LOG_LEVEL=info",
		"SAGAS_PULSAR_PARTITIONS="+strconv.Itoa(m.cfg.Particiones),
	)
}

// iniciarCluster starts scripts/cluster.sh's cluster unless it already
// serves; caos stops it at the end only if it started it here.
func (m *mundo) iniciarCluster(ctx context.Context) error {
	if m.scriptCluster(ctx, "status") == nil {
		m.b.Printf("el cluster ya corría: se usa y se deja corriendo")
		return nil
	}
	m.mu.Lock()
	m.clusterIniciado = true
	m.mu.Unlock()
	return m.scriptCluster(ctx, "start")
}

// scriptCluster runs scripts/cluster.sh with the cluster's state dir.
func (m *mundo) scriptCluster(ctx context.Context, args ...string) error {
	return m.scriptEn(ctx, m.cfg.EstadoCluster, "cluster.sh", args...)
}

// preparar runs `coordinador -preparar` with the coordinators' environment.
func (m *mundo) preparar(ctx context.Context) error {
	m.b.Printf("preparando: coordinador -preparar")
	cmd := exec.CommandContext(ctx, filepath.Join(m.dirBin, "coordinador"), "-preparar")
	cmd.Env = append(m.entornoComun(), "SAGAS_DB_NAME="+baseCoord, "SAGAS_LOG_DIR=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("coordinador -preparar: %w\n%s", err, out)
	}
	return nil
}

func (m *mundo) adminURL() string { return m.cfg.urlAdmin() }

// dsn is the MySQL DSN of database base on the run's MariaDB.
func (m *mundo) dsn(base string) string {
	return fmt.Sprintf("%s:%s@tcp(127.0.0.1:%d)/%s?parseTime=true&timeout=5s&readTimeout=30s", usuarioDB, claveDB, m.cfg.PuertoDB, base)
}

// --- scripts -----------------------------------------------------------------

// script runs scripts/<nombre> with the world's ports and state dir, its
// output appended to logs/<nombre>.log. When ctx ends the script's process
// group is stopped (what it spawned detached is stopped by Apagar).
func (m *mundo) script(ctx context.Context, nombre string, args ...string) error {
	return m.scriptEn(ctx, m.cfg.Estado, nombre, args...)
}

// scriptEn is script with estado as the script's SAGAS_STATE_DIR.
func (m *mundo) scriptEn(ctx context.Context, estado, nombre string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, plazoScript)
	defer cancel()
	ruta := filepath.Join(m.dirLogs, strings.TrimSuffix(nombre, ".sh")+".log")
	f, err := os.OpenFile(ruta, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n===== %s %s %s =====\n", time.Now().Format(time.RFC3339), nombre, strings.Join(args, " "))
	inicio, _ := f.Seek(0, io.SeekEnd)
	cmd := exec.Command("bash", append([]string{filepath.Join(m.cfg.Raiz, "scripts", nombre)}, args...)...)
	cmd.Dir = m.cfg.Raiz
	cmd.Env = append(entornoBase(),
		"PULSAR_PORT="+strconv.Itoa(m.cfg.PuertoPulsar),
		"PULSAR_HTTP_PORT="+strconv.Itoa(m.cfg.PuertoPulsarHTTP),
		"SAGAS_DB_PORT="+strconv.Itoa(m.cfg.PuertoDB),
		"SAGAS_STATE_DIR="+estado,
	)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s %s: %w", nombre, strings.Join(args, " "), err)
	}
	hecho := make(chan error, 1)
	go func() { hecho <- cmd.Wait() }()
	select {
	case err = <-hecho:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-hecho:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-hecho
		}
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("scripts/%s %s: %w\n%s", nombre, strings.Join(args, " "), err, colaDesde(ruta, inicio, 30))
	}
	return nil
}

// compilar builds the coordinator and the participants into the bin dir.
func (m *mundo) compilar(ctx context.Context) error {
	// go test puts its GOROOT/bin first in PATH; scripts/ add /usr/local/go/bin.
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if r := os.Getenv("GOROOT"); r != "" {
			goBin = filepath.Join(r, "bin", "go")
		}
	}
	// -tags caos: the coordinator reads SAGAS_CAOS_DESFASE_RELOJ (the skew
	// plan); no other file of ours carries the tag.
	args := []string{"build", "-tags", "caos", "-o", m.dirBin + "/", m.cfg.PaqueteCoord, "./participantes/..."}
	t := time.Now()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = m.cfg.Raiz
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	for _, n := range append([]string{"coordinador"}, nombresServicios()...) {
		if _, err := os.Stat(filepath.Join(m.dirBin, n)); err != nil {
			return fmt.Errorf("go build left no binary %s: %w", n, err)
		}
	}
	m.b.Printf("compilado: go %s (%s)", strings.Join(args, " "), time.Since(t).Round(100*time.Millisecond))
	return nil
}

// --- processes -----------------------------------------------------------------

// proceso is one child process the world runs and may kill and restart.
type proceso struct {
	nombre string
	bin    string
	env    []string
	log    string
	pid    string // pid file
	// listo waits until the process (started with its log at offset
	// desde) is ready, or fails.
	listo func(ctx context.Context, p *proceso, desde int64) error
	// puertos must be free before it starts.
	puertos []int

	mu       sync.Mutex
	cmd      *exec.Cmd
	hecho    chan struct{}
	esperado bool // its exit was asked for (kill -9, stop)
	// arriba is set once it was ready: an exit before that is a failed
	// start, reported by arrancar, not a crash.
	arriba bool
}

func (m *mundo) nuevoProceso(nombre, binario string, env []string) *proceso {
	p := &proceso{
		nombre: nombre, bin: filepath.Join(m.dirBin, binario), env: env,
		log: filepath.Join(m.dirLogs, nombre+".log"), pid: filepath.Join(m.dirPids, nombre+".pid"),
	}
	m.mu.Lock()
	m.procesos = append(m.procesos, p)
	m.mu.Unlock()
	return p
}

// Corriendo reports whether the process runs.
func (p *proceso) Corriendo() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hecho == nil {
		return false
	}
	select {
	case <-p.hecho:
		return false
	default:
		return true
	}
}

// Pid is the process id of the running process (0 if none).
func (p *proceso) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// arrancar starts p and waits until it is ready.
func (m *mundo) arrancar(ctx context.Context, p *proceso) error {
	m.mu.Lock()
	if m.apagando {
		m.mu.Unlock()
		return errors.New("el mundo se está apagando")
	}
	m.mu.Unlock()
	if p.Corriendo() {
		return fmt.Errorf("%s ya corre (pid %d)", p.nombre, p.Pid())
	}
	for _, puerto := range p.puertos {
		if puertoAbierto(puerto) {
			return fmt.Errorf("iniciar %s: el puerto %d ya lo usa otro proceso", p.nombre, puerto)
		}
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n===== caos: inicio de %s %s =====\n", p.nombre, time.Now().Format(time.RFC3339Nano))
	desde, _ := f.Seek(0, io.SeekEnd)
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Dir = m.cfg.Estado
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C in the terminal reaches only caos,
	// which stops everything in order; kill -9 hits the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("iniciar %s: %w", p.nombre, err)
	}
	_ = os.WriteFile(p.pid, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	hecho := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.hecho, p.esperado, p.arriba = cmd, hecho, false, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		caida := !p.esperado && p.arriba
		p.mu.Unlock()
		close(hecho)
		if caida {
			m.caido(p, cmd.ProcessState, err)
		}
	}()
	lctx, cancel := context.WithTimeout(ctx, plazoListo)
	defer cancel()
	lctx, cancelVida := context.WithCancel(lctx)
	defer cancelVida()
	stop := context.AfterFunc(m.vida, cancelVida)
	defer stop()
	for {
		err := p.listo(lctx, p, desde)
		if err == nil {
			p.mu.Lock()
			p.arriba = true
			p.mu.Unlock()
			select {
			case <-hecho:
				return fmt.Errorf("%s terminó al quedar listo (%v)\n%s", p.nombre, cmd.ProcessState, cola(p.log, 30))
			default:
			}
			return nil
		}
		select {
		case <-hecho:
			return fmt.Errorf("%s terminó al iniciar (%v)\n%s", p.nombre, cmd.ProcessState, cola(p.log, 30))
		case <-lctx.Done():
			p.senal(syscall.SIGKILL, 10*time.Second)
			return fmt.Errorf("%s no quedó listo en %s (%v): %w\n%s", p.nombre, plazoListo, err, lctx.Err(), cola(p.log, 30))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Matar sends SIGKILL to p's process group and waits for it to exit.
func (m *mundo) Matar(p *proceso) (int, error) {
	return p.senal(syscall.SIGKILL, 10*time.Second)
}

// Detener sends SIGTERM, then SIGKILL if p has not stopped within plazoDetener.
func (p *proceso) Detener() {
	if _, err := p.senal(syscall.SIGTERM, plazoDetener); err != nil {
		p.senal(syscall.SIGKILL, 10*time.Second)
	}
}

// senalSinEsperar sends s (SIGSTOP, SIGCONT) to p's process group without
// waiting for an exit.
func (p *proceso) senalSinEsperar(s syscall.Signal) error {
	p.mu.Lock()
	if p.cmd == nil || p.hecho == nil {
		p.mu.Unlock()
		return fmt.Errorf("%s no corre", p.nombre)
	}
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	if err := syscall.Kill(-pid, s); err != nil {
		if err := syscall.Kill(pid, s); err != nil {
			return fmt.Errorf("%v a %s (pid %d): %w", s, p.nombre, pid, err)
		}
	}
	return nil
}

func (p *proceso) senal(s syscall.Signal, espera time.Duration) (int, error) {
	p.mu.Lock()
	if p.cmd == nil || p.hecho == nil {
		p.mu.Unlock()
		return 0, fmt.Errorf("%s no corre", p.nombre)
	}
	p.esperado = true
	pid, hecho := p.cmd.Process.Pid, p.hecho
	p.mu.Unlock()
	select {
	case <-hecho:
		return pid, fmt.Errorf("%s ya había terminado", p.nombre)
	default:
	}
	if err := syscall.Kill(-pid, s); err != nil {
		syscall.Kill(pid, s)
	}
	select {
	case <-hecho:
		os.Remove(p.pid)
		return pid, nil
	case <-time.After(espera):
		return pid, fmt.Errorf("%s (pid %d) sigue vivo %s después de %v", p.nombre, pid, espera, s)
	}
}

// caido records an exit the plan did not ask for and, if configured,
// restarts the process.
func (m *mundo) caido(p *proceso, estado *os.ProcessState, err error) {
	m.mu.Lock()
	if m.apagando {
		m.mu.Unlock()
		return
	}
	c := caida{Proceso: p.nombre, Cuando: time.Now(), Estado: fmt.Sprint(estado), Cola: cola(p.log, 15)}
	if estado == nil {
		c.Estado = fmt.Sprint(err)
	}
	m.caidas = append(m.caidas, c)
	m.reinicios.Add(1)
	m.mu.Unlock()
	m.b.Printf("VIOLACIÓN: %s terminó sin que el plan lo pidiera (%s); últimas líneas de %s:\n%s", p.nombre, c.Estado, p.log, indentar(c.Cola))
	go func() {
		defer m.reinicios.Done()
		if !m.cfg.ReiniciarCaidos {
			return
		}
		for intento := 1; intento <= 10; intento++ {
			select {
			case <-m.vida.Done():
				return
			case <-time.After(2 * time.Second):
			}
			if err := m.arrancar(m.vida, p); err != nil {
				m.b.Printf("reiniciar %s tras su caída (intento %d): %v", p.nombre, intento, primeraLinea(err.Error()))
				continue
			}
			m.b.Printf("%s reiniciado tras su caída (pid %d)", p.nombre, p.Pid())
			return
		}
	}()
}

// Caidas returns the unplanned exits so far.
func (m *mundo) Caidas() []caida {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]caida(nil), m.caidas...)
}

// Apagar stops everything the world started, in reverse order of start-up:
// participants and coordinators, then MariaDB and the broker. It is safe to
// call more than once and after a partial start.
func (m *mundo) Apagar() {
	m.mu.Lock()
	if m.apagado {
		m.mu.Unlock()
		return
	}
	m.apagado, m.apagando = true, true
	procesos := append([]*proceso(nil), m.procesos...)
	m.mu.Unlock()
	m.finVida()
	m.reinicios.Wait()
	m.b.Printf("apagando todo lo iniciado")
	var wg sync.WaitGroup
	for i := len(procesos) - 1; i >= 0; i-- {
		p := procesos[i]
		if !p.Corriendo() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Detener()
		}()
	}
	wg.Wait()
	for _, px := range []*proxy{m.proxyDB, m.proxyBroker} {
		if px != nil {
			px.Cerrar()
		}
	}
	ctx := context.Background()
	if err := m.script(ctx, "mariadb.sh", "stop"); err != nil {
		m.b.Printf("detener MariaDB: %v", err)
	}
	m.mu.Lock()
	clusterIniciado, brokerCaido := m.clusterIniciado, m.brokerCaido
	m.mu.Unlock()
	switch {
	case m.cfg.Cluster && clusterIniciado:
		if err := m.scriptCluster(ctx, "stop"); err != nil {
			m.b.Printf("detener el cluster: %v", err)
		}
	case m.cfg.Cluster && brokerCaido != 0:
		// Leave the cluster as it was found: both brokers up.
		if err := m.scriptCluster(ctx, "restart-broker", strconv.Itoa(brokerCaido)); err != nil {
			m.b.Printf("reiniciar el broker %d del cluster: %v", brokerCaido, err)
		}
	case !m.cfg.Cluster:
		if err := m.script(ctx, "pulsar.sh", "stop"); err != nil {
			m.b.Printf("detener broker: %v", err)
		}
	}
	m.b.Printf("apagado")
}

// limpiarRestos kills processes a previous run that was itself killed left
// behind (their pid files point at our binaries).
func (m *mundo) limpiarRestos() {
	archivos, _ := filepath.Glob(filepath.Join(m.dirPids, "*.pid"))
	for _, a := range archivos {
		b, _ := os.ReadFile(a)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 1 {
			linea, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.HasPrefix(linea, []byte(m.dirBin+"/")) {
				m.b.Printf("matando %s (pid %d), resto de un run anterior", filepath.Base(a), pid)
				syscall.Kill(-pid, syscall.SIGKILL)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.Remove(a)
	}
}

// --- readiness -------------------------------------------------------------------

// coordinadorListo: its /readyz answers 200 (database and broker reachable).
func (m *mundo) coordinadorListo(puerto int) func(context.Context, *proceso, int64) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", puerto)
	return func(ctx context.Context, p *proceso, desde int64) error {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
		}
		return nil
	}
}

// lineaEnLog: the process wrote a log line containing texto since it started.
func lineaEnLog(texto string) func(context.Context, *proceso, int64) error {
	return func(_ context.Context, p *proceso, desde int64) error {
		f, err := os.Open(p.log)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Seek(desde, io.SeekStart); err != nil {
			return err
		}
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(texto)) {
			return fmt.Errorf("todavía sin %q en %s", texto, p.log)
		}
		return nil
	}
}

func puertoAbierto(p int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// --- log helpers -----------------------------------------------------------------

// cola returns the last n lines of a file.
func cola(ruta string, n int) string { return colaDesde(ruta, 0, n) }

// colaDesde returns the last n lines of a file written after offset desde.
func colaDesde(ruta string, desde int64, n int) string {
	b, err := os.ReadFile(ruta)
	if err != nil {
		return fmt.Sprintf("(sin log %s: %v)", ruta, err)
	}
	if desde > 0 && desde <= int64(len(b)) {
		b = b[desde:]
	}
	lineas := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lineas) > n {
		lineas = lineas[len(lineas)-n:]
	}
	for i, l := range lineas {
		lineas[i] = recortar(l, 600)
	}
	return strings.Join(lineas, "\n")
}

func indentar(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

func primeraLinea(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
