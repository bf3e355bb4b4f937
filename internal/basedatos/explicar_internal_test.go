package basedatos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestCapacidadTLSDelSaludo(t *testing.T) {
	saludo := func(capacidades uint16) []byte {
		p := []byte{10}
		p = append(p, "10.11.19-MariaDB"...)
		p = append(p, 0, 1, 0, 0, 0) // NUL, thread id
		p = append(p, make([]byte, 8)...)
		p = append(p, 0, byte(capacidades), byte(capacidades>>8))
		return p
	}
	if ofrece, err := capacidadTLS(saludo(0xfffe)); err != nil || !ofrece {
		t.Errorf("with CLIENT_SSL: %v %v", ofrece, err)
	}
	if ofrece, err := capacidadTLS(saludo(0xfffe &^ 0x0800)); err != nil || ofrece {
		t.Errorf("without CLIENT_SSL: %v %v", ofrece, err)
	}
	if _, err := capacidadTLS([]byte{0xff, 1, 2}); err == nil {
		t.Error("an error packet must not parse as a greeting")
	}
	if _, err := capacidadTLS(saludo(0)[:20]); err == nil {
		t.Error("a short greeting must not parse")
	}
}

func TestExplicarNombraLaCausaYLoQueHayQueCambiar(t *testing.T) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.TLSConfig = "unix", "/no/existe.sock", "sagas_app", "true"
	for _, c := range []struct {
		nombre   string
		err      error
		causa    error
		contiene string
	}{
		{"otro host", &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "db.interna"}}, ErrCertificado, `no vale para el host "db.interna"`},
		{"CA desconocida", fmt.Errorf("envuelto: %w", x509.UnknownAuthorityError{}), ErrCertificado, "las del sistema"},
		{"caducado", x509.CertificateInvalidError{Reason: x509.Expired}, ErrCertificado, "certificado del servidor no aceptado"},
		{"MySQL exige TLS", &mysql.MySQLError{Number: 3159, Message: "Connections using insecure transport are prohibited"}, ErrExigeTLS, "use SAGAS_DB_TLS=on"},
		{"servidor sin TLS", mysql.ErrNoTLS, ErrSinTLS, "SAGAS_DB_TLS=on lo pide"},
		{"acceso denegado con TLS", &mysql.MySQLError{Number: 1045}, ErrAcceso, "rechazó al usuario sagas_app"},
	} {
		err := Explicar(context.Background(), c.err, cfg)
		if !errors.Is(err, c.causa) || !errors.Is(err, c.err) || !Definitivo(err) || !strings.Contains(err.Error(), c.contiene) {
			t.Errorf("%s: %v, want %v mentioning %q", c.nombre, err, c.causa, c.contiene)
		}
	}
	otro := errors.New("connection refused")
	if err := Explicar(context.Background(), otro, cfg); err != otro || Definitivo(err) {
		t.Errorf("an unclassified error must come back as is and be retryable: %v", err)
	}
}
