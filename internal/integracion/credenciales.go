package integracion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Token signs an HS256 JWT for rol with clave (the secured broker's
// token-secret.key), as `pulsar tokens create` does; it expires at exp
// unless exp is zero.
func Token(rol string, clave []byte, exp time.Time) string {
	b64 := base64.RawURLEncoding.EncodeToString
	cuerpo := fmt.Sprintf(`{"sub":%q}`, rol)
	if !exp.IsZero() {
		cuerpo = fmt.Sprintf(`{"sub":%q,"exp":%d}`, rol, exp.Unix())
	}
	firmado := b64([]byte(`{"alg":"HS256"}`)) + "." + b64([]byte(cuerpo))
	m := hmac.New(sha256.New, clave)
	m.Write([]byte(firmado))
	return firmado + "." + b64(m.Sum(nil))
}

// TokenDelBroker is Token signed with the key in dir/token-secret.key (the
// secured broker's seguridad/ directory).
func TokenDelBroker(t testing.TB, dir, rol string, exp time.Time) string {
	t.Helper()
	clave, err := os.ReadFile(filepath.Join(dir, "token-secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	return Token(rol, clave, exp)
}

// CAAjena makes a throwaway self-signed CA that signed nothing our servers
// present, and returns its certificate as PEM and parsed.
func CAAjena(t testing.TB) (string, *x509.Certificate) {
	t.Helper()
	clave, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plantilla := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA ajena de prueba"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, plantilla, plantilla, &clave.PublicKey, clave)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return string(pemCertificado(der)), cert
}

func pemCertificado(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
