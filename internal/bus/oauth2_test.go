package bus_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/internal/bus"
)

// emisorOAuth2 is a local OAuth2 issuer: it serves its OpenID discovery
// document and answers the client_credentials grant of its known clients
// with an access token the secured broker trusts (a JWT signed with the
// broker's secret key, its subject the client's role).
type emisorOAuth2 struct {
	*httptest.Server
	ca        string // PEM file of the server's certificate
	audiencia string
	mu        sync.Mutex
	clientes  map[string]clienteOAuth2 // by client_id
	emitidos  atomic.Int64
	firmar    func(rol string) string
}

type clienteOAuth2 struct{ secreto, rol string }

// nuevoEmisorOAuth2 starts an issuer whose tokens are firmar(rol), or
// signed with the broker's key when firmar is nil.
func nuevoEmisorOAuth2(t *testing.T, s seguro, firmar func(rol string) string) *emisorOAuth2 {
	t.Helper()
	if firmar == nil {
		firmar = func(rol string) string { return s.token(t, rol, time.Now().Add(time.Hour)) }
	}
	e := &emisorOAuth2{audiencia: "urn:alpespartner:pulsar", clientes: map[string]clienteOAuth2{}, firmar: firmar}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": e.URL, "token_endpoint": e.URL + "/oauth/token"})
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		negar := func(codigo int, err, desc string) {
			w.WriteHeader(codigo)
			json.NewEncoder(w).Encode(map[string]string{"error": err, "error_description": desc})
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			negar(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials")
			return
		}
		e.mu.Lock()
		c, ok := e.clientes[r.PostForm.Get("client_id")]
		e.mu.Unlock()
		if !ok || c.secreto != r.PostForm.Get("client_secret") {
			negar(http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		if r.PostForm.Get("audience") != e.audiencia {
			negar(http.StatusBadRequest, "invalid_request", "unknown audience "+r.PostForm.Get("audience"))
			return
		}
		e.emitidos.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"access_token": e.firmar(c.rol), "token_type": "Bearer", "expires_in": 3600})
	})
	e.Server = httptest.NewTLSServer(mux)
	t.Cleanup(e.Close)
	e.ca = filepath.Join(t.TempDir(), "emisor-ca.pem")
	if err := os.WriteFile(e.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// cliente registers a client of role rol and returns the Seguridad of a
// process holding its credentials file, with secreto as its client_secret.
func (e *emisorOAuth2) cliente(t *testing.T, s seguro, id, rol, secreto string) bus.Seguridad {
	t.Helper()
	e.mu.Lock()
	e.clientes[id] = clienteOAuth2{secreto: "secreto-de-" + id, rol: rol}
	e.mu.Unlock()
	clave := filepath.Join(t.TempDir(), id+".json")
	b, _ := json.Marshal(map[string]string{"type": "client_credentials", "client_id": id, "client_secret": secreto})
	if err := os.WriteFile(clave, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return bus.Seguridad{Auth: bus.AuthOAuth2, TrustCertsFile: filepath.Join(s.Dir, "ca.pem"),
		OAuth2: bus.OAuth2{IssuerURL: e.URL, Audience: e.audiencia, PrivateKey: clave, TrustCertsFile: e.ca}}
}

// TestOAuth2ClientCredentialsDeExtremoAExtremo: with SAGAS_PULSAR_AUTH=oauth2
// a process gets its access token from the issuer (over HTTPS, trusted
// through SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE, apart from the broker's
// trust store) and produces, consumes and calls the admin API on the
// secured broker as the token's role; a wrong client secret is refused at
// once naming the OAuth2 cause; a role the broker does not allow is named
// by the OAuth2 client id.
func TestOAuth2ClientCredentialsDeExtremoAExtremo(t *testing.T) {
	s := nuevoSeguro(t)
	e := nuevoEmisorOAuth2(t, s, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("credenciales correctas", func(t *testing.T) {
		seg := e.cliente(t, s, "sagas-admin", "admin", "secreto-de-sagas-admin")
		if err := seg.Validar(s.URL, s.AdminURL); err != nil {
			t.Fatal(err)
		}
		if err := bus.ComprobarConexion(ctx, s.URL, seg, 10*time.Second); err != nil {
			t.Fatalf("ComprobarConexion: %v", err)
		}
		antes := e.emitidos.Load()
		if err := ida(ctx, conectar(t, s.URL, seg), s.topico("oauth2"), "prueba"); err != nil {
			t.Fatalf("produce and consume over pulsar+ssl with an OAuth2 token: %v", err)
		}
		admin, err := bus.NuevoAdminSeguro(s.AdminURL, seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.Vivo(ctx); err != nil {
			t.Fatalf("admin API with an OAuth2 token: %v", err)
		}
		if err := admin.CrearTopico(ctx, s.topico("oauth2-admin")); err != nil {
			t.Fatalf("admin API with an OAuth2 token: %v", err)
		}
		if e.emitidos.Load() == antes {
			t.Fatal("the issuer issued no token: the broker was not reached with OAuth2")
		}
	})

	t.Run("secreto equivocado", func(t *testing.T) {
		seg := e.cliente(t, s, "sagas-carga", "carga", "otro-secreto")
		inicio := time.Now()
		err := bus.ComprobarConexion(ctx, s.URL, seg, 10*time.Second)
		t.Logf("ComprobarConexion: %v", err)
		nombraOAuth2(t, err)
		_, err = bus.Conectar(s.URL, discard(), bus.ConSeguridad(seg))
		t.Logf("Conectar: %v", err)
		nombraOAuth2(t, err)
		admin, err := bus.NuevoAdminSeguro(s.AdminURL, seg)
		if err != nil {
			t.Fatal(err)
		}
		err = admin.Vivo(ctx)
		t.Logf("admin: %v", err)
		nombraOAuth2(t, err)
		if d := time.Since(inicio); d > 5*time.Second {
			t.Errorf("refused after %s: want it at once, not at a timeout", d)
		}
	})

	t.Run("token de un emisor en el que el broker no confía", func(t *testing.T) {
		// Its tokens carry a signature the broker's key does not match.
		ajeno := nuevoEmisorOAuth2(t, s, func(rol string) string { return strings.TrimSuffix(s.token(t, rol, time.Time{}), "A") + "xyz" })
		seg := ajeno.cliente(t, s, "sagas-ajeno", "admin", "secreto-de-sagas-ajeno")
		err := bus.ComprobarConexion(ctx, s.URL, seg, 10*time.Second)
		t.Logf("ComprobarConexion: %v", err)
		if !errors.Is(err, bus.ErrAutenticacion) || errors.Is(err, bus.ErrOAuth2) {
			t.Errorf("ComprobarConexion = %v, want ErrAutenticacion by the broker, not ErrOAuth2", err)
		}
		for _, want := range []string{"SAGAS_PULSAR_AUTH=oauth2", ajeno.URL, "sagas-ajeno"} {
			if err != nil && !strings.Contains(err.Error(), want) {
				t.Errorf("ComprobarConexion = %q, want it to say %q", err, want)
			}
		}
	})

	t.Run("rol sin permiso se nombra por el client id", func(t *testing.T) {
		seg := e.cliente(t, s, "sagas-marca", "marca", "secreto-de-sagas-marca")
		c := conectar(t, s.URL, seg)
		_, err := bus.Consumir(ctx, c, bus.OpcionesConsumidor{Topico: s.topico("comandos-influencer"), Suscripcion: "marca"},
			func(context.Context, pulsar.Message) error { return nil })
		t.Logf("Consumir: %v", err)
		want := "el rol del cliente OAuth2 «sagas-marca» no tiene permiso para consumir " + s.topico("comandos-influencer")
		if !errors.Is(err, bus.ErrAutorizacion) || !strings.Contains(err.Error(), want) {
			t.Errorf("Consumir = %v, want ErrAutorizacion saying %q", err, want)
		}
	})
}

func nombraOAuth2(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, bus.ErrOAuth2) || !errors.Is(err, bus.ErrAutenticacion) {
		t.Errorf("error %v, want ErrOAuth2 and ErrAutenticacion", err)
		return
	}
	for _, want := range []string{"OAuth2", "sagas-carga", "invalid_client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
