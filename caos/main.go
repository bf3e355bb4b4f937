// Command caos is the fault-injection run of the saga bridge. It sets up an
// isolated world (its own Pulsar broker and MariaDB through scripts/, two
// coordinator replicas and the six participants on MySQL with the seeds'
// failure rates on and a fixed seed), drives N sagas of both flows at a
// steady rate through both replicas' HTTP APIs (every POST with an
// Idempotency-Key, retried with a bounded backoff until it gets its 202),
// and meanwhile runs a fault plan, printed as it runs:
//
//  1. kill -9 of coordinator replica 2, restarted later;
//  2. kill -9 of the marca participant, restarted later;
//  3. broker restart (scripts/pulsar.sh stop; start, same data);
//  4. MariaDB restart (scripts/mariadb.sh stop; start, same data).
//
// -plan picks another plan (planes.go; docs/operations.md "Chaos runs"):
// zombie (SIGSTOP of replica 2 while it holds locked rows, then SIGCONT),
// partition (replica 2 ↔ MariaDB and marca ↔ broker through caos's own
// proxies, cut silently and healed), crash (kill -9 of the broker, MariaDB
// and each replica), skew (replica 2's clock 5 minutes behind) and overlap
// (zombie and a broker kill -9 at once).
//
// Then it reads the stores themselves and prints a table of checks:
//
//   - every saga got its 202 and is in the coordinator's sagas table under
//     its Idempotency-Key, and the table holds no saga nobody started;
//   - every saga is terminal within -cota after the later of the last
//     repair and the last 202, with the outbox empty;
//   - COMPLETADA: for each of its steps (pasos_saga), the step's participant
//     holds effect rows for (saga_id, paso), all in their active state, as
//     many as one application makes;
//   - COMPENSADA: no active effect row of the saga in any participant;
//   - no COMPENSACION_FALLIDA, unless explained: every failed compensation
//     timed out, the saga overlapped a fault and no effect is left active;
//   - applied once: per participant, saga and step, no more rows than one
//     application makes (influencer: the input's distinct influencers;
//     marca, tracking, comisiones: one; notificaciones: the input's
//     channels; afiliados: the afiliados_reservados of the recorded reply),
//     all with one creado_en (one transaction writes them all);
//   - every effect has its EJECUTAR recorded as a success in the
//     participant's inbox, and belongs to a saga that exists;
//   - the coordinator's outbox is empty;
//   - no message in any *-DLQ topic of the namespace decodes as a valid
//     command, reply or outcome (that would be a lost message);
//   - each saga's history is a valid path of the state machine (steps in
//     definition order, compensations newest first, a version no smaller
//     than the transitions its steps show) with exactly one outcome event
//     on eventos-saga that agrees with the store (historia.go);
//   - no process exited that the plan did not kill.
//
// It also prints the outcomes, the throughput and, per fault, the API's 5xx
// count and POST latency while it held, and exits non-zero on any
// violation. The clients caos opens itself (reading the dead-letter topics)
// use the SAGAS_PULSAR_AUTH family of its environment; the world's broker
// is open and its processes get none of the caller's SAGAS_ settings. Everything it started is stopped at the end, also on failure
// and on Ctrl-C.
//
//	go run ./caos              2,000 sagas, full plan (or scripts/caos.sh)
//	go run ./caos -corto       ~200 sagas, one fault of each kind, faster plan
//	go run ./caos -plan zombie -n 300   a chaos v2 plan on a small load
//	go run ./caos -h           its flags and the environment it reads
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "caos:", err)
		os.Exit(1)
	}
}

// errViolaciones is returned when the run finished but a check failed.
var errViolaciones = errors.New("violaciones encontradas")

// config is the run's configuration, read once from the command line.
type config struct {
	Raiz   string // repository root (holds go.mod and scripts/)
	Estado string // state dir: broker and DB data, binaries, logs, pid files

	N            int
	Corto        bool
	Tasa         float64 // sagas/s; 0 = derived from the plan's length
	Lanzamientos float64 // share of lanzar-campania-completa sagas
	Semilla      int64   // SAGAS_SEMILLA of the participants and the load's RNG
	Cota         time.Duration
	PlazoPost    time.Duration // a POST is retried for at most this long
	Plan         string        // completo, corto or ninguno

	PuertoPulsar     int
	PuertoPulsarHTTP int
	PuertoDB         int
	PuertosAPI       [2]int
	PuertoMetricas   int // participants use PuertoMetricas .. PuertoMetricas+5
	Namespace        string
	PaqueteCoord     string // package of the coordinator's main
	ReiniciarCaidos  bool

	// Cluster runs the world on scripts/cluster.sh's multi-broker cluster
	// (started if it is down, state under EstadoCluster) instead of its own
	// standalone broker; the cluster plans set it.
	Cluster       bool
	EstadoCluster string
	Particiones   int  // SAGAS_PULSAR_PARTITIONS of the world
	BrokerVictima int  // the broker the broker-cluster plan kills (1 or 2)
	Version       bool // -version: print it and exit

	// Seguridad is how caos's own clients (reading the dead-letter topics)
	// authenticate to the world's broker (SAGAS_PULSAR_AUTH and its family).
	// The world's broker is open and its processes get none of it.
	Seguridad bus.Seguridad
}

// urlPulsar and urlAdmin are the world's broker, for caos's own clients
// and the world's processes. On the cluster the service URL names both
// brokers; the admin URL (one host: the processes' admin client takes one)
// is the broker the broker-cluster plan does not kill.
func (c config) urlPulsar() string {
	if c.Cluster {
		return fmt.Sprintf("pulsar://127.0.0.1:%d,127.0.0.1:%d", puertosBrokerCluster[0], puertosBrokerCluster[1])
	}
	return fmt.Sprintf("pulsar://127.0.0.1:%d", c.PuertoPulsar)
}

func (c config) urlAdmin() string {
	if c.Cluster {
		// An invalid -broker-victima is refused later; never index with it.
		if c.BrokerVictima == 1 {
			return "http://" + idBroker(2)
		}
		return "http://" + idBroker(1)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", c.PuertoPulsarHTTP)
}

// leerConfig reads the command line and the broker's credentials from
// getenv; -h writes the flags and the environment caos reads to ayuda and
// returns flag.ErrHelp.
func leerConfig(args []string, getenv func(string) string, ayuda io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	if configuracion.PideAyuda(args[1:]) {
		fs.SetOutput(ayuda)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\nRuns the saga system in an isolated world under a fault plan and checks the stores for violations.\n\nFlags:\n", args[0])
		fs.PrintDefaults()
		configuracion.Ayuda(fs.Output(), configuracion.Caos)
	}
	fs.IntVar(&c.N, "n", 2000, "number of sagas (default 200 with -corto)")
	fs.BoolVar(&c.Corto, "corto", false, "short mode: ~200 sagas, one fault of each kind, faster plan")
	fs.Float64Var(&c.Tasa, "tasa", 0, "POST rate in sagas/s (0: spread the sagas over the fault plan)")
	fs.Float64Var(&c.Lanzamientos, "lanzamientos", 0.2, "share (0..1) of lanzar-campania-completa sagas; the rest are campana")
	fs.Int64Var(&c.Semilla, "semilla", 20261124, "SAGAS_SEMILLA of the participants and seed of the load's bodies")
	fs.DurationVar(&c.Cota, "cota", 3*time.Minute, "every saga must be terminal within this bound after the last fault")
	fs.DurationVar(&c.PlazoPost, "plazo-post", 5*time.Minute, "give up retrying one saga's POST after this")
	fs.StringVar(&c.Plan, "plan", "", "fault plan: completo, corto, ninguno, zombie, partition, crash, skew, overlap, broker-cluster or unload (default completo, corto with -corto); docs/operations.md \"Chaos runs\" describes each")
	fs.StringVar(&c.Estado, "estado", "", "state dir (default <repo>/.run/caos)")
	fs.IntVar(&c.PuertoPulsar, "puerto-pulsar", 6661, "broker binary protocol port")
	fs.IntVar(&c.PuertoPulsarHTTP, "puerto-pulsar-http", 8061, "broker admin REST port")
	fs.IntVar(&c.PuertoDB, "puerto-db", 3317, "MariaDB port")
	apis := fs.String("puertos-api", "18063,18064", "API ports of the two coordinator replicas")
	fs.IntVar(&c.PuertoMetricas, "puerto-metricas", 18161, "first of six ports for the participants' HTTP (metrics, /efectos)")
	fs.StringVar(&c.Namespace, "namespace", "", "Pulsar namespace (default caos-<unix time>, unique per run)")
	fs.StringVar(&c.PaqueteCoord, "paquete-coordinador", "./coordinador/cmd/coordinador", "package of the coordinator's main")
	fs.BoolVar(&c.ReiniciarCaidos, "reiniciar-caidos", true, "restart a process that exits outside the plan (the exit is still a violation)")
	fs.BoolVar(&c.Cluster, "cluster", false, "run on the multi-broker cluster of scripts/cluster.sh (pulsar://127.0.0.1:6680,127.0.0.1:6681; started if down and then stopped again) instead of an own broker; the plans broker-cluster and unload imply it")
	fs.StringVar(&c.EstadoCluster, "estado-cluster", "", "state dir of scripts/cluster.sh (SAGAS_STATE_DIR; default <repo>/.run, the cluster in <repo>/.run/cluster)")
	fs.IntVar(&c.Particiones, "particiones", 0, "SAGAS_PULSAR_PARTITIONS of the world (default 4 on the cluster, 1 otherwise)")
	fs.IntVar(&c.BrokerVictima, "broker-victima", 1, "the broker (1 or 2) the broker-cluster plan kills; the world's admin URL is the other one")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	if c.Version {
		return c, nil
	}
	if esPlanCluster(c.Plan) {
		c.Cluster = true
	}
	if c.Particiones == 0 {
		c.Particiones = 1
		if c.Cluster {
			c.Particiones = 4
		}
	}
	env := configuracion.Leer(getenv)
	c.Seguridad = bus.LeerSeguridad(env, c.urlPulsar(), c.urlAdmin())
	errs := []error{env.Err()}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	nFijado := false
	fs.Visit(func(f *flag.Flag) { nFijado = nFijado || f.Name == "n" })
	if c.Corto && !nFijado {
		c.N = 200
	}
	if c.Plan == "" {
		c.Plan = "completo"
		if c.Corto {
			c.Plan = "corto"
		}
	}
	if !slices.Contains(planesValidos, c.Plan) {
		errs = append(errs, fmt.Errorf("-plan=%q: allowed values are %s", c.Plan, strings.Join(planesValidos, ", ")))
	}
	if c.N < 1 || c.N > 1_000_000 {
		errs = append(errs, fmt.Errorf("-n=%d: must be between 1 and 1000000", c.N))
	}
	if c.Tasa < 0 || c.Lanzamientos < 0 || c.Lanzamientos > 1 {
		errs = append(errs, errors.New("-tasa must be >= 0 and -lanzamientos in [0,1]"))
	}
	if c.Cota <= 0 || c.PlazoPost <= 0 {
		errs = append(errs, errors.New("-cota and -plazo-post must be positive"))
	}
	if c.Particiones < 1 || c.Particiones > 1024 {
		errs = append(errs, fmt.Errorf("-particiones=%d: must be between 1 and 1024", c.Particiones))
	}
	if c.BrokerVictima != 1 && c.BrokerVictima != 2 {
		errs = append(errs, fmt.Errorf("-broker-victima=%d: the cluster has brokers 1 and 2", c.BrokerVictima))
	}
	if c.Cluster && (usaProxies(c.Plan) || c.Plan == "completo" || c.Plan == "corto" || c.Plan == planCrash || c.Plan == planSolape) {
		errs = append(errs, fmt.Errorf("-plan=%s restarts or proxies the world's own broker: it does not run on the cluster", c.Plan))
	}
	partes := strings.Split(*apis, ",")
	if len(partes) != 2 {
		errs = append(errs, fmt.Errorf("-puertos-api=%q: two comma-separated ports", *apis))
	} else {
		for i, p := range partes {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				errs = append(errs, fmt.Errorf("-puertos-api=%q: %v", *apis, err))
			}
			c.PuertosAPI[i] = n
		}
	}
	for _, p := range []int{c.PuertoPulsar, c.PuertoPulsarHTTP, c.PuertoDB, c.PuertosAPI[0], c.PuertosAPI[1], c.PuertoMetricas, c.PuertoMetricas + len(servicios()) - 1} {
		if p < 1024 || p > 65535 {
			errs = append(errs, fmt.Errorf("port %d: must be in 1024..65535", p))
		}
	}
	if c.Namespace == "" {
		c.Namespace = fmt.Sprintf("caos-%d", time.Now().Unix())
	}
	raiz, err := raizRepositorio()
	if err != nil {
		errs = append(errs, err)
	}
	c.Raiz = raiz
	if c.Estado == "" {
		c.Estado = filepath.Join(raiz, ".run", "caos")
	}
	if c.Estado, err = filepath.Abs(c.Estado); err != nil {
		errs = append(errs, fmt.Errorf("-estado: %w", err))
	}
	if c.EstadoCluster == "" {
		c.EstadoCluster = filepath.Join(raiz, ".run")
	}
	if c.EstadoCluster, err = filepath.Abs(c.EstadoCluster); err != nil {
		errs = append(errs, fmt.Errorf("-estado-cluster: %w", err))
	}
	return c, errors.Join(errs...)
}

// raizRepositorio finds the directory holding go.mod, from the working
// directory upwards (go run runs in the caller's directory, go test in caos/).
func raizRepositorio() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "scripts", "pulsar.sh")); err == nil {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no repository root (go.mod and scripts/pulsar.sh) above %s", dir)
		}
	}
}

// run is the whole run: set up, load with faults, check, tear down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := leerConfig(args, getenv, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "caos", version.Cadena())
		return nil
	}
	b := nuevaBitacora(stdout)
	m := nuevoMundo(cfg, b)
	// Whatever happens from here on, everything started is stopped: the
	// deferred call also runs when ctx is cancelled by Ctrl-C.
	defer m.Apagar()

	b.Printf("estado %s, namespace %s, %d sagas, plan %s, semilla %d", cfg.Estado, cfg.Namespace, cfg.N, cfg.Plan, cfg.Semilla)
	if err := m.Preparar(ctx); err != nil {
		return fmt.Errorf("preparar el mundo: %w", err)
	}
	res, err := ejecutar(ctx, cfg, m, b)
	if err != nil {
		return err
	}
	// Stop the world before the summary, so that it is the last thing printed.
	m.Apagar()
	imprimir(stdout, res)
	if n := res.Violaciones(); n > 0 {
		return fmt.Errorf("%w: %d (detalles arriba; logs en %s)", errViolaciones, n, m.dirLogs)
	}
	return nil
}
