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
	"time"

	"github.com/alpespartner/sagas/internal/bus"
)

// plazoApagado bounds the graceful shutdown.
const plazoApagado = 15 * time.Second

// Ejecutar is the whole life of a participant process: it reads and
// validates the configuration (with -check-config it stops there), opens
// the store, serves HTTP, connects to the broker and consumes until ctx ends,
// then shuts down in reverse order: consumer, producer, HTTP, store, client.
// Logs (JSON) and the -check-config report go to salida.
func Ejecutar(ctx context.Context, args []string, getenv func(string) string, salida io.Writer, s Servicio) error {
	nombre := s.Nombre
	if len(args) > 0 {
		nombre = args[0]
	}
	flags := flag.NewFlagSet(nombre, flag.ContinueOnError)
	flags.SetOutput(salida)
	soloConfig := flags.Bool("check-config", false, "validate the configuration from the environment and exit")
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
	if err := s.validar(); err != nil {
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
	p, err := Nuevo(ctx, cfg, s, logger)
	if err != nil {
		return err
	}
	apagar := func(pasos ...func(context.Context) error) error {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), plazoApagado)
		defer cancel()
		var errs []error
		for _, paso := range pasos {
			errs = append(errs, paso(actx))
		}
		return errors.Join(errs...)
	}

	ln, err := net.Listen("tcp", cfg.DireccionHTTP)
	if err != nil {
		return errors.Join(fmt.Errorf("SAGAS_METRICS_ADDR=%q: %w", cfg.DireccionHTTP, err), apagar(p.Cerrar))
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errHTTP := make(chan error, 1)
	go func() { errHTTP <- srv.Serve(ln) }()
	logger.Info("http escuchando", "direccion", ln.Addr().String(),
		"rutas", []string{"/metrics", "/healthz", "/efectos/{saga_id}"})

	cliente, err := bus.Conectar(cfg.PulsarURL, logger)
	if err != nil {
		return errors.Join(err, apagar(srv.Shutdown, p.Cerrar))
	}
	defer cliente.Close()
	if err := p.Iniciar(ctx, cliente); err != nil {
		return errors.Join(err, apagar(srv.Shutdown, p.Cerrar))
	}

	var causa error
	select {
	case <-ctx.Done():
		logger.Info("apagando", "causa", context.Cause(ctx))
	case err := <-errHTTP:
		causa = fmt.Errorf("servidor http: %w", err)
		logger.Error("servidor http terminó; apagando", "err", err)
	}
	inicio := time.Now()
	err = apagar(p.Detener, srv.Shutdown, p.Cerrar)
	logger.Info("apagado", "duracion_ms", time.Since(inicio).Milliseconds(), "err", err)
	return errors.Join(causa, err)
}
