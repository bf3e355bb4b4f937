package bus

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/apache/pulsar-client-go/oauth2"
	"github.com/apache/pulsar-client-go/pulsar"
)

// Denegado is the broker's refusal of an operation to a role: its message
// names the role, the operation and the topic (or namespace, tenant), e.g.
// «el rol «marca» no tiene permiso para consumir persistent://…». It is
// ErrAutorizacion for errors.Is.
type Denegado struct {
	// Quien is the credential's role as Seguridad.Quien says it; empty when
	// the code that saw the refusal did not know the credentials.
	Quien string
	// Operacion is what was refused: producir, consumir, leer, consultar
	// (an admin GET) or administrar (any other admin call).
	Operacion string
	// Recurso is the topic (persistent://tenant/ns/name), namespace or
	// tenant the operation was on.
	Recurso string
	// Causa is the broker's answer.
	Causa error
}

func (d *Denegado) Error() string {
	quien := d.Quien
	if quien == "" {
		quien = "el rol de estas credenciales"
	}
	return fmt.Sprintf("%s no tiene permiso para %s %s (%v: %v)", quien, d.Operacion, d.Recurso, ErrAutorizacion, d.Causa)
}

// Unwrap makes a Denegado ErrAutorizacion and its cause.
func (d *Denegado) Unwrap() []error { return []error{ErrAutorizacion, d.Causa} }

// Quien is the role s authenticates as, for messages: the token's subject
// (read without verifying it), the client certificate's common name, or the
// OAuth2 client id (the broker's role is a claim of the issuer's token,
// which the client cannot know beforehand).
func (s Seguridad) Quien() string {
	switch s.metodo() {
	case AuthToken, AuthTLS:
		if rol := s.Rol(); rol != "" {
			return "el rol «" + rol + "»"
		}
		if s.metodo() == AuthTLS {
			return "el rol del certificado " + s.CertFile
		}
		if s.TokenFile != "" {
			return "el rol del token de " + s.TokenFile
		}
		return "el rol del token SAGAS_PULSAR_TOKEN"
	case AuthOAuth2:
		if kf, err := credencialesOAuth2(s.OAuth2.PrivateKey); err == nil && kf.ClientID != "" {
			return "el rol del cliente OAuth2 «" + kf.ClientID + "»"
		}
		return "el rol del cliente OAuth2 de " + ocultar("SAGAS_PULSAR_OAUTH2_PRIVATE_KEY", s.OAuth2.PrivateKey)
	}
	return "el rol anónimo (SAGAS_PULSAR_AUTH=" + s.metodo() + ")"
}

// credencialesOAuth2 reads the OAuth2 private key (a file path, file://,
// data:// or a data: URL) the way the Go client does.
func credencialesOAuth2(clave string) (*oauth2.KeyFile, error) {
	return oauth2.NewClientCredentialsProviderFromKeyFile(clave).GetClientCredentials()
}

// ConRol names s's role in an authorization error (see Denegado) that does
// not name one yet; other errors pass as they are.
func ConRol(err error, s Seguridad) error {
	var d *Denegado
	if errors.As(err, &d) {
		if d.Quien == "" {
			d.Quien = s.Quien()
		}
		return err
	}
	if !errors.Is(err, ErrAutorizacion) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, s.Quien())
}

// Causa is the error of client operation operacion (producir, consumir,
// leer) on topic recurso that failed with err: a *Denegado naming the role
// of c's credentials when the broker refused it, err marked with
// ErrAutenticacion when the broker refused the credentials, err otherwise.
// c is a client of Conectar; with any other client the role is left to
// ConRol.
func Causa(c pulsar.Client, operacion, recurso string, err error) error {
	var d *Denegado
	if err == nil || errors.As(err, &d) || !esDenegacion(err) {
		return conCausa(err)
	}
	var quien string
	if k, ok := c.(cliente); ok {
		quien = k.quien
	}
	return &Denegado{Quien: quien, Operacion: operacion, Recurso: recurso, Causa: err}
}

// cliente is the client Conectar returns: it knows whose credentials it
// uses, for Causa.
type cliente struct {
	pulsar.Client
	quien string
}

// denegado is the admin API's 403 for metodo ruta as a Denegado.
func (a *Admin) denegado(metodo, ruta string, causa error) error {
	op := "administrar"
	if metodo == http.MethodGet {
		op = "consultar"
	}
	return &Denegado{Quien: a.seguridad.Quien(), Operacion: op, Recurso: recursoAdmin(ruta), Causa: causa}
}

// recursoAdmin is the topic, namespace or tenant an admin API path is about.
func recursoAdmin(ruta string) string {
	ruta, _, _ = strings.Cut(ruta, "?")
	p := strings.Split(strings.TrimPrefix(ruta, "/admin/v2/"), "/")
	switch {
	case len(p) >= 4 && (p[0] == "persistent" || p[0] == "schemas"):
		return "persistent://" + p[1] + "/" + p[2] + "/" + p[3]
	case len(p) >= 3 && p[0] == "namespaces":
		return "el namespace " + p[1] + "/" + p[2]
	case len(p) >= 2 && p[0] == "tenants":
		return "el tenant " + p[1]
	case len(p) == 3 && p[0] == "persistent":
		return "el namespace " + p[1] + "/" + p[2]
	}
	return ruta
}
