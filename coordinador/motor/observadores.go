package motor

import "github.com/alpespartner/sagas/coordinador/saga"

// Observador is told about transitions, for metrics, logs and waiters.
// Calls happen after the transaction committed.
type Observador interface {
	Transicion(antes, despues saga.Saga, t saga.Transicion)
}

// Observadores fans a transition out to several observers, in order.
type Observadores []Observador

// Transicion implements Observador.
func (os Observadores) Transicion(antes, despues saga.Saga, t saga.Transicion) {
	for _, o := range os {
		o.Transicion(antes, despues, t)
	}
}
