package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
)

// Causes of a refused connection or operation, for errors.Is.
var (
	// ErrAutenticacion: the broker refused the credentials (missing, wrong,
	// expired token; unknown certificate).
	ErrAutenticacion = errors.New("autenticación rechazada por el broker")
	// ErrAutorizacion: the credentials are valid but the role may not do
	// this on this topic or namespace.
	ErrAutorizacion = errors.New("autorización denegada por el broker")
	// ErrTLS: the broker's certificate did not verify against the trust
	// store, or the handshake failed.
	ErrTLS = errors.New("verificación TLS fallida")
)

// ErrTopicoInexistente is returned when the broker has no such topic and
// does not create topics on use (production brokers provisioned by operators).
var ErrTopicoInexistente = errors.New("el tópico no existe")

// conCausa marks err with ErrAutorizacion, ErrAutenticacion or
// ErrTopicoInexistente when the broker's answer says so (the Go client gives
// it as text only).
func conCausa(err error) error {
	if err == nil || errors.Is(err, ErrAutorizacion) || errors.Is(err, ErrAutenticacion) {
		return err
	}
	switch {
	case esDenegacion(err):
		return fmt.Errorf("%w: %w", ErrAutorizacion, err)
	case strings.Contains(err.Error(), "AuthenticationError"):
		return fmt.Errorf("%w: %w", ErrAutenticacion, err)
	case strings.Contains(err.Error(), "TopicNotFound"):
		return fmt.Errorf("%w: %w", ErrTopicoInexistente, err)
	}
	return err
}

// esDenegacion reports whether err is the broker's authorization refusal.
func esDenegacion(err error) bool {
	if errors.Is(err, ErrAutorizacion) {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "AuthorizationError") || strings.Contains(m, "not authorized")
}

// causaTLS wraps err with ErrTLS, naming the trust store, when err is a
// certificate verification failure.
func causaTLS(err error, s Seguridad) error {
	var (
		desconocida x509.UnknownAuthorityError
		nombre      x509.HostnameError
		invalida    x509.CertificateInvalidError
		verif       *tls.CertificateVerificationError
	)
	if !errors.As(err, &desconocida) && !errors.As(err, &nombre) && !errors.As(err, &invalida) && !errors.As(err, &verif) {
		return err
	}
	almacen := "the system's CAs (SAGAS_PULSAR_TLS_TRUST_CERTS_FILE is unset)"
	if s.TrustCertsFile != "" {
		almacen = "SAGAS_PULSAR_TLS_TRUST_CERTS_FILE=" + s.TrustCertsFile
	}
	return fmt.Errorf("%w: the broker's certificate does not verify against %s: %w", ErrTLS, almacen, err)
}

// ComprobarConexion connects to the broker at url as s says, within
// timeout, and returns nil once the broker has accepted the credentials, or
// an error naming the cause: ErrTLS (naming the trust store),
// ErrAutenticacion (with the broker's reason), or the network error. The Go
// client only says "connection error" or "context deadline exceeded" from
// CreateProducer or Subscribe for all of them; processes call this first.
func ComprobarConexion(ctx context.Context, urlBroker string, s Seguridad, timeout time.Duration) error {
	u, err := url.Parse(urlBroker)
	if err != nil {
		return fmt.Errorf("SAGAS_PULSAR_URL=%q: %w", urlBroker, err)
	}
	host := strings.Split(u.Host, ",")[0] // a multi-host URL: its first broker
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if u.Scheme == "pulsar+ssl" {
		if err := sondearTLS(ctx, host, s); err != nil {
			return fmt.Errorf("pulsar %s: %w", urlBroker, err)
		}
	}
	// The binary protocol's CONNECT carries the credentials: a lookup needs
	// it. An authorization error on the made-up topic, or its absence (a
	// broker that creates no topic on use), means the broker authenticated us.
	rec := &registro{rechazo: make(chan struct{})}
	o := ajustesConexion{ClientOptions: pulsar.ClientOptions{
		URL:               urlBroker,
		ConnectionTimeout: timeout,
		OperationTimeout:  timeout,
		Logger:            pulsarlog.NewLoggerWithSlog(slog.New(rec)),
		MetricsRegisterer: prometheus.NewRegistry(),
	}}
	if err := ConSeguridad(s)(&o); err != nil {
		return fmt.Errorf("pulsar %s: %w", urlBroker, err)
	}
	c, err := pulsar.NewClient(o.ClientOptions)
	if err != nil {
		return fmt.Errorf("pulsar %s: %w", urlBroker, err)
	}
	defer c.Close()
	hecho := make(chan error, 1)
	go func() {
		_, err := c.TopicPartitions("persistent://public/default/sagas-comprobar-conexion")
		hecho <- err
	}()
	select {
	case err = <-hecho:
	case <-rec.rechazo: // the client would retry until the timeout
		err = errors.New("rechazado")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return nil
	}
	if c := conCausa(err); errors.Is(c, ErrAutorizacion) || errors.Is(c, ErrTopicoInexistente) {
		return nil
	}
	if motivo := rec.motivo(); motivo != "" {
		return fmt.Errorf("pulsar %s: %w (SAGAS_PULSAR_AUTH=%s%s): %s", urlBroker, ErrAutenticacion, s.metodo(), s.pista(time.Now()), motivo)
	}
	return fmt.Errorf("pulsar %s: %w", urlBroker, conCausa(err))
}

// sondearTLS completes a TLS handshake with host as the client will.
func sondearTLS(ctx context.Context, host string, s Seguridad) error {
	conf, err := s.configTLS()
	if err != nil {
		return err
	}
	d := tls.Dialer{Config: conf}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		if e := causaTLS(err, s); e != err {
			return e
		}
		var netErr net.Error
		if errors.As(err, &netErr) {
			return err
		}
		return fmt.Errorf("%w: handshake with %s: %w", ErrTLS, host, err)
	}
	return conn.Close()
}

// registro is a slog handler that keeps what the client logged about a
// refused connection.
type registro struct {
	rechazo chan struct{} // closed at the first refusal logged; set before use
	avisar  sync.Once
	mu      sync.Mutex
	lineas  []string
	attrs   []slog.Attr
	grupo   string
	derivar *registro
}

func (r *registro) raiz() *registro {
	if r.derivar != nil {
		return r.derivar
	}
	return r
}

func (r *registro) Enabled(context.Context, slog.Level) bool { return true }

func (r *registro) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	add := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
	for _, a := range r.attrs {
		add(a)
	}
	rec.Attrs(add)
	raiz := r.raiz()
	raiz.mu.Lock()
	defer raiz.mu.Unlock()
	raiz.lineas = append(raiz.lineas, b.String())
	if esRechazo(b.String()) && raiz.rechazo != nil {
		raiz.avisar.Do(func() { close(raiz.rechazo) })
	}
	return nil
}

func (r *registro) WithAttrs(as []slog.Attr) slog.Handler {
	return &registro{attrs: append(append([]slog.Attr{}, r.attrs...), as...), derivar: r.raiz()}
}

func (r *registro) WithGroup(g string) slog.Handler {
	return &registro{attrs: r.attrs, grupo: g, derivar: r.raiz()}
}

// motivo is the broker's reason for refusing the credentials, if the
// client logged one.
func (r *registro) motivo() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.lineas) - 1; i >= 0; i-- {
		if l := r.lineas[i]; esRechazo(l) {
			return l
		}
	}
	return ""
}

// esRechazo reports whether a client log line says the broker refused the
// credentials or the client could not load them.
func esRechazo(l string) bool {
	return strings.Contains(l, "Failed to authenticate") || strings.Contains(l, "AuthenticationError") ||
		strings.Contains(l, "auth credentials") || strings.Contains(l, "empty token")
}

// pista adds what the client can tell about its own credentials (the
// broker does not say why it refused): the token's subject and expiry.
func (s Seguridad) pista(ahora time.Time) string {
	rol, exp := s.reclamos()
	var p string
	if rol != "" {
		p += ", role " + rol
	}
	if !exp.IsZero() && exp.Before(ahora) {
		p += ", the token expired at " + exp.UTC().Format(time.RFC3339)
	}
	if s.TokenFile != "" {
		p += ", token from " + s.TokenFile
	}
	if s.metodo() == AuthOAuth2 {
		p += s.pistaOAuth2()
	}
	return p
}

// Rol is the role s authenticates as, when the client can tell: a token's
// subject or a client certificate's common name; "" otherwise.
func (s Seguridad) Rol() string {
	rol, _ := s.reclamos()
	return rol
}

// reclamos reads, without verifying, the subject and expiry of s's token
// or the common name of its client certificate.
func (s Seguridad) reclamos() (rol string, exp time.Time) {
	switch s.metodo() {
	case AuthToken:
		tok := s.Token
		if s.TokenFile != "" {
			b, err := os.ReadFile(s.TokenFile)
			if err != nil {
				return "", time.Time{}
			}
			tok = strings.TrimSpace(string(b))
		}
		partes := strings.Split(tok, ".")
		if len(partes) != 3 {
			return "", time.Time{}
		}
		cuerpo, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(partes[1], "="))
		if err != nil {
			return "", time.Time{}
		}
		var r struct {
			Sub string `json:"sub"`
			Exp int64  `json:"exp"`
		}
		if json.Unmarshal(cuerpo, &r) != nil {
			return "", time.Time{}
		}
		if r.Exp != 0 {
			exp = time.Unix(r.Exp, 0)
		}
		return r.Sub, exp
	case AuthTLS:
		par, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil || len(par.Certificate) == 0 {
			return "", time.Time{}
		}
		c, err := x509.ParseCertificate(par.Certificate[0])
		if err != nil {
			return "", time.Time{}
		}
		return c.Subject.CommonName, time.Time{}
	}
	return "", time.Time{}
}
