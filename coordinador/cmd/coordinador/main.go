// Command coordinador runs the saga coordinator: HTTP API, reply consumer,
// outbox relay, deadline sweeper, outcome listener and the legacy bridge.
// Several replicas may run against one MySQL database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alpespartner/sagas/coordinador"
	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/api"
	"github.com/alpespartner/sagas/coordinador/bitacora"
	"github.com/alpespartner/sagas/coordinador/mensajeria"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/puente"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/ciclo"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/topologia"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/alpespartner/sagas/internal/version"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "coordinador:", err)
		os.Exit(1)
	}
}

// run starts the coordinator and blocks until ctx ends. listo, when not nil,
// receives the HTTP address once everything is up (tests use it).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, listo chan<- string) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nRuns the saga coordinator, configured by the environment below.\n\nFlags:\n", fs.Name())
		fs.PrintDefaults()
		configuracion.Ayuda(fs.Output(), configuracion.Coordinador)
	}
	check := fs.Bool("check-config", false, "validate the configuration from the environment and exit")
	verVersion := fs.Bool("version", false, "print the build's version and exit")
	preparar := fs.Bool("preparar", false, "provision as an operator, then exit: the database schema, and on the broker the tenant, namespace, policies, topics, schemas and each role's permissions (idempotent; run it with an admin role before the first start and after each upgrade)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *verVersion {
		fmt.Fprintln(stdout, "coordinador", version.Cadena())
		return nil
	}
	cfg, err := leerConfig(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel})).With("servicio", coordinador.Servicio, "replica", cfg.Replica)

	catalogo := saga.CatalogoPorDefecto()
	if cfg.Definiciones != "" {
		if err := catalogo.CargarDirectorio(os.DirFS(cfg.Definiciones)); err != nil {
			return fmt.Errorf("SAGAS_DEFINICIONES: %w", err)
		}
	}
	if _, err := api.CompilarEsquemas(catalogo); err != nil {
		return fmt.Errorf("SAGAS_DEFINICIONES: %w", err)
	}
	if *check {
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	}
	plan := topologia.Nuevo(opcionesTopologia(cfg, catalogo))
	if *preparar {
		return prepararTodo(ctx, cfg, plan, stdout, logger)
	}

	ciclo.AjustarGC(getenv)
	// Resources are opened here and released by the deferred calls after
	// every component has stopped: the database last.
	store, err := abrirAlmacen(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := comprobarDefiniciones(ctx, store, catalogo, logger); err != nil {
		return err
	}
	// Deadlines are set and compared on the database's clock, whatever this
	// host's clock says.
	reloj, err := store.NuevoReloj(ctx, relojLocal, logger)
	if err != nil {
		return err
	}

	// Spans still queued are flushed after every component stopped.
	trazador, err := traza.Nuevo(cfg.Traza, coordinador.Servicio)
	if err != nil {
		return err
	}
	defer func() {
		if err := trazador.Cerrar(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("cerrar exportador de trazas", "err", err)
		}
	}()
	if trazador.Activo() {
		logger.Info("trazas exportadas por OTLP", "endpoint", cfg.Traza.Endpoint)
	}

	topo := eventos.Topologia{Tenant: cfg.Tenant, Namespace: cfg.Namespace}
	admin, err := bus.NuevoAdminSeguro(cfg.PulsarAdminURL, cfg.Seguridad)
	if err != nil {
		return err
	}
	if err := esperarBroker(ctx, admin, logger); err != nil {
		return err
	}
	// The Go client reports refused credentials and untrusted certificates
	// only as timeouts: check first, to name the cause.
	if err := bus.ComprobarConexion(ctx, cfg.PulsarURL, cfg.Seguridad, 10*time.Second); err != nil {
		return err
	}
	// One registry for the process, the Pulsar client's metrics included,
	// served on /metrics (which listener: exposicion.go).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), version.Metrica(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sagas_reloj_desfase_seconds",
			Help: "The database server's clock minus this replica's, as last measured; deadlines use the server's.",
		}, func() float64 { return reloj.Desfase().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sagas_transiciones_en_cache_total",
			Help: "Transitions committed from the state this replica remembered of the saga, without reading it (MySQL).",
		}, func() float64 { a, _ := store.Cache(); return float64(a) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sagas_transiciones_cache_obsoleta_total",
			Help: "Transitions whose remembered state another writer had changed: rolled back and run again on the saga read FOR UPDATE.",
		}, func() float64 { _, o := store.Cache(); return float64(o) }))
	client, err := bus.Conectar(cfg.PulsarURL, logger, bus.ConMetricas(reg), bus.ConSeguridad(cfg.Seguridad))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := bus.Cerrar(cctx, client); err != nil {
			logger.Warn("cerrar el cliente de pulsar", "err", err)
		}
	}()
	// Provisioning is the operator's step (-preparar): check, create nothing.
	if err := topologia.Comprobar(ctx, admin, client, plan, topologia.Coordinador, cfg.Seguridad); err != nil {
		return err
	}

	codecComando, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		return err
	}
	codecRespuesta, err := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
	if err != nil {
		return err
	}
	codecEvento, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		return err
	}

	metricasBus := bus.NuevasMetricas(reg)
	bit, err := bitacora.Abrir(bitacora.Opciones{Dir: cfg.LogDir, Desactivada: cfg.LogDir == "", Registro: reg, Logger: logger,
		MaxGeneral: int64(cfg.MaxLogGeneralMB) << 20})
	if err != nil {
		return err
	}
	defer bit.Close()

	// Components: built here, started by the group below.
	relay := mensajeria.NuevoRelay(mensajeria.OpcionesRelay{
		Store: store, Client: client, Replica: cfg.Replica, Esquema: mensajeria.NuevosEsquemas(topo).De,
		Logger: logger, Registro: reg, MaxIntentos: cfg.MaxIntentosOutbox, Reintentos: cfg.Reintentos,
		Topicos: topicosDelRelay(plan, topo), Trazador: trazador, Ahora: reloj.Ahora,
	})
	// Every committed transaction hands its outbox rows to the relay, which
	// publishes them from memory (see mensajeria.Relay).
	store.AlConfirmar(relay.Confirmados)
	avisos := motor.NuevosAvisos()
	observadores := motor.Observadores{motor.NuevasMetricas(reg, store), avisos, bit}
	sagas := motor.Nuevo(motor.Opciones{
		Store: store, Catalogo: catalogo, Topologia: topo, Comandos: codecComando, Eventos: codecEvento,
		Logger: logger, Observador: observadores, Reloj: reloj.Ahora,
	})
	respuestas := mensajeria.NuevasRespuestas(client, bus.OpcionesConsumidor{
		Topico: topo.Respuestas(), Suscripcion: topologia.SuscripcionCoordinador, Tipo: pulsar.Failover,
		Trabajadores: cfg.Trabajadores, Reintentos: cfg.Reintentos, Logger: logger, Metricas: metricasBus,
	}, codecRespuesta, sagas, trazador)
	e, err := api.Nuevo(api.Opciones{
		Iniciador: sagas, Consultas: store, Esperas: avisos, Outbox: store, Catalogo: catalogo,
		BaseDatos: store.Ping, Broker: admin.Vivo, Registro: reg, Token: cfg.APIToken, TokenLectura: cfg.TokenLectura, Logger: logger,
		Trazador: trazador,
	})
	if err != nil {
		return err
	}
	apiHandler, partesMetricas := exponer(cfg, e, reg, logger)
	web := ciclo.NuevoServidorHTTP(api.ServidorHTTP(cfg.APIAddr, apiHandler), 15*time.Second, logger)

	// Start-up runs down this list, each component ready before the next
	// starts; shut-down runs up it: intake first (HTTP, consumers), then the
	// sweeper, then the relay drains and flushes its producers. The client,
	// the log files and the database close after the group returns.
	partes := []ciclo.Parte{
		{Nombre: "reloj", Componente: reloj},
		{Nombre: "relay", Componente: relay},
		{Nombre: "temporizador", Componente: motor.NuevoTemporizador(sagas, cfg.Temporizador, logger)},
		{Nombre: "respuestas", Componente: respuestas},
		{Nombre: "oyente", Componente: mensajeria.NuevoOyente(client, topo.Eventos(), codecEvento, avisos.Avisar, logger)},
	}
	if cfg.Puente {
		p, err := puente.Nuevo(puente.Opciones{
			Iniciador: sagas, Cliente: client, Esquemas: admin, Logger: logger, Metricas: metricasBus, Registro: reg,
			Reintentos: cfg.Reintentos, Trazador: trazador,
			TopicoCampania: cfg.LegadoCampania, TopicoLanzar: cfg.LegadoLanzar,
		})
		if err != nil {
			return err
		}
		partes = append(partes, ciclo.Parte{Nombre: "puente", Componente: p})
	}
	if cfg.Retencion > 0 {
		partes = append(partes, ciclo.Parte{Nombre: "purga", Componente: purgador(cfg, store, reloj, bit, reg, logger)})
	}
	if cfg.PprofAddr != "" {
		partes = append(partes, ciclo.Parte{Nombre: "pprof", Componente: perfilador(cfg.PprofAddr, logger)})
	}
	partes = append(partes, partesMetricas...)
	partes = append(partes, ciclo.Parte{Nombre: "http", Componente: web})

	grupo := ciclo.Grupo{
		Partes: partes,
		Plazo:  30 * time.Second,
		Listo: func() {
			logger.Info("coordinador listo", "api", "http://"+web.Direccion(), "almacen", cfg.Almacen, "pulsar", cfg.PulsarURL)
			if listo != nil {
				listo <- web.Direccion()
			}
		},
		Apagando: func(motivo error) { logger.Info("apagando", "motivo", motivo) },
	}
	return grupo.Correr(ctx)
}

// comprobarDefiniciones refuses to start when a saga in flight needs a
// definition version the catalogue no longer holds (a saga runs to its end
// on the version it started with), naming how many sagas need which version.
func comprobarDefiniciones(ctx context.Context, store *almacen.DB, catalogo saga.Catalogo, logger *slog.Logger) error {
	enCurso, err := store.EnCursoPorVersion(ctx)
	if err != nil {
		return err
	}
	if err := catalogo.ComprobarEnCurso(enCurso); err != nil {
		return fmt.Errorf("SAGAS_DEFINICIONES: %w", err)
	}
	tipos := make([]string, 0, len(catalogo))
	for tipo := range catalogo {
		tipos = append(tipos, tipo)
	}
	slices.Sort(tipos)
	versiones := make([]any, 0, 2*len(tipos))
	for _, tipo := range tipos {
		versiones = append(versiones, tipo, catalogo.Versiones(tipo))
	}
	logger.Info("definiciones cargadas (versión actual primero)", versiones...)
	return nil
}

// relojLocal is this process's clock (nil: time.Now); tests skew it.
var relojLocal func() time.Time

// perfilador serves net/http/pprof on its own listener, never on the API's.
// Its failures are logged and never stop the coordinator.
func perfilador(direccion string, logger *slog.Logger) ciclo.Componente {
	srv := ciclo.NuevoServidorHTTP(&http.Server{Addr: direccion, Handler: ciclo.Perfilador(), ReadHeaderTimeout: 10 * time.Second}, time.Second, logger)
	return ciclo.Func(func(ctx context.Context) error {
		if err := srv.Correr(ctx); err != nil {
			logger.Warn("pprof", "err", err)
		}
		<-ctx.Done()
		return nil
	})
}

func abrirAlmacen(ctx context.Context, cfg config) (db *almacen.DB, err error) {
	err = conReintentos(ctx, "abrir almacén "+cfg.Almacen, func() (err error) {
		db, err = almacen.Abrir(ctx, cfg.almacenConfig())
		return err
	})
	return db, err
}

// esperarBroker waits (bounded) for the broker's admin API: in compose the
// coordinator may start before Pulsar is ready.
func esperarBroker(ctx context.Context, a *bus.Admin, logger *slog.Logger) error {
	limite := time.Now().Add(2 * time.Minute)
	for {
		err := a.Vivo(ctx)
		if err == nil {
			return nil
		}
		// Refused credentials or an untrusted certificate do not heal by waiting.
		definitivo := errors.Is(err, bus.ErrTLS) || errors.Is(err, bus.ErrRechazado)
		if definitivo || time.Now().After(limite) || ctx.Err() != nil {
			return fmt.Errorf("broker no disponible: %w", err)
		}
		logger.Info("esperando al broker", "err", err)
		time.Sleep(2 * time.Second)
	}
}

// topicosDelRelay are the topics the outbox holds rows for: the command
// topics and the outcome events.
func topicosDelRelay(plan topologia.Plan, topo eventos.Topologia) []string {
	out := []string{topo.Eventos()}
	for _, t := range plan.Topicos {
		if strings.HasPrefix(t.Nombre, topo.Comandos("")) && !strings.HasSuffix(t.Nombre, "-DLQ") {
			out = append(out, t.Nombre)
		}
	}
	return out
}
