// Command carga is the load tool: it starts N sagas of one flow through the
// HTTP API at a target rate or a fixed concurrency, waits until all are
// terminal (it reads the outcomes from eventos-saga), and prints and writes as
// JSON: sagas/s, end-to-end latency p50/p95/p99/max, share compensated and
// errors.
//
// In the same run it measures the two physical bounds of this machine with the
// same settings: broker round trips (keyed produce → Key_Shared consume,
// messages/s) and database commits/s on the same store, through the store's
// own code path. It prints saga throughput as a ratio of each bound:
// sagas/s × messages per saga ÷ broker messages/s, and sagas/s × commits per
// saga ÷ commits/s.
//
// While it waits it prints a progress line to stderr every second (sent,
// finished, in flight, rate); the topics the bounds create are deleted at the
// end. -h lists the flags and the environment it reads; -version the build.
//
// It talks to the broker as every binary does: SAGAS_PULSAR_URL,
// SAGAS_PULSAR_ADMIN_URL and the SAGAS_PULSAR_AUTH family (token, OAuth2,
// mTLS, trust store) from the environment, checked before the load starts.
//
// On Linux it also accounts where the machine's CPU went during the load
// (busy share of the cores; CPU ms and context switches per saga of the
// coordinator, the participants, the broker, the database and itself), so a
// latency figure says whether the machine was saturated when it was taken.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/version"
	"github.com/apache/pulsar-client-go/pulsar"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "carga:", err)
		os.Exit(1)
	}
}

type opciones struct {
	api          string
	flujo        string
	n            int
	tasa         float64
	concurrencia int
	fallos       float64
	influencers  int
	pulsar       string
	admin        string
	tenant, ns   string
	almacen      string
	dsn          string
	sqlite       string
	cotas        bool
	suelo        bool
	cpu          bool
	cpuSolo      string
	marcaCPU     string
	linea        bool
	salida       string
	espera       time.Duration
	token        string
	progreso     time.Duration
}

// Resultado is what one run prints and writes as JSON.
type Resultado struct {
	Flujo          string      `json:"flujo"`
	Sagas          int         `json:"sagas"`
	Modo           string      `json:"modo"`
	TasaObjetivo   float64     `json:"tasa_objetivo,omitempty"`
	Concurrencia   int         `json:"concurrencia"`
	DuracionS      float64     `json:"duracion_s"`
	SagasPorS      float64     `json:"sagas_por_s"`
	LatenciaMs     Percentiles `json:"latencia_ms"`
	Completadas    int         `json:"completadas"`
	Compensadas    int         `json:"compensadas"`
	CompensadasPct float64     `json:"compensadas_pct"`
	Errores        int         `json:"errores"`
	SinTerminar    int         `json:"sin_terminar"`
	PrimerError    string      `json:"primer_error,omitempty"`
	Cotas          *Cotas      `json:"cotas,omitempty"`
	Suelo          *Suelo      `json:"suelo,omitempty"`
	CPU            *CPU        `json:"cpu,omitempty"`
	Linea          []Tramo     `json:"linea,omitempty"`
	Maquina        string      `json:"maquina"`
	Inicio         time.Time   `json:"inicio"`
	// commits is the MySQL server's Com_commit delta over the load phase.
	commits int64
}

// Percentiles of end-to-end latency (POST sent → outcome event received).
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Cotas are the physical bounds measured in the same run, and the ratios.
type Cotas struct {
	// BrokerMsgsPorS is round trips at the load's concurrency (the bound
	// used for the ratio); BrokerPipelineMsgsPorS the pipelined throughput
	// of one producer sending as fast as it can (large batches).
	BrokerMsgsPorS         float64 `json:"broker_msgs_por_s"`
	BrokerPipelineMsgsPorS float64 `json:"broker_pipeline_msgs_por_s"`
	DBCommitsPorS          float64 `json:"db_commits_por_s"`
	MensajesPorSaga        float64 `json:"mensajes_por_saga"`
	CommitsPorSaga         float64 `json:"commits_por_saga"`
	CommitsMedidos         bool    `json:"commits_medidos"`
	RatioBroker            float64 `json:"ratio_broker"`
	RatioDB                float64 `json:"ratio_db"`
	RatioCotaInferior      float64 `json:"ratio_cota_inferior"`
}

// run is the whole run. The result goes to stdout; progress and warnings to
// stderr; -h and -version print to stdout and return nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o opciones
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\nStarts sagas through the coordinator's API, waits for their outcomes and prints throughput, latency and the machine's bounds.\n\nFlags:\n", args[0])
		fs.PrintDefaults()
		configuracion.Ayuda(fs.Output(), configuracion.Carga)
	}
	env := configuracion.Leer(getenv)
	fs.StringVar(&o.api, "api", "http://127.0.0.1:8003", "coordinator API base URL; several replicas' URLs comma-separated get the POSTs in turn")
	fs.StringVar(&o.flujo, "flujo", "campana", "campana or lanzar-campania-completa")
	fs.IntVar(&o.n, "n", 500, "number of sagas")
	fs.Float64Var(&o.tasa, "tasa", 0, "target start rate in sagas/s (0: fixed concurrency, closed loop)")
	fs.IntVar(&o.concurrencia, "concurrencia", 32, "sagas in flight at most")
	fs.Float64Var(&o.fallos, "fallos", 0, "share of sagas (0..1) that carry simular_fallo on their last step")
	fs.IntVar(&o.influencers, "influencers", 1, "influencers in each campana saga's input (1..1000, the API's limit): a larger input (about 60 bytes each) weighs on every hop")
	fs.StringVar(&o.pulsar, "pulsar", env.Texto("SAGAS_PULSAR_URL"), "broker URL (outcomes and the broker bound; default $SAGAS_PULSAR_URL)")
	fs.StringVar(&o.admin, "admin", env.Texto("SAGAS_PULSAR_ADMIN_URL"), "broker admin URL (default $SAGAS_PULSAR_ADMIN_URL)")
	fs.StringVar(&o.tenant, "tenant", env.Texto("SAGAS_PULSAR_TENANT"), "tenant of the coordinator's topics (default $SAGAS_PULSAR_TENANT)")
	fs.StringVar(&o.ns, "namespace", env.Texto("SAGAS_PULSAR_NAMESPACE"), "namespace of the coordinator's topics (default $SAGAS_PULSAR_NAMESPACE)")
	fs.StringVar(&o.almacen, "almacen", "", "store of the DB bound: mysql or sqlite (empty: skip the DB bound)")
	fs.StringVar(&o.dsn, "dsn", "sagas:sagas123@tcp(127.0.0.1:3306)/sagas", "MySQL DSN (DB bound, Com_commit per saga)")
	fs.StringVar(&o.sqlite, "sqlite", "", "SQLite file for the DB bound (a scratch file next to the store's)")
	fs.BoolVar(&o.cotas, "cotas", true, "measure the broker and DB bounds in the same run")
	fs.BoolVar(&o.suelo, "suelo", false, "after the load, measure the latency floor of a saga on this machine: its path's hops, each a durable commit in a scratch store (-almacen) and a broker delivery, back to back in one process at the run's pacing (up to 100 chains)")
	fs.StringVar(&o.marcaCPU, "cpu-marca", "", "NAME=VALUE: account only the processes whose environment holds it (another copy of the system on this machine is left out)")
	fs.BoolVar(&o.linea, "linea", false, "also read the command and reply topics and print the timeline of a saga's hops: median, p99 and the slowest 1 %'s median per hop (at one in flight: where the time goes; at a rate: where the tail goes)")
	fs.BoolVar(&o.cpu, "cpu", true, "account the machine's CPU during the load, per group of the system's processes (Linux /proc)")
	fs.StringVar(&o.cpuSolo, "cpu-solo", "", "count only the processes whose command line contains this text (e.g. your run's state dir), leaving out others' on a shared machine")
	fs.StringVar(&o.salida, "json", "", "write the result as JSON to this file")
	fs.DurationVar(&o.espera, "espera", 5*time.Minute, "give up waiting for outcomes after this")
	fs.StringVar(&o.token, "token", env.Secreto("SAGAS_API_TOKEN"), "API bearer token (default $SAGAS_API_TOKEN, or the content of $SAGAS_API_TOKEN_FILE)")
	fs.DurationVar(&o.progreso, "progreso", time.Second, "print a progress line to stderr this often (0: never)")
	verVersion := fs.Bool("version", false, "print the version and exit")
	if configuracion.PideAyuda(args[1:]) {
		fs.SetOutput(stdout)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *verVersion {
		fmt.Fprintln(stdout, "carga", version.Cadena())
		return nil
	}
	// The broker's credentials and trust store, as every binary reads them,
	// checked against the URLs the flags settled on.
	seg := bus.LeerSeguridad(env, o.pulsar, o.admin)
	errs := []error{env.Err()}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.flujo != "campana" && o.flujo != "lanzar-campania-completa" {
		errs = append(errs, fmt.Errorf("-flujo=%q: allowed values are campana, lanzar-campania-completa", o.flujo))
	}
	if o.influencers < 1 || o.influencers > 1000 {
		errs = append(errs, fmt.Errorf("-influencers=%d: allowed values are 1 to 1000", o.influencers))
	} else if o.influencers > 1 && o.flujo != "campana" {
		errs = append(errs, fmt.Errorf("-influencers=%d: only the campana flow takes influencers", o.influencers))
	}
	if o.n < 1 || o.concurrencia < 1 || o.tasa < 0 || o.fallos < 0 || o.fallos > 1 {
		errs = append(errs, errors.New("-n and -concurrencia must be >= 1, -tasa >= 0, -fallos in [0,1]"))
	}
	if o.almacen != "" && o.almacen != "mysql" && o.almacen != "sqlite" {
		errs = append(errs, fmt.Errorf("-almacen=%q: allowed values are mysql, sqlite or empty", o.almacen))
	}
	if o.progreso < 0 {
		errs = append(errs, fmt.Errorf("-progreso=%v: must be >= 0", o.progreso))
	}
	if o.almacen == "sqlite" && o.sqlite == "" {
		errs = append(errs, errors.New("-almacen=sqlite needs -sqlite <scratch file>"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, admin, err := conectarBroker(ctx, o, seg, logger)
	if err != nil {
		return err
	}
	defer client.Close()

	topo := eventos.Topologia{Tenant: o.tenant, Namespace: o.ns}
	var antes int64
	if o.almacen == "mysql" {
		if antes, err = comCommit(ctx, o.dsn); err != nil {
			return fmt.Errorf("leer Com_commit: %w", err)
		}
	}
	var cpu *medidorCPU
	if o.cpu {
		cpu = iniciarCPU(os.DirFS("/proc"), o.cpuSolo, o.marcaCPU)
	}
	res, err := cargar(ctx, o, client, topo, stderr)
	if err != nil {
		return bus.ConRol(err, seg)
	}
	if cpu != nil {
		if res.CPU, err = cpu.fin(res.Completadas + res.Compensadas); err != nil {
			fmt.Fprintf(stdout, "  (no CPU accounting: %v)\n", err)
		}
	}
	if o.almacen == "mysql" {
		despues, err := comCommit(ctx, o.dsn)
		if err != nil {
			return fmt.Errorf("leer Com_commit: %w", err)
		}
		res.commits = despues - antes
	}
	if o.suelo {
		fmt.Fprintln(stderr, "carga: measuring the latency floor (-suelo)")
		if res.Suelo, err = medirSuelo(ctx, o, client, admin, topo, res); err != nil {
			return fmt.Errorf("medir suelo: %w", bus.ConRol(err, seg))
		}
	}
	if o.cotas {
		fmt.Fprintln(stderr, "carga: measuring the broker and database bounds (10-20 s; -cotas=false skips them)")
		c, err := medirCotas(ctx, o, client, admin, topo, res)
		if err != nil {
			return fmt.Errorf("medir cotas: %w", bus.ConRol(err, seg))
		}
		res.Cotas = c
	}
	imprimir(stdout, res)
	if o.salida != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.salida, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if res.Errores > 0 || res.SinTerminar > 0 {
		return fmt.Errorf("%d errors, %d sagas not terminal", res.Errores, res.SinTerminar)
	}
	return nil
}

// plazoConexion bounds the first check of the broker's credentials.
const plazoConexion = 10 * time.Second

// conectarBroker checks that the broker accepts seg's credentials (failing
// with the cause: TLS, authentication, network) and opens the client and
// the admin client carga uses, both with seg's credentials and trust store.
func conectarBroker(ctx context.Context, o opciones, seg bus.Seguridad, logger *slog.Logger) (pulsar.Client, *bus.Admin, error) {
	if err := bus.ComprobarConexion(ctx, o.pulsar, seg, plazoConexion); err != nil {
		return nil, nil, err
	}
	admin, err := bus.NuevoAdminSeguro(o.admin, seg)
	if err != nil {
		return nil, nil, err
	}
	client, err := bus.Conectar(o.pulsar, logger, bus.ConSeguridad(seg))
	if err != nil {
		return nil, nil, err
	}
	return client, admin, nil
}

// seguimiento records, per saga, when its POST was sent and its outcome seen.
type seguimiento struct {
	mu        sync.Mutex
	enviado   map[string]time.Time
	terminado map[string]time.Time
	estado    map[string]string
	avisos    map[string]chan struct{}
	fin       chan struct{}
	esperados int
}

func (s *seguimiento) resultado(id, estado string, en time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.terminado[id]; ok {
		return
	}
	s.terminado[id], s.estado[id] = en, estado
	if c, ok := s.avisos[id]; ok {
		close(c)
		delete(s.avisos, id)
	}
}

func (s *seguimiento) aviso(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := make(chan struct{})
	if _, ok := s.terminado[id]; ok {
		close(c)
		return c
	}
	s.avisos[id] = c
	return c
}

// progreso are the counts of a progress line.
type progreso struct {
	enviadas, terminadas, errores int
}

// contar is the progress so far: POSTs accepted, outcomes seen of them, and
// POSTs that failed.
func (s *seguimiento) contar() progreso {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := progreso{enviadas: len(s.enviado)}
	for id := range s.enviado {
		if _, ok := s.terminado[id]; ok {
			p.terminadas++
		}
	}
	return p
}

// informarProgreso writes a progress line every cada until ctx ends: sagas
// sent, finished, in flight, and the finishing rate over the last interval.
func informarProgreso(ctx context.Context, w io.Writer, cada time.Duration, total int, contar func() progreso) {
	if cada <= 0 {
		return
	}
	inicio := time.Now()
	t := time.NewTicker(cada)
	defer t.Stop()
	var antes progreso
	prev := inicio
	for {
		select {
		case <-ctx.Done():
			return
		case ahora := <-t.C:
			p := contar()
			tasa := float64(p.terminadas-antes.terminadas) / ahora.Sub(prev).Seconds()
			fmt.Fprintln(w, lineaProgreso(ahora.Sub(inicio), total, p, tasa))
			antes, prev = p, ahora
		}
	}
}

func lineaProgreso(transcurrido time.Duration, total int, p progreso, tasa float64) string {
	return fmt.Sprintf("carga %5.0fs  sent %d/%d  finished %d  in flight %d  errors %d  %.1f sagas/s",
		transcurrido.Seconds(), p.enviadas, total, p.terminadas, p.enviadas-p.terminadas, p.errores, tasa)
}

func cargar(ctx context.Context, o opciones, client pulsar.Client, topo eventos.Topologia, progresoW io.Writer) (*Resultado, error) {
	codec, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		return nil, err
	}
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: topo.Eventos(), StartMessageID: pulsar.LatestMessageID(), ReceiverQueueSize: 2000})
	if err != nil {
		if err = bus.Causa(client, "leer", topo.Eventos(), err); errors.Is(err, bus.ErrAutorizacion) {
			return nil, err // it names the role, the operation and the topic
		}
		return nil, fmt.Errorf("leer %s: %w", topo.Eventos(), err)
	}
	defer reader.Close()
	var lin *linea
	if o.linea {
		servicios := []string{"influencer", "marca", "tracking"}
		if o.flujo == "lanzar-campania-completa" {
			servicios = []string{"afiliados", "comisiones", "tracking", "notificaciones"}
		}
		topicos := []string{topo.Respuestas(), topo.Eventos()}
		for _, s := range servicios {
			topicos = append(topicos, topo.Comandos(s))
		}
		var cerrar func()
		if lin, cerrar, err = seguirLinea(ctx, client, topicos); err != nil {
			return nil, err
		}
		defer cerrar()
	}
	seg := &seguimiento{enviado: map[string]time.Time{}, terminado: map[string]time.Time{}, estado: map[string]string{}, avisos: map[string]chan struct{}{}}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			msg, err := reader.Next(rctx)
			if err != nil {
				return
			}
			if ev, err := codec.Decodificar(msg.Payload()); err == nil {
				seg.resultado(ev.SagaID, ev.Estado, time.Now())
			}
		}
	}()

	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrencia * 2}}
	var errores atomic.Int64
	var primerError atomic.Value
	fallar := func(err error) {
		errores.Add(1)
		primerError.CompareAndSwap(nil, err.Error())
	}
	ruta, pasoFinal := "/campana-saga", "tracking"
	if o.flujo == "lanzar-campania-completa" {
		ruta, pasoFinal = "/api/v1/comandos/lanzar-campania-completa", "preparar_notificaciones_campania"
	}
	cada := 0
	if o.fallos > 0 {
		cada = int(math.Round(1 / o.fallos))
	}
	apis := strings.Split(o.api, ",")
	iniciar := func(i int) (string, error) {
		cuerpo := cuerpoDe(o.flujo, i, cada > 0 && i%cada == 0, pasoFinal, o.influencers)
		api := strings.TrimSpace(apis[i%len(apis)])
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+ruta, bytes.NewReader(cuerpo))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		if o.token != "" {
			req.Header.Set("Authorization", "Bearer "+o.token)
		}
		t := time.Now()
		resp, err := httpc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var r struct {
			ID string `json:"id_saga"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || r.ID == "" {
			return "", fmt.Errorf("POST %s: %s: %s", ruta, resp.Status, strings.TrimSpace(string(b)))
		}
		seg.mu.Lock()
		seg.enviado[r.ID] = t
		seg.mu.Unlock()
		return r.ID, nil
	}

	inicio := time.Now()
	pctx, pararProgreso := context.WithCancel(ctx)
	progresoHecho := make(chan struct{})
	go func() {
		defer close(progresoHecho)
		informarProgreso(pctx, progresoW, o.progreso, o.n, func() progreso {
			p := seg.contar()
			p.errores = int(errores.Load())
			return p
		})
	}()
	defer func() { pararProgreso(); <-progresoHecho }()
	sem := make(chan struct{}, o.concurrencia)
	var wg sync.WaitGroup
	modo := "concurrencia"
	if o.tasa > 0 {
		modo = "tasa"
		intervalo := time.Duration(float64(time.Second) / o.tasa)
		prox := time.Now()
		for i := range o.n {
			if d := time.Until(prox); d > 0 {
				time.Sleep(d)
			}
			prox = prox.Add(intervalo)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := iniciar(i); err != nil {
					fallar(err)
				}
			}()
		}
	} else {
		// Closed loop: each worker starts a saga and waits for its outcome.
		var siguiente atomic.Int64
		for range o.concurrencia {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(siguiente.Add(1)) - 1
					if i >= o.n || ctx.Err() != nil {
						return
					}
					id, err := iniciar(i)
					if err != nil {
						fallar(err)
						continue
					}
					select {
					case <-seg.aviso(id):
					case <-time.After(o.espera):
						return
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	// Wait for the outstanding outcomes.
	limite := time.Now().Add(o.espera)
	for {
		seg.mu.Lock()
		pendientes := 0
		for id := range seg.enviado {
			if _, ok := seg.terminado[id]; !ok {
				pendientes++
			}
		}
		seg.mu.Unlock()
		if pendientes == 0 || time.Now().After(limite) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	seg.mu.Lock()
	defer seg.mu.Unlock()
	var ultimo time.Time
	var lat []float64
	res := &Resultado{Flujo: o.flujo, Sagas: o.n, Modo: modo, TasaObjetivo: o.tasa, Concurrencia: o.concurrencia,
		Errores: int(errores.Load()), Inicio: inicio, Maquina: fmt.Sprintf("%d CPU, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())}
	if v := primerError.Load(); v != nil {
		res.PrimerError = v.(string)
	}
	for id, t := range seg.enviado {
		fin, ok := seg.terminado[id]
		if !ok {
			res.SinTerminar++
			continue
		}
		lat = append(lat, float64(fin.Sub(t).Microseconds())/1000)
		if fin.After(ultimo) {
			ultimo = fin
		}
		switch seg.estado[id] {
		case "COMPLETADA":
			res.Completadas++
		default:
			res.Compensadas++
		}
	}
	terminadas := res.Completadas + res.Compensadas
	if terminadas > 0 {
		res.DuracionS = ultimo.Sub(inicio).Seconds()
		res.SagasPorS = float64(terminadas) / res.DuracionS
		res.CompensadasPct = 100 * float64(res.Compensadas) / float64(terminadas)
		slices.Sort(lat)
		res.LatenciaMs = Percentiles{P50: percentil(lat, 0.50), P95: percentil(lat, 0.95), P99: percentil(lat, 0.99), Max: lat[len(lat)-1]}
	}
	if lin != nil {
		res.Linea = lin.tramos(seg.enviado, seg.terminado)
	}
	return res, nil
}

func percentil(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func cuerpoDe(flujo string, i int, fallar bool, paso string, influencers int) []byte {
	var v map[string]any
	if flujo == "campana" {
		inf := []any{map[string]any{"nombre": "Tech", "plataforma": "Instagram"}}
		for k := 1; k < influencers; k++ {
			inf = append(inf, map[string]any{"nombre": fmt.Sprintf("Influencer %04d", k), "plataforma": "Instagram"})
		}
		v = map[string]any{
			"nombre": fmt.Sprintf("Carga %d", i), "tipo": "influencer_marketing", "presupuesto": 1000 + i,
			"marca":       map[string]any{"id_marca": "6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60", "nombre_marca": "Alpes"},
			"influencers": inf,
		}
	} else {
		ini := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
		v = map[string]any{
			"campania_id": fmt.Sprintf("carga-%d-%d", time.Now().UnixNano(), i), "nombre": fmt.Sprintf("Carga %d", i),
			"fecha_inicio": ini.Format(time.RFC3339), "fecha_fin": ini.Add(30 * 24 * time.Hour).Format(time.RFC3339),
			"presupuesto": 5000, "moneda": "COP", "comision": map[string]any{"tipo": "porcentaje", "valor": 10},
			"criterios_afiliados":  map[string]any{"segmento_audiencia": "jovenes", "maximo": 5},
			"canales_notificacion": []string{"email"},
		}
	}
	if fallar {
		v["simular_fallo"] = paso
	}
	b, _ := json.Marshal(v)
	return b
}

func imprimir(w io.Writer, r *Resultado) {
	fmt.Fprintf(w, "flujo %s, %d sagas (%s, concurrencia %d", r.Flujo, r.Sagas, r.Modo, r.Concurrencia)
	if r.TasaObjetivo > 0 {
		fmt.Fprintf(w, ", tasa objetivo %.1f/s", r.TasaObjetivo)
	}
	fmt.Fprintf(w, ")\n")
	fmt.Fprintf(w, "  throughput      %8.1f sagas/s over %.2fs\n", r.SagasPorS, r.DuracionS)
	fmt.Fprintf(w, "  latency ms      p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", r.LatenciaMs.P50, r.LatenciaMs.P95, r.LatenciaMs.P99, r.LatenciaMs.Max)
	fmt.Fprintf(w, "  outcome         %d completadas, %d compensadas (%.1f%%), %d errores, %d sin terminar\n", r.Completadas, r.Compensadas, r.CompensadasPct, r.Errores, r.SinTerminar)
	if r.PrimerError != "" {
		fmt.Fprintf(w, "  first error     %s\n", r.PrimerError)
	}
	if r.CPU != nil {
		imprimirCPU(w, r.CPU)
	}
	if len(r.Linea) > 0 {
		imprimirLinea(w, r.Linea)
	}
	if r.Suelo != nil {
		imprimirSuelo(w, r.Suelo)
	}
	if c := r.Cotas; c != nil {
		medido := "estimated from the design"
		if c.CommitsMedidos {
			medido = "measured (Com_commit)"
		}
		fmt.Fprintf(w, "  broker bound    %8.0f msgs/s in round trips at concurrency %d; %.1f msgs/saga → ratio %.2f\n", c.BrokerMsgsPorS, r.Concurrencia, c.MensajesPorSaga, c.RatioBroker)
		fmt.Fprintf(w, "  broker pipeline %8.0f msgs/s (one producer, async, large batches; not used for the ratio)\n", c.BrokerPipelineMsgsPorS)
		if c.DBCommitsPorS > 0 {
			fmt.Fprintf(w, "  db bound        %8.0f commits/s; %.1f commits/saga (%s) → ratio %.2f\n", c.DBCommitsPorS, c.CommitsPorSaga, medido, c.RatioDB)
		}
		fmt.Fprintf(w, "  vs lower bound  %.2f\n", c.RatioCotaInferior)
	}
}
