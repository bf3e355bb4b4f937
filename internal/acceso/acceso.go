// Package acceso protects the operations listeners (the coordinator's and
// each participant's SAGAS_METRICS_ADDR) with a bearer token, so that what
// answers off loopback asks for credentials (docs/production.md, Exposure).
package acceso

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Portador returns h behind the bearer token: a request without
// "Authorization: Bearer <token>" gets 401 and never reaches h. With an
// empty token it returns h unchanged.
func Portador(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	// Comparing digests keeps the comparison's time independent of where
	// the strings differ and of the token's length.
	esperado := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dado, ok := portador(r.Header.Get("Authorization"))
		recibido := sha256.Sum256([]byte(dado))
		if !ok || subtle.ConstantTimeCompare(esperado[:], recibido[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sagas"`)
			http.Error(w, "no autorizado", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// portador is the token of an Authorization header of the Bearer scheme
// (case-insensitive, RFC 6750).
func portador(cabecera string) (string, bool) {
	esquema, token, ok := strings.Cut(cabecera, " ")
	if !ok || !strings.EqualFold(esquema, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
