package ciclo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// PlazoHTTPPorDefecto bounds the graceful shutdown of a ServidorHTTP whose
// plazo is zero.
const PlazoHTTPPorDefecto = 15 * time.Second

// ServidorHTTP runs an http.Server as a Preparado: ready once it listens;
// stopped with a graceful Shutdown bounded by its plazo.
type ServidorHTTP struct {
	srv    *http.Server
	plazo  time.Duration
	logger *slog.Logger
	listo  chan struct{}
	dir    string // set before listo is closed
}

// NuevoServidorHTTP serves srv on srv.Addr when run. plazo bounds the wait
// for requests in flight at shutdown (default PlazoHTTPPorDefecto); past it
// the remaining connections are closed and logger (default slog.Default())
// gets a warning.
func NuevoServidorHTTP(srv *http.Server, plazo time.Duration, logger *slog.Logger) *ServidorHTTP {
	if plazo <= 0 {
		plazo = PlazoHTTPPorDefecto
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &ServidorHTTP{srv: srv, plazo: plazo, logger: logger, listo: make(chan struct{})}
}

// Listo is closed once the server listens.
func (s *ServidorHTTP) Listo() <-chan struct{} { return s.listo }

// Direccion is the address the server listens on (with the port the system
// chose for ":0"); "" before Listo.
func (s *ServidorHTTP) Direccion() string {
	select {
	case <-s.listo:
		return s.dir
	default:
		return ""
	}
}

// Correr listens and serves until ctx ends, then shuts the server down,
// letting requests in flight finish within the plazo. It returns an error
// only when the server cannot listen or stops serving by itself.
func (s *ServidorHTTP) Correr(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("escuchar en %s: %w", s.srv.Addr, err)
	}
	s.dir = ln.Addr().String()
	close(s.listo)
	servido := make(chan error, 1)
	go func() { servido <- s.srv.Serve(ln) }()
	select {
	case err := <-servido:
		return err // Serve always returns a non-nil error
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.plazo)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.logger.Warn("apagar HTTP", "direccion", s.dir, "err", err)
		s.srv.Close()
	}
	if err := <-servido; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Perfilador is net/http/pprof's handlers on a mux of their own, for a
// listener of their own (SAGAS_PPROF_ADDR): pprof has no authentication, so
// it is never served on the API's or the metrics' listener.
func Perfilador() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
