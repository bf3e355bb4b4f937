package bus

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/internal/configuracion"
)

// Reintentos bounds and spaces the redeliveries of a message whose handler
// failed with a transient error: the n-th redelivery waits
// Inicial·2^(n-1), at most Tope, and a message that failed Maximo+1 times
// is dead-lettered with its history. The zero value is
// ReintentosPorDefecto.
type Reintentos struct {
	// Maximo is how many times a message is redelivered after its first
	// failed delivery; 0 means the default (10).
	Maximo int
	// Inicial is the wait before the first redelivery; 0 means 1s.
	Inicial time.Duration
	// Tope caps the wait between two deliveries; 0 means 1m.
	Tope time.Duration
}

// ReintentosPorDefecto: 10 redeliveries after 1s, 2s, 4s … capped at 1m,
// so a message that keeps failing is dead-lettered about five minutes after
// it first failed.
var ReintentosPorDefecto = Reintentos{Maximo: 10, Inicial: time.Second, Tope: time.Minute}

// LeerReintentos reads SAGAS_MAX_REDELIVERIES, SAGAS_REDELIVERY_DELAY and
// SAGAS_REDELIVERY_DELAY_MAX; l reports a cap below the first wait.
func LeerReintentos(l *configuracion.Lector) Reintentos {
	r := Reintentos{
		Maximo:  l.Entero("SAGAS_MAX_REDELIVERIES", ReintentosPorDefecto.Maximo),
		Inicial: l.Duracion("SAGAS_REDELIVERY_DELAY", ReintentosPorDefecto.Inicial),
		Tope:    l.Duracion("SAGAS_REDELIVERY_DELAY_MAX", ReintentosPorDefecto.Tope),
	}
	if r.Tope < r.Inicial {
		l.Problema("SAGAS_REDELIVERY_DELAY_MAX", r.Tope.String(), "must be at least SAGAS_REDELIVERY_DELAY ("+r.Inicial.String()+")")
	}
	return r
}

// conDefectos fills the zero fields with ReintentosPorDefecto's.
func (r Reintentos) conDefectos() Reintentos {
	if r.Maximo <= 0 {
		r.Maximo = ReintentosPorDefecto.Maximo
	}
	if r.Inicial <= 0 {
		r.Inicial = ReintentosPorDefecto.Inicial
	}
	if r.Tope <= 0 {
		r.Tope = ReintentosPorDefecto.Tope
	}
	if r.Tope < r.Inicial {
		r.Tope = r.Inicial
	}
	return r
}

// Espera is the wait before the delivery that follows the fallos-th failed
// one (fallos ≥ 1): Inicial·2^(fallos-1), at most Tope.
func (r Reintentos) Espera(fallos int) time.Duration {
	r = r.conDefectos()
	e := r.Inicial
	for i := 1; i < fallos && e < r.Tope; i++ {
		e *= 2
	}
	return min(e, r.Tope)
}

// Agotados reports whether a message that failed fallos times has used up
// its redeliveries and goes to the dead-letter topic.
func (r Reintentos) Agotados(fallos int) bool { return fallos > r.conDefectos().Maximo }

// Clase is the class of a handler's error, the clase label of the retry
// and dead-letter metrics and the dlq_clase property.
type Clase string

// The classes of errors.
const (
	// ClasePermanente: the message can never be processed (ErrPermanente);
	// dead-lettered at once.
	ClasePermanente Clase = "permanente"
	// ClasePlazo: a deadline expired or a network operation timed out;
	// retried.
	ClasePlazo Clase = "plazo"
	// ClaseTransitoria: any other error; retried.
	ClaseTransitoria Clase = "transitoria"
	// ClaseAgotada: a message dead-lettered because its transient failures
	// used up its redeliveries (a dead-letter class only).
	ClaseAgotada Clase = "reintentos_agotados"
)

// Clasificar says whether err is permanent (it wraps ErrPermanente: the
// message goes to the dead-letter topic at once) or transient, and which
// kind of transient. Classification is by type, never by message text.
func Clasificar(err error) Clase {
	var ne net.Error
	switch {
	case errors.Is(err, ErrPermanente):
		return ClasePermanente
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ClasePlazo
	default:
		return ClaseTransitoria
	}
}

// RechazoDefinitivo reports whether the broker refused a publication for a
// reason that sending again cannot cure by itself: an incompatible schema,
// a missing topic or namespace, a role without permission, an invalid topic
// name, a terminated topic, a message over the size limit. A timeout or a
// lost connection is not one: the message waits for the broker. The client
// reports most of these as text ("server error: IncompatibleSchema: ..."),
// so the broker's error names are matched here and nowhere else.
func RechazoDefinitivo(err error) bool {
	if err == nil {
		return false
	}
	var pe *pulsar.Error
	if errors.As(err, &pe) {
		switch pe.Result() {
		case pulsar.MessageTooBig, pulsar.InvalidTopicName, pulsar.TopicNotFound, pulsar.TopicTerminated, pulsar.AuthorizationError:
			return true
		}
	}
	if errors.Is(err, ErrAutorizacion) || errors.Is(err, ErrTopicoInexistente) || esDenegacion(err) {
		return true
	}
	m := err.Error()
	for _, nombre := range []string{"IncompatibleSchema", "TopicNotFound", "InvalidTopicName", "TopicTerminated", "MessageTooBig"} {
		if strings.Contains(m, nombre) {
			return true
		}
	}
	return false
}
