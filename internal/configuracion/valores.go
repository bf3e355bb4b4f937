package configuracion

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Valores is the set of values a variable allows: Permitidos describes it
// for error messages and the documentation, valido tests one value.
type Valores interface {
	Permitidos() string
	valido(s string) bool
}

// Texto allows any value.
type Texto struct{}

func (Texto) Permitidos() string   { return "any text" }
func (Texto) valido(s string) bool { return true }

// Entero allows base-10 integers from Min to Max; with both zero, any int64.
type Entero struct{ Min, Max int }

func (e Entero) Permitidos() string {
	if e.Min == 0 && e.Max == 0 {
		return "allowed values are integers"
	}
	return fmt.Sprintf("allowed values are integers %d-%d", e.Min, e.Max)
}

func (e Entero) valido(s string) bool {
	if e.Min == 0 && e.Max == 0 {
		_, err := strconv.ParseInt(s, 10, 64)
		return err == nil
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= e.Min && n <= e.Max
}

// Puerto allows TCP ports from Min to 65535.
type Puerto struct{ Min int }

func (p Puerto) Permitidos() string {
	return fmt.Sprintf("allowed values are TCP ports %d-65535", p.Min)
}

func (p Puerto) valido(s string) bool { return Entero{p.Min, 65535}.valido(s) }

// Decimal allows numbers from Min to Max; Ejemplo, when set, explains one.
type Decimal struct {
	Min, Max float64
	Ejemplo  string
}

func (d Decimal) Permitidos() string {
	s := fmt.Sprintf("allowed values are numbers from %g to %g", d.Min, d.Max)
	if d.Ejemplo != "" {
		s += " (" + d.Ejemplo + ")"
	}
	return s
}

func (d Decimal) valido(s string) bool {
	x, err := strconv.ParseFloat(s, 64)
	return err == nil && x >= d.Min && x <= d.Max
}

// Duracion allows Go durations from Min to Max; a zero Max means no upper
// bound.
type Duracion struct{ Min, Max time.Duration }

func (d Duracion) Permitidos() string {
	if d.Max == 0 {
		if d.Min == 0 {
			return "allowed values are non-negative Go durations such as 20ms"
		}
		return "allowed values are Go durations of at least " + corta(d.Min)
	}
	return fmt.Sprintf("allowed values are Go durations from %s to %s", corta(d.Min), corta(d.Max))
}

func (d Duracion) valido(s string) bool {
	x, err := time.ParseDuration(s)
	return err == nil && x >= d.Min && (d.Max == 0 || x <= d.Max)
}

// corta writes 1m rather than Go's 1m0s.
func corta(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Interruptor allows on and off (and true/false, 1/0, yes/no), in any case.
type Interruptor struct{}

func (Interruptor) Permitidos() string { return "allowed values are on, off" }

func (Interruptor) valido(s string) bool { _, ok := encendido(s); return ok }

func encendido(s string) (valor, ok bool) {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		return true, true
	case "off", "false", "0", "no":
		return false, true
	}
	return false, false
}

// Opciones allows one of the listed words, in any case.
type Opciones []string

func (o Opciones) Permitidos() string { return "allowed values are " + strings.Join(o, ", ") }

func (o Opciones) valido(s string) bool {
	for _, x := range o {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// URL allows absolute URLs with a host and one of the schemes.
type URL []string

func (u URL) Permitidos() string {
	formas := make([]string, len(u))
	for i, e := range u {
		formas[i] = e + "://host:port"
	}
	return "allowed values are " + strings.Join(formas, " or ")
}

func (u URL) valido(s string) bool {
	x, err := url.Parse(s)
	return err == nil && x.Host != "" && Opciones(u).valido(x.Scheme)
}

// Nombre allows 1 to 100 letters, digits, _ . and - (a Pulsar tenant or
// namespace, a service).
type Nombre struct{}

func (Nombre) Permitidos() string { return "allowed are letters, digits, _ . -" }

func (Nombre) valido(s string) bool { return NombreValido(s, "_.-", 100) }

// NombreValido reports whether s is 1 to max characters among ASCII letters,
// digits and the characters in extra.
func NombreValido(s, extra string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

// SinSeparadores allows any text without '/', ':' or spaces (an id that
// becomes part of a Pulsar producer name).
type SinSeparadores struct{}

func (SinSeparadores) Permitidos() string { return "must not contain '/', ':' or spaces" }

func (SinSeparadores) valido(s string) bool { return !strings.ContainsAny(s, "/ :") }

// Direccion allows host:port with a port 0-65535 (0 picks a free one).
type Direccion struct{}

func (Direccion) Permitidos() string {
	return "allowed values are host:port with a port 0-65535 (port 0 picks a free one)"
}

func (Direccion) valido(s string) bool {
	host, puerto, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, "/ ") {
		return false
	}
	p, err := strconv.Atoi(puerto)
	return err == nil && p >= 0 && p <= 65535
}

// Topico allows a full Pulsar topic name persistent://tenant/namespace/topic.
type Topico struct{}

func (Topico) Permitidos() string { return "must be persistent://tenant/namespace/topic" }

func (Topico) valido(s string) bool {
	return strings.HasPrefix(s, "persistent://") && strings.Count(s, "/") == 4
}
