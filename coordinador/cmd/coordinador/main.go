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
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
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
	check := fs.Bool("check-config", false, "validate the configuration from the environment and exit")
	if err := fs.Parse(args[1:]); err != nil {
		return err
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
	if *check {
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	}

	// Start-up order: database, broker topology, producers/consumers, HTTP.
	// Shut-down runs the deferred calls in reverse.
	store, err := abrirAlmacen(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	topologia := eventos.Topologia{Tenant: cfg.Tenant, Namespace: cfg.Namespace}
	admin := bus.NuevoAdmin(cfg.PulsarAdminURL)
	if err := esperarBroker(ctx, admin, logger); err != nil {
		return err
	}
	if err := prepararTopologia(ctx, admin, topologia, mensajeria.Servicios(catalogo), logger); err != nil {
		return err
	}
	client, err := bus.Conectar(cfg.PulsarURL, logger)
	if err != nil {
		return err
	}
	defer client.Close()

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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metricasBus := bus.NuevasMetricas(reg)

	relay := mensajeria.NuevoRelay(mensajeria.OpcionesRelay{
		Store: store, Client: client, Replica: cfg.Replica, Esquema: mensajeria.NuevosEsquemas(topologia).De,
		Logger: logger, Registro: reg,
	})
	defer relay.Cerrar()
	bit, err := bitacora.Abrir(bitacora.Opciones{Dir: cfg.LogDir, Desactivada: cfg.LogDir == "", Registro: reg, Logger: logger})
	if err != nil {
		return err
	}
	defer bit.Close()
	avisos := motor.NuevosAvisos()
	observadores := motor.Observadores{motor.NuevasMetricas(reg, store), motor.Despertador(relay.Avisar), avisos, bit}
	engine := motor.Nuevo(motor.Opciones{
		Store: store, Catalogo: catalogo, Topologia: topologia, Comandos: codecComando, Eventos: codecEvento,
		Logger: logger, Observador: observadores,
	})

	// Background loops share one context, cancelled first on shutdown.
	bg, cancelBg := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBg()
	var bucles sync.WaitGroup
	bucles.Go(func() { relay.Correr(bg) })
	bucles.Go(func() { mensajeria.Temporizador(bg, engine, cfg.Temporizador, logger) })

	respuestas, err := bus.ConsumirLotes(bg, client, bus.OpcionesConsumidor{
		Topico: topologia.Respuestas(), Suscripcion: "coordinador", Tipo: pulsar.KeyShared,
		Trabajadores: cfg.Trabajadores, Logger: logger, Metricas: metricasBus,
	}, mensajeria.ManejadorRespuestas(codecRespuesta, engine))
	if err != nil {
		return err
	}

	oyente, err := mensajeria.Escuchar(bg, client, topologia.Eventos(), codecEvento, avisos.Avisar, logger)
	if err != nil {
		return err
	}
	if cfg.Puente {
		bridge, err := puente.Nuevo(puente.Opciones{
			Iniciador: engine, Cliente: client, Esquemas: admin, Logger: logger, Metricas: metricasBus, Registro: reg,
			TopicoCampania: cfg.LegadoCampania, TopicoLanzar: cfg.LegadoLanzar,
		})
		if err != nil {
			return err
		}
		if err := bridge.Iniciar(bg); err != nil {
			return err
		}
		defer bridge.Cerrar()
	}

	e, err := api.Nuevo(api.Opciones{
		Iniciador: engine, Consultas: store, Esperas: avisos, Catalogo: catalogo,
		BaseDatos: store.Ping, Broker: admin.Vivo, Registro: reg, Token: cfg.APIToken, Logger: logger,
	})
	if err != nil {
		return err
	}
	srv := api.ServidorHTTP(cfg.APIAddr, e)
	if cfg.PprofAddr != "" {
		// Profiling on its own listener, never on the API's.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		perfil := &http.Server{Addr: cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := perfil.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("pprof", "err", err)
			}
		}()
		defer perfil.Close()
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("escuchar en %s: %w", cfg.APIAddr, err)
	}
	errHTTP := make(chan error, 1)
	go func() { errHTTP <- srv.Serve(ln) }()
	logger.Info("coordinador listo", "api", "http://"+ln.Addr().String(), "almacen", cfg.Almacen, "pulsar", cfg.PulsarURL)
	if listo != nil {
		listo <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err = <-errHTTP:
	}
	logger.Info("apagando")
	// Stop intake first (HTTP, consumers), then drain, then close producers and DB.
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		logger.Warn("apagar HTTP", "err", serr)
	}
	cancelBg()
	respuestas.Cerrar()
	oyente.Cerrar()
	bucles.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func abrirAlmacen(ctx context.Context, cfg config) (*almacen.DB, error) {
	ac := almacen.Config{Tipo: cfg.Almacen, Ruta: cfg.SQLitePath, DSN: cfg.dsn(), MaxConexiones: cfg.DBMaxConns}
	var err error
	for intento := 1; ; intento++ {
		var db *almacen.DB
		db, err = almacen.Abrir(ctx, ac)
		if err == nil {
			return db, nil
		}
		if intento == 30 || ctx.Err() != nil {
			return nil, fmt.Errorf("abrir almacén %s: %w", cfg.Almacen, err)
		}
		time.Sleep(time.Second)
	}
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
		if time.Now().After(limite) || ctx.Err() != nil {
			return fmt.Errorf("broker no disponible: %w", err)
		}
		logger.Info("esperando al broker", "err", err)
		time.Sleep(2 * time.Second)
	}
}

// prepararTopologia retries the idempotent set-up for a while: a broker that
// just started, or replicas starting together, can answer it with errors.
func prepararTopologia(ctx context.Context, a *bus.Admin, t eventos.Topologia, servicios []string, logger *slog.Logger) error {
	limite := time.Now().Add(time.Minute)
	for {
		err := mensajeria.Preparar(ctx, a, t, servicios)
		if err == nil || errors.Is(err, bus.ErrRechazado) || time.Now().After(limite) || ctx.Err() != nil {
			return err
		}
		logger.Warn("preparar topología; reintento", "err", err)
		time.Sleep(time.Second)
	}
}
