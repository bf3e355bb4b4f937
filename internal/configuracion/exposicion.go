package configuracion

import (
	"fmt"
	"net"
	"strings"
)

// PermitirSinAutenticacion names the override that lets an HTTP listener off
// loopback answer without authentication (docs/production.md, Exposure).
const PermitirSinAutenticacion = "SAGAS_HTTP_ALLOW_UNAUTHENTICATED"

// Loopback reports whether host (an IP literal or a name, without a port)
// can only be reached from this machine: localhost, 127.0.0.0/8 or ::1. An
// empty host, 0.0.0.0, ::, any other address and any other name are not.
func Loopback(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listener is an HTTP listener a binary opens, as its configuration says.
type Listener struct {
	// Que says what it serves, for messages: "the API", "pprof".
	Que string
	// Variable and Valor are the setting that places it (SAGAS_API_HOST,
	// SAGAS_METRICS_ADDR, SAGAS_PPROF_ADDR) and its value; Host is the host
	// part of Valor.
	Variable, Valor, Host string
	// VariableToken names the bearer token that protects it; "" when it
	// cannot be protected (pprof). ConToken says whether it is set.
	VariableToken string
	ConToken      bool
}

// Abierto reports whether the listener answers off loopback without
// authentication.
func (l Listener) Abierto() bool { return !Loopback(l.Host) && !l.ConToken }

// ComprobarExposicion is nil when the listener is on loopback, requires its
// token, or permitido (the override PermitirSinAutenticacion) accepts it
// open; otherwise the error names the setting, the token variable and the
// override.
func ComprobarExposicion(l Listener, permitido bool) error {
	if !l.Abierto() || permitido {
		return nil
	}
	if l.VariableToken == "" {
		return fmt.Errorf("%s=%q: not a loopback address, and %s has no authentication: bind it to 127.0.0.1, or set %s=on to expose it anyway",
			l.Variable, l.Valor, l.Que, PermitirSinAutenticacion)
	}
	return fmt.Errorf("%s=%q: not a loopback address, and %s is not set, so %s would answer anyone without credentials; set %s, bind it to 127.0.0.1, or set %s=on to expose it anyway",
		l.Variable, l.Valor, l.VariableToken, l.Que, l.VariableToken, PermitirSinAutenticacion)
}

// AvisoAbierto is the warning a binary logs at start for a listener that
// answers off loopback without authentication because the override allows it.
func AvisoAbierto(l Listener) string {
	return fmt.Sprintf("%s (%s=%s) is open to the network WITHOUT AUTHENTICATION because %s=on: anyone who can reach it can call it",
		l.Que, l.Variable, l.Valor, PermitirSinAutenticacion)
}
