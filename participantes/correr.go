package participantes

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/ciclo"
	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/alpespartner/sagas/internal/version"
)

// plazoApagado bounds the graceful shutdown.
const plazoApagado = 15 * time.Second

// plazoComprobacion bounds the first connection check (bus.ComprobarConexion).
const plazoComprobacion = 10 * time.Second

// Main is a participant binary's main: Correr with the command line, the
// environment and standard output until SIGINT or SIGTERM. An error is
// printed on standard error, prefixed with the service's name, and exits 1.
func Main(s Servicio) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Correr(ctx, os.Args, os.Getenv, os.Stdout, s)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Nombre, err)
		os.Exit(1)
	}
}

// Correr is the whole life of a participant process: it reads and
// validates the configuration (with -check-config it stops there), opens
// the store, serves HTTP, connects to the broker and consumes until ctx ends
// (or the HTTP server or the consumer fails), then shuts down in reverse
// order within a deadline: consumer (and its producer), client, HTTP, store.
// Logs (JSON) and the -check-config report go to salida.
func Correr(ctx context.Context, args []string, getenv func(string) string, salida io.Writer, s Servicio) error {
	nombre := s.Nombre
	if len(args) > 0 {
		nombre = args[0]
	}
	flags := flag.NewFlagSet(nombre, flag.ContinueOnError)
	flags.SetOutput(salida)
	flags.Usage = func() {
		fmt.Fprintf(flags.Output(), "Usage: %s [flags]\n\nRuns the saga participant %s, configured by the environment below.\n\nFlags:\n", flags.Name(), s.Nombre)
		flags.PrintDefaults()
		configuracion.Ayuda(flags.Output(), configuracion.Participantes)
	}
	soloConfig := flags.Bool("check-config", false, "validate the configuration from the environment and exit")
	verVersion := flags.Bool("version", false, "print the build's version and exit")
	preparar := flags.Bool("preparar", false, "create or migrate the service's database (as SAGAS_DB_MIGRATION_USER when set) and exit")
	var resto []string
	if len(args) > 1 {
		resto = args[1:]
	}
	if err := flags.Parse(resto); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("argumentos inesperados: %q", flags.Args())
	}
	if *verVersion {
		fmt.Fprintln(salida, s.Nombre, version.Cadena())
		return nil
	}
	if err := s.Validar(); err != nil {
		return fmt.Errorf("declaración del servicio no válida:\n%w", err)
	}
	cfg, err := LeerConfig(s.Nombre, getenv)
	if err != nil {
		return fmt.Errorf("configuración de %s no válida:\n%w", s.Nombre, err)
	}
	if *soloConfig {
		fmt.Fprintf(salida, "configuración válida: servicio=%s pulsar=%s admin=%s namespace=%s almacen=%s http=%s\n",
			cfg.Servicio, cfg.PulsarURL, cfg.PulsarAdminURL, cfg.Topologia.NS(), cfg.Almacen, cfg.DireccionHTTP)
		return nil
	}

	logger := slog.New(slog.NewJSONHandler(salida, &slog.HandlerOptions{Level: cfg.NivelLog})).With("servicio", s.Nombre)
	if *preparar {
		if err := Migrar(ctx, cfg, s); err != nil {
			return fmt.Errorf("preparar almacén de %s: %w", s.Nombre, err)
		}
		logger.Info("almacén preparado", "almacen", cfg.Almacen, "base", cfg.MySQL.BaseDatos)
		return nil
	}
	ciclo.AjustarGC(getenv)
	p, err := Nuevo(ctx, cfg, s, logger)
	if err != nil {
		return err
	}
	var a apagado
	a.despues(func(context.Context) error { return p.Close() })

	ln, err := net.Listen("tcp", cfg.DireccionHTTP)
	if err != nil {
		return errors.Join(fmt.Errorf("SAGAS_METRICS_ADDR=%q: %w", cfg.DireccionHTTP, err), a.apagar(ctx))
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errHTTP := make(chan error, 1)
	go func() { errHTTP <- srv.Serve(ln) }()
	a.despues(srv.Shutdown)
	logger.Info("http escuchando", "direccion", ln.Addr().String(),
		"rutas", []string{"/metrics", "/healthz", "/readyz", "/efectos/{saga_id}"}, "con_token", cfg.TokenHTTP != "")
	if l := cfg.ListenerHTTP(); l.Abierto() {
		logger.Warn(configuracion.AvisoAbierto(l))
	}
	if l, ok := cfg.ListenerPprof(); ok {
		lp, err := net.Listen("tcp", cfg.DireccionPprof)
		if err != nil {
			return errors.Join(fmt.Errorf("SAGAS_PPROF_ADDR=%q: %w", cfg.DireccionPprof, err), a.apagar(ctx))
		}
		perfil := &http.Server{Handler: ciclo.Perfilador(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = perfil.Serve(lp) }() // ErrServerClosed at shutdown; pprof never stops the participant
		a.despues(perfil.Shutdown)
		logger.Info("pprof escuchando", "direccion", lp.Addr().String())
		if l.Abierto() {
			logger.Warn(configuracion.AvisoAbierto(l))
		}
	}

	// Refused credentials or an untrusted certificate end the start-up with
	// their cause; an unreachable broker is retried by the steps below.
	if err := bus.ComprobarConexion(ctx, cfg.PulsarURL, cfg.Seguridad, plazoComprobacion); errors.Is(err, bus.ErrTLS) || errors.Is(err, bus.ErrAutenticacion) {
		return errors.Join(err, a.apagar(ctx))
	} else if err != nil {
		logger.Warn("comprobar conexión con pulsar; se reintentará", "err", err)
	}
	cliente, err := bus.Conectar(cfg.PulsarURL, logger, bus.ConMetricas(p.Registro()), bus.ConSeguridad(cfg.Seguridad))
	if err != nil {
		return errors.Join(err, a.apagar(ctx))
	}
	a.despues(func(actx context.Context) error { return bus.Cerrar(actx, cliente) })
	consumidor, err := p.Consumidor(cliente)
	if err != nil {
		return errors.Join(bus.ConRol(err, cfg.Seguridad), a.apagar(ctx))
	}
	cctx, detener := context.WithCancel(ctx)
	defer detener()
	var errConsumidor error
	consumido := make(chan struct{})
	go func() {
		errConsumidor = consumidor.Correr(cctx)
		close(consumido)
	}()
	a.despues(func(actx context.Context) error {
		detener()
		select {
		case <-consumido:
			return errConsumidor
		case <-actx.Done():
			return fmt.Errorf("detener consumidor de %s: %w", s.Nombre, actx.Err())
		}
	})

	if cfg.Retencion > 0 {
		pctx, pdetener := context.WithCancel(ctx)
		purgado := make(chan struct{})
		go func() {
			p.purgador().Correr(pctx)
			close(purgado)
		}()
		a.despues(func(context.Context) error { pdetener(); <-purgado; return nil })
	}

	var causa error
	select {
	case <-ctx.Done():
		logger.Info("apagando", "causa", context.Cause(ctx))
	case err := <-errHTTP:
		causa = fmt.Errorf("servidor http: %w", err)
		logger.Error("servidor http terminó; apagando", "err", err)
	case <-consumido:
		// Its error is returned by its shutdown step.
		logger.Error("consumidor terminó; apagando", "err", errConsumidor)
	}
	inicio := time.Now()
	err = a.apagar(ctx)
	logger.Info("apagado", "duracion_ms", time.Since(inicio).Milliseconds(), "err", err)
	return errors.Join(causa, err)
}

// apagado holds the shutdown steps of what was started, to run in reverse
// order.
type apagado struct{ pasos []func(context.Context) error }

// despues adds the step that undoes what was just started.
func (a *apagado) despues(paso func(context.Context) error) { a.pasos = append(a.pasos, paso) }

// apagar runs the steps, newest first, all within plazoApagado even after
// ctx ended.
func (a *apagado) apagar(ctx context.Context) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), plazoApagado)
	defer cancel()
	var errs []error
	for i := len(a.pasos) - 1; i >= 0; i-- {
		errs = append(errs, a.pasos[i](actx))
	}
	return errors.Join(errs...)
}
