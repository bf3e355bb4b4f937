package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/alpespartner/sagas/internal/configuracion"
	"github.com/apache/pulsar-client-go/pulsar/auth"
)

// Authentication methods of Seguridad.Auth (SAGAS_PULSAR_AUTH).
const (
	AuthNinguna = "none"
	AuthToken   = "token"
	AuthOAuth2  = "oauth2"
	AuthTLS     = "tls"
)

// Seguridad is how a process authenticates to the broker and which broker
// certificates it trusts, for the binary protocol (Conectar with
// ConSeguridad) and the admin REST API (NuevoAdmin with ConSeguridadAdmin)
// alike. The zero value is no authentication and the system's trust store.
type Seguridad struct {
	// Auth is none (""), token, oauth2 or tls (SAGAS_PULSAR_AUTH).
	Auth string
	// Token is the JWT itself (SAGAS_PULSAR_TOKEN); TokenFile a file holding
	// it (SAGAS_PULSAR_TOKEN_FILE), re-read at every new broker connection,
	// at every broker re-authentication challenge and at every admin request.
	Token, TokenFile string
	OAuth2           OAuth2
	// CertFile and KeyFile are the client certificate presented in the TLS
	// handshake (SAGAS_PULSAR_TLS_CERT_FILE, SAGAS_PULSAR_TLS_KEY_FILE): the
	// credential with Auth tls.
	CertFile, KeyFile string
	// TrustCertsFile holds the CAs that sign the broker's certificate
	// (SAGAS_PULSAR_TLS_TRUST_CERTS_FILE); empty trusts the system's CAs.
	TrustCertsFile string
	// PermitirInseguro accepts any broker certificate, unverified chain and
	// host name included (SAGAS_PULSAR_TLS_ALLOW_INSECURE_CONNECTION).
	PermitirInseguro bool
}

// OAuth2 is the client-credentials flow: the client finds the token
// endpoint at IssuerURL + /.well-known/openid-configuration and posts its
// client_id and client_secret, read from the private key, the JSON
// credentials file Pulsar clients read:
//
//	{"type": "client_credentials", "client_id": "…", "client_secret": "…", "issuer_url": "…"}
//
// (type and issuer_url optional; PrivateKey is a path, file:///path or a
// data: URL). The access token is sent to the broker as a token.
type OAuth2 struct {
	IssuerURL  string // SAGAS_PULSAR_OAUTH2_ISSUER_URL
	Audience   string // SAGAS_PULSAR_OAUTH2_AUDIENCE
	PrivateKey string // SAGAS_PULSAR_OAUTH2_PRIVATE_KEY
	Scope      string // SAGAS_PULSAR_OAUTH2_SCOPE
	// TrustCertsFile holds the CAs that sign the issuer's certificate
	// (SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE); empty trusts the system's CAs.
	// It is not the broker's: an issuer usually has a public certificate.
	TrustCertsFile string
}

// LeerSeguridad reads the SAGAS_PULSAR_AUTH and SAGAS_PULSAR_TLS_* family
// through l and records on l every problem of their combination, given the
// broker and admin URLs they are for (a file that cannot be read, a method
// without its credential, a credential of another method).
func LeerSeguridad(l *configuracion.Lector, urlBroker, urlAdmin string) Seguridad {
	s := Seguridad{
		Auth: l.Texto("SAGAS_PULSAR_AUTH"),
		// A token is a secret: never in a message.
		Token:     l.Texto("SAGAS_PULSAR_TOKEN"),
		TokenFile: l.Texto("SAGAS_PULSAR_TOKEN_FILE"),
		OAuth2: OAuth2{
			IssuerURL:      l.Texto("SAGAS_PULSAR_OAUTH2_ISSUER_URL"),
			Audience:       l.Texto("SAGAS_PULSAR_OAUTH2_AUDIENCE"),
			PrivateKey:     l.Texto("SAGAS_PULSAR_OAUTH2_PRIVATE_KEY"),
			Scope:          l.Texto("SAGAS_PULSAR_OAUTH2_SCOPE"),
			TrustCertsFile: l.Texto("SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE"),
		},
		CertFile:         l.Texto("SAGAS_PULSAR_TLS_CERT_FILE"),
		KeyFile:          l.Texto("SAGAS_PULSAR_TLS_KEY_FILE"),
		TrustCertsFile:   l.Texto("SAGAS_PULSAR_TLS_TRUST_CERTS_FILE"),
		PermitirInseguro: l.Interruptor("SAGAS_PULSAR_TLS_ALLOW_INSECURE_CONNECTION"),
	}
	for _, p := range s.problemas(urlBroker, urlAdmin) {
		l.Problema(p.nombre, p.valor, p.texto)
	}
	return s
}

// Validar reports every problem of s for these URLs at once, each naming
// the variable; for a Seguridad built in code (tests, tools).
func (s Seguridad) Validar(urlBroker, urlAdmin string) error {
	var errs []error
	for _, p := range s.problemas(urlBroker, urlAdmin) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", p.nombre, p.valor, p.texto))
	}
	return errors.Join(errs...)
}

type problema struct{ nombre, valor, texto string }

func (s Seguridad) problemas(urlBroker, urlAdmin string) []problema {
	var ps []problema
	add := func(nombre, valor, formato string, args ...any) {
		ps = append(ps, problema{nombre, valor, fmt.Sprintf(formato, args...)})
	}
	legible := func(nombre, ruta string) bool {
		if ruta == "" {
			return false
		}
		if b, err := os.ReadFile(ruta); err != nil {
			add(nombre, ruta, "cannot be read: %v", errors.Unwrap(err))
			return false
		} else if strings.TrimSpace(string(b)) == "" {
			add(nombre, ruta, "is empty")
			return false
		}
		return true
	}
	metodo := s.metodo()
	ajeno := func(nombre, valor, de string) {
		if valor != "" && metodo != de {
			add(nombre, ocultar(nombre, valor), "is only read with SAGAS_PULSAR_AUTH=%s (it is %s)", de, metodo)
		}
	}
	ajeno("SAGAS_PULSAR_TOKEN", s.Token, AuthToken)
	ajeno("SAGAS_PULSAR_TOKEN_FILE", s.TokenFile, AuthToken)
	ajeno("SAGAS_PULSAR_OAUTH2_ISSUER_URL", s.OAuth2.IssuerURL, AuthOAuth2)
	ajeno("SAGAS_PULSAR_OAUTH2_AUDIENCE", s.OAuth2.Audience, AuthOAuth2)
	ajeno("SAGAS_PULSAR_OAUTH2_PRIVATE_KEY", s.OAuth2.PrivateKey, AuthOAuth2)
	ajeno("SAGAS_PULSAR_OAUTH2_SCOPE", s.OAuth2.Scope, AuthOAuth2)
	ajeno("SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE", s.OAuth2.TrustCertsFile, AuthOAuth2)
	switch metodo {
	case AuthToken:
		switch {
		case s.Token != "" && s.TokenFile != "":
			add("SAGAS_PULSAR_TOKEN_FILE", s.TokenFile, "set only one of SAGAS_PULSAR_TOKEN and SAGAS_PULSAR_TOKEN_FILE")
		case s.Token == "" && s.TokenFile == "":
			add("SAGAS_PULSAR_AUTH", metodo, "needs SAGAS_PULSAR_TOKEN or SAGAS_PULSAR_TOKEN_FILE")
		case s.TokenFile != "":
			legible("SAGAS_PULSAR_TOKEN_FILE", s.TokenFile)
		}
	case AuthOAuth2:
		emisor := s.OAuth2.IssuerURL
		const clave = "SAGAS_PULSAR_OAUTH2_PRIVATE_KEY"
		if s.OAuth2.PrivateKey == "" {
			add("SAGAS_PULSAR_AUTH", metodo, "needs %s (the JSON credentials file)", clave)
		} else if kf, err := credencialesOAuth2(s.OAuth2.PrivateKey); err != nil {
			add(clave, ocultar(clave, s.OAuth2.PrivateKey), `is not a readable credentials file, JSON {"client_id": …, "client_secret": …} (a path, file:///path or data: URL): %v`, err)
		} else {
			if kf.ClientID == "" || kf.ClientSecret == "" {
				add(clave, ocultar(clave, s.OAuth2.PrivateKey), "needs both client_id and client_secret")
			}
			if emisor == "" {
				emisor = kf.IssuerURL
			}
		}
		if emisor == "" {
			add("SAGAS_PULSAR_AUTH", metodo, "needs SAGAS_PULSAR_OAUTH2_ISSUER_URL (or issuer_url in the credentials file)")
		}
		if f := s.OAuth2.TrustCertsFile; f != "" && legible("SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE", f) {
			if _, err := raices(f); err != nil {
				add("SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE", f, "%v", err)
			}
		}
	case AuthTLS:
		if s.CertFile == "" || s.KeyFile == "" {
			add("SAGAS_PULSAR_AUTH", metodo, "needs SAGAS_PULSAR_TLS_CERT_FILE and SAGAS_PULSAR_TLS_KEY_FILE")
		}
		if !esTLS(urlBroker) {
			add("SAGAS_PULSAR_URL", urlBroker, "must be pulsar+ssl://host:port with SAGAS_PULSAR_AUTH=tls")
		}
		if urlAdmin != "" && !esTLS(urlAdmin) {
			add("SAGAS_PULSAR_ADMIN_URL", urlAdmin, "must be https://host:port with SAGAS_PULSAR_AUTH=tls")
		}
	}
	// A client certificate goes with its key, for any method (a broker may
	// require one in the handshake and authenticate by token).
	switch {
	case s.CertFile != "" && s.KeyFile == "":
		add("SAGAS_PULSAR_TLS_KEY_FILE", "", "must be set with SAGAS_PULSAR_TLS_CERT_FILE")
	case s.CertFile == "" && s.KeyFile != "":
		add("SAGAS_PULSAR_TLS_CERT_FILE", "", "must be set with SAGAS_PULSAR_TLS_KEY_FILE")
	case s.CertFile != "":
		if legible("SAGAS_PULSAR_TLS_CERT_FILE", s.CertFile) && legible("SAGAS_PULSAR_TLS_KEY_FILE", s.KeyFile) {
			if _, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile); err != nil {
				add("SAGAS_PULSAR_TLS_CERT_FILE", s.CertFile, "with SAGAS_PULSAR_TLS_KEY_FILE=%q is not a certificate and its key: %v", s.KeyFile, err)
			}
		}
	}
	if s.TrustCertsFile != "" {
		if legible("SAGAS_PULSAR_TLS_TRUST_CERTS_FILE", s.TrustCertsFile) {
			if _, err := raices(s.TrustCertsFile); err != nil {
				add("SAGAS_PULSAR_TLS_TRUST_CERTS_FILE", s.TrustCertsFile, "%v", err)
			}
		}
		if !esTLS(urlBroker) && !esTLS(urlAdmin) {
			add("SAGAS_PULSAR_TLS_TRUST_CERTS_FILE", s.TrustCertsFile, "has no effect: neither SAGAS_PULSAR_URL nor SAGAS_PULSAR_ADMIN_URL uses TLS (pulsar+ssl://, https://)")
		}
	}
	return ps
}

// ocultar keeps secrets out of messages: the token, and OAuth2 credentials
// given inline (data:).
func ocultar(nombre, valor string) string {
	if nombre == "SAGAS_PULSAR_TOKEN" || nombre == "SAGAS_PULSAR_OAUTH2_PRIVATE_KEY" && strings.HasPrefix(valor, "data:") {
		return "<secret>"
	}
	return valor
}

func (s Seguridad) metodo() string {
	if s.Auth == "" {
		return AuthNinguna
	}
	return strings.ToLower(s.Auth)
}

func esTLS(u string) bool {
	return strings.HasPrefix(u, "pulsar+ssl://") || strings.HasPrefix(u, "https://")
}

// raices parses the trust store file.
func raices(ruta string) (*x509.CertPool, error) {
	b, err := os.ReadFile(ruta)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}

// autenticacion is a new provider of s's credentials (each client gets its
// own: providers hold state, such as an OAuth2 token cache).
func (s Seguridad) autenticacion() (auth.Provider, error) {
	switch s.metodo() {
	case AuthNinguna:
		return nil, nil
	case AuthToken:
		if s.TokenFile != "" {
			return auth.NewAuthenticationTokenFromFile(s.TokenFile), nil
		}
		return auth.NewAuthenticationToken(s.Token), nil
	case AuthOAuth2:
		params := map[string]string{
			auth.ConfigParamType:      auth.ConfigParamTypeClientCredentials,
			auth.ConfigParamIssuerURL: s.OAuth2.IssuerURL,
			auth.ConfigParamAudience:  s.OAuth2.Audience,
			auth.ConfigParamKeyFile:   s.OAuth2.PrivateKey,
			auth.ConfigParamScope:     s.OAuth2.Scope,
		}
		if s.OAuth2.TrustCertsFile != "" {
			params[auth.ConfigParamTrustCertsFilePath] = s.OAuth2.TrustCertsFile
		}
		a, err := auth.NewAuthenticationOAuth2WithParams(params)
		if err != nil {
			return nil, s.errorOAuth2(err)
		}
		return proveedorOAuth2{a, s}, nil
	case AuthTLS:
		return auth.NewAuthenticationTLS(s.CertFile, s.KeyFile), nil
	}
	return nil, fmt.Errorf("SAGAS_PULSAR_AUTH=%q: allowed values are none, token, oauth2, tls", s.Auth)
}

// ConSeguridad authenticates the client as s says and verifies the broker's
// certificate (chain and host name) against s's trust store. With oauth2 it
// obtains a first access token, so that credentials the issuer refuses fail
// Conectar at once, naming the cause (ErrOAuth2), instead of every
// operation at its timeout.
func ConSeguridad(s Seguridad) OpcionConexion {
	return func(o *ajustesConexion) error {
		o.quien = s.Quien()
		a, err := s.autenticacion()
		if err != nil {
			return err
		}
		if s.metodo() == AuthOAuth2 {
			if err := a.Init(); err != nil {
				return s.errorOAuth2(err)
			}
			if _, err := a.GetData(); err != nil {
				return err // proveedorOAuth2 names the cause
			}
		}
		if a != nil {
			o.Authentication = a
		}
		o.TLSTrustCertsFilePath = s.TrustCertsFile
		o.TLSAllowInsecureConnection = s.PermitirInseguro
		// The Go client dials with the URL's host as the TLS server name, so
		// the host name is verified whenever the chain is.
		o.TLSValidateHostname = !s.PermitirInseguro
		if s.metodo() != AuthTLS && s.CertFile != "" {
			o.TLSCertificateFile, o.TLSKeyFilePath = s.CertFile, s.KeyFile
		}
		return nil
	}
}

// transporte is the admin client's HTTP transport: s's trust store and
// client certificate, and s's credentials on every request.
func (s Seguridad) transporte() (http.RoundTripper, error) {
	conf, err := s.configTLS()
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = conf
	a, err := s.autenticacion()
	if err != nil {
		return nil, err
	}
	if a == nil || s.metodo() == AuthTLS {
		return t, nil
	}
	if err := a.Init(); err != nil {
		return nil, fmt.Errorf("credenciales de pulsar (SAGAS_PULSAR_AUTH=%s): %w", s.metodo(), err)
	}
	return portador{a, t}, nil
}

// configTLS is the TLS configuration of the admin client and of
// ComprobarConexion: s's trust store, hostname verification unless
// PermitirInseguro, and s's client certificate, read at each handshake so a
// renewed one is used.
func (s Seguridad) configTLS() (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: s.PermitirInseguro}
	if s.TrustCertsFile != "" {
		pool, err := raices(s.TrustCertsFile)
		if err != nil {
			return nil, fmt.Errorf("SAGAS_PULSAR_TLS_TRUST_CERTS_FILE=%q: %w", s.TrustCertsFile, err)
		}
		conf.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, key := s.CertFile, s.KeyFile
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(cert, key)
			return &c, err
		}
	}
	return conf, nil
}

// portador sends the provider's current token as a bearer token: the token
// file is read, or the OAuth2 token refreshed, per request.
type portador struct {
	a    auth.Provider
	base http.RoundTripper
}

func (p portador) RoundTrip(req *http.Request) (*http.Response, error) {
	datos, err := p.a.GetData()
	if err != nil {
		var o *errorOAuth2
		if errors.As(err, &o) {
			return nil, err // it names the cause
		}
		return nil, fmt.Errorf("credenciales de pulsar: %w", err)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(datos)))
	return p.base.RoundTrip(req)
}

// ErrOAuth2: the OAuth2 issuer gave no access token (client credentials
// refused, issuer unreachable or not an OAuth2 issuer). Such an error is
// also ErrAutenticacion.
var ErrOAuth2 = errors.New("el emisor OAuth2 no entregó un token de acceso")

// errorOAuth2 is an ErrOAuth2 naming the issuer and the client.
type errorOAuth2 struct {
	s     Seguridad
	causa error
}

func (e *errorOAuth2) Error() string {
	return fmt.Sprintf("%v (SAGAS_PULSAR_AUTH=oauth2%s): %v", ErrOAuth2, e.s.pistaOAuth2(), e.causa)
}

func (e *errorOAuth2) Unwrap() []error { return []error{ErrOAuth2, ErrAutenticacion, e.causa} }

func (s Seguridad) errorOAuth2(err error) error {
	var o *errorOAuth2
	if err == nil || errors.As(err, &o) {
		return err
	}
	return &errorOAuth2{s, err}
}

// pistaOAuth2 names the issuer and the client id of s, for messages.
func (s Seguridad) pistaOAuth2() string {
	var p string
	emisor := s.OAuth2.IssuerURL
	if kf, err := credencialesOAuth2(s.OAuth2.PrivateKey); err == nil {
		if emisor == "" {
			emisor = kf.IssuerURL
		}
		p += ", client_id «" + kf.ClientID + "» of " + ocultar("SAGAS_PULSAR_OAUTH2_PRIVATE_KEY", s.OAuth2.PrivateKey)
	}
	return ", issuer " + emisor + p
}

// proveedorOAuth2 is the Go client's OAuth2 provider with errors that name
// the issuer and the client (the client's own say only "could not exchange
// client credentials").
type proveedorOAuth2 struct {
	auth.Provider
	s Seguridad
}

func (p proveedorOAuth2) GetData() ([]byte, error) {
	d, err := p.Provider.GetData()
	return d, p.s.errorOAuth2(err)
}
