package bus_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/internal/bus"
)

func TestValidarSeguridadInformaCadaProblemaNombrandoLaVariable(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "t.token")
	if err := os.WriteFile(token, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vacio := filepath.Join(dir, "vacio")
	if err := os.WriteFile(vacio, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sinSecreto := filepath.Join(dir, "incompleto.json")
	if err := os.WriteFile(sinSecreto, []byte(`{"client_id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	conEmisor := filepath.Join(dir, "con-emisor.json")
	if err := os.WriteFile(conEmisor, []byte(`{"client_id":"x","client_secret":"y","issuer_url":"https://emisor"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const tls, plano, https, http = "pulsar+ssl://b:6651", "pulsar://b:6650", "https://b:8443", "http://b:8080"
	for _, c := range []struct {
		nombre      string
		s           bus.Seguridad
		broker, adm string
		quiere      []string // each a fragment of one problem; none = valid
	}{
		{"sin autenticación es válido", bus.Seguridad{}, plano, http, nil},
		{"token en archivo legible es válido", bus.Seguridad{Auth: "token", TokenFile: token}, tls, https, nil},
		{"token sin token ni archivo", bus.Seguridad{Auth: "token"}, tls, https, []string{"SAGAS_PULSAR_AUTH=\"token\": needs SAGAS_PULSAR_TOKEN"}},
		{"token y archivo a la vez", bus.Seguridad{Auth: "token", Token: "x", TokenFile: token}, tls, https, []string{"set only one"}},
		{"archivo de token vacío o ausente", bus.Seguridad{Auth: "token", TokenFile: vacio}, tls, https, []string{"SAGAS_PULSAR_TOKEN_FILE", "is empty"}},
		{"credencial de otro método, sin revelar el token", bus.Seguridad{Token: "secreto"}, plano, http, []string{"SAGAS_PULSAR_TOKEN=\"<secret>\": is only read with SAGAS_PULSAR_AUTH=token"}},
		{"oauth2 sin emisor ni clave", bus.Seguridad{Auth: "oauth2"}, tls, https, []string{"needs SAGAS_PULSAR_OAUTH2_ISSUER_URL", "needs SAGAS_PULSAR_OAUTH2_PRIVATE_KEY"}},
		{"oauth2 con el emisor en el archivo de credenciales es válido", bus.Seguridad{Auth: "oauth2", OAuth2: bus.OAuth2{PrivateKey: conEmisor}}, tls, https, nil},
		{"oauth2 con el archivo como file:// es válido", bus.Seguridad{Auth: "oauth2", OAuth2: bus.OAuth2{IssuerURL: "https://e", PrivateKey: "file://" + conEmisor}}, tls, https, nil},
		{"oauth2 con credenciales que no son JSON", bus.Seguridad{Auth: "oauth2", OAuth2: bus.OAuth2{IssuerURL: "https://e", PrivateKey: token}}, tls, https,
			[]string{"SAGAS_PULSAR_OAUTH2_PRIVATE_KEY=\"" + token + "\": is not a readable credentials file"}},
		{"oauth2 sin client_secret", bus.Seguridad{Auth: "oauth2", OAuth2: bus.OAuth2{IssuerURL: "https://e", PrivateKey: sinSecreto}}, tls, https,
			[]string{"needs both client_id and client_secret"}},
		{"oauth2 en línea sin secreto, sin revelarlo", bus.Seguridad{Auth: "oauth2", OAuth2: bus.OAuth2{IssuerURL: "https://e", PrivateKey: `data:,{"client_id":"secreto"}`}}, tls, https,
			[]string{"SAGAS_PULSAR_OAUTH2_PRIVATE_KEY=\"<secret>\": needs both"}},
		{"almacén del emisor que no es PEM", bus.Seguridad{Auth: "oauth2", OAuth2: bus.OAuth2{PrivateKey: conEmisor, TrustCertsFile: token}}, tls, https,
			[]string{"SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE", "holds no PEM certificate"}},
		{"tls sin certificado y con URLs en claro", bus.Seguridad{Auth: "tls"}, plano, http,
			[]string{"needs SAGAS_PULSAR_TLS_CERT_FILE", "SAGAS_PULSAR_URL=\"pulsar://b:6650\": must be pulsar+ssl", "SAGAS_PULSAR_ADMIN_URL"}},
		{"certificado sin clave", bus.Seguridad{Auth: "tls", CertFile: token}, tls, https, []string{"SAGAS_PULSAR_TLS_KEY_FILE=\"\": must be set"}},
		{"almacén de confianza que no es PEM, sin TLS en ninguna URL", bus.Seguridad{TrustCertsFile: token}, plano, http,
			[]string{"holds no PEM certificate", "has no effect"}},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			err := c.s.Validar(c.broker, c.adm)
			if len(c.quiere) == 0 {
				if err != nil {
					t.Fatalf("Validar = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validar = nil, want %q", c.quiere)
			}
			for _, q := range c.quiere {
				if !strings.Contains(err.Error(), q) {
					t.Errorf("Validar = %v\nwant it to contain %q", err, q)
				}
			}
			if strings.Contains(err.Error(), "secreto") {
				t.Errorf("Validar reveals the token: %v", err)
			}
		})
	}
}
