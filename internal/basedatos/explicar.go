package basedatos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Causes of a refused connection; Explicar wraps them. None heals by
// waiting, so callers that retry a connection should stop on them
// (Definitivo).
var (
	// ErrCertificado: the server's certificate is not trusted (unknown CA,
	// another host name, expired).
	ErrCertificado = errors.New("certificado del servidor no aceptado")
	// ErrAcceso: the server refused the user (wrong user or password, a host
	// the user may not come from, or TLS the user requires).
	ErrAcceso = errors.New("acceso denegado")
	// ErrExigeTLS: the server accepts only TLS connections.
	ErrExigeTLS = errors.New("el servidor exige TLS")
	// ErrSinTLS: TLS was asked for and the server does not offer it.
	ErrSinTLS = errors.New("el servidor no ofrece TLS")
)

// Definitivo reports whether err is one of the causes above, or a schema
// at another version (ErrEsquema).
func Definitivo(err error) bool {
	return errors.Is(err, ErrEsquema) || errors.Is(err, ErrCertificado) || errors.Is(err, ErrAcceso) || errors.Is(err, ErrExigeTLS) || errors.Is(err, ErrSinTLS)
}

// Explicar turns err, from connecting to the server with cfg, into an
// error that names its cause and the setting to change, wrapping one of the
// sentinels above and err itself. Other errors come back as they are.
func Explicar(ctx context.Context, err error, cfg *mysql.Config) error {
	if err == nil {
		return nil
	}
	donde := fmt.Sprintf("mysql %s como %s", cfg.Addr, cfg.User)
	tlsModo := modoTLS(cfg.TLSConfig)
	var (
		desconocida x509.UnknownAuthorityError
		host        x509.HostnameError
		invalido    x509.CertificateInvalidError
		verif       *tls.CertificateVerificationError
		myErr       *mysql.MySQLError
	)
	switch {
	case errors.As(err, &host):
		return fmt.Errorf("%s: %w: no vale para el host %q (%v); SAGAS_DB_HOST debe ser un nombre o IP que figure en el certificado: %w",
			donde, ErrCertificado, host.Host, host, err)
	case errors.As(err, &desconocida):
		return fmt.Errorf("%s: %w: no lo firma una CA de confianza (%s); SAGAS_DB_TLS_CA_FILE debe nombrar la CA que lo firmó: %w",
			donde, ErrCertificado, origenCA(cfg), err)
	case errors.As(err, &invalido), errors.As(err, &verif):
		return fmt.Errorf("%s: %w: %w", donde, ErrCertificado, err)
	case errors.Is(err, mysql.ErrNoTLS):
		return fmt.Errorf("%s: %w, y SAGAS_DB_TLS=%s lo pide: active TLS en el servidor o use SAGAS_DB_TLS=off: %w", donde, ErrSinTLS, tlsModo, err)
	case errors.As(err, &myErr) && myErr.Number == 3159: // MySQL: require_secure_transport
		return fmt.Errorf("%s: %w (require_secure_transport) y SAGAS_DB_TLS=off: use SAGAS_DB_TLS=on: %w", donde, ErrExigeTLS, err)
	case errors.As(err, &myErr) && (myErr.Number == 1045 || myErr.Number == 1044 || myErr.Number == 1698):
		msg := fmt.Sprintf("el servidor rechazó al usuario %s (usuario o clave incorrectos, o no puede entrar desde este host)", cfg.User)
		if tlsModo == TLSNo && cfg.Net == "tcp" {
			if ofrece, perr := OfreceTLS(ctx, cfg.Addr); perr == nil && ofrece {
				// MariaDB answers a plaintext login of a user that needs TLS
				// (REQUIRE SSL, require_secure_transport) with this same
				// error, without naming TLS.
				msg += "; la conexión va sin TLS (SAGAS_DB_TLS=off) y el servidor ofrece TLS: si lo exige, MariaDB lo rechaza con este mismo error, use SAGAS_DB_TLS=on"
			}
		}
		return fmt.Errorf("%s: %w: %s: %w", donde, ErrAcceso, msg, err)
	}
	return err
}

// modoTLS is the SAGAS_DB_TLS value that gives the driver's tls parameter.
func modoTLS(parametro string) string {
	switch {
	case parametro == "" || parametro == "false":
		return TLSNo
	case parametro == "true" || strings.HasPrefix(parametro, "sagas-ca-"):
		return TLSSi
	}
	return parametro
}

func origenCA(cfg *mysql.Config) string {
	if strings.HasPrefix(cfg.TLSConfig, "sagas-ca-") {
		return "la CA de SAGAS_DB_TLS_CA_FILE"
	}
	return "las del sistema"
}

// OfreceTLS reads the server's greeting at addr, without logging in, and
// reports whether it offers TLS (the CLIENT_SSL capability).
func OfreceTLS(ctx context.Context, addr string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if t, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(t)
	}
	var cabecera [4]byte
	if _, err := io.ReadFull(c, cabecera[:]); err != nil {
		return false, fmt.Errorf("leer el saludo del servidor: %w", err)
	}
	n := int(cabecera[0]) | int(cabecera[1])<<8 | int(cabecera[2])<<16
	if n > 1<<16 {
		return false, fmt.Errorf("saludo del servidor de %d bytes: no es MySQL", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c, p); err != nil {
		return false, fmt.Errorf("leer el saludo del servidor: %w", err)
	}
	return capacidadTLS(p)
}

// capacidadTLS parses a protocol-10 greeting: version byte, server version
// (NUL-terminated), thread id (4), auth data (8), filler (1), then the low
// capability flags (2), where CLIENT_SSL is 0x0800.
func capacidadTLS(p []byte) (bool, error) {
	if len(p) == 0 || p[0] != 10 {
		return false, errors.New("el servidor no saluda con el protocolo 10 de MySQL")
	}
	fin := 1
	for fin < len(p) && p[fin] != 0 {
		fin++
	}
	i := fin + 1 + 4 + 8 + 1
	if i+2 > len(p) {
		return false, errors.New("saludo del servidor demasiado corto")
	}
	capacidades := uint16(p[i]) | uint16(p[i+1])<<8
	return capacidades&0x0800 != 0, nil
}
