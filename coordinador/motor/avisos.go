package motor

import (
	"sync"

	"github.com/alpespartner/sagas/coordinador/saga"
)

// Avisos wakes the callers waiting for sagas to end (an HTTP request with
// ?esperar=). It is an Observador: a transition that makes a saga terminal
// wakes that saga's waiters; Avisar does the same for an end learnt
// elsewhere (the eventos-saga topic, when another replica ran the saga).
//
// A waiter is woken, never told the state: it reads the store afterwards.
// Register before reading the store (Esperar, then read), so an end between
// the read and the wait is not missed. Memory is bounded by the waiters
// registered: each is removed when woken or cancelled. Safe for concurrent
// use; the zero value is ready.
type Avisos struct {
	mu      sync.Mutex
	esperas map[string]map[*espera]struct{}
}

type espera struct{ aviso chan struct{} }

// NuevosAvisos returns an empty Avisos.
func NuevosAvisos() *Avisos { return &Avisos{} }

// Transicion wakes the waiters of a saga this transition ended.
func (a *Avisos) Transicion(_, despues saga.Saga, t saga.Transicion) {
	if t.Terminada {
		a.Avisar(despues.ID)
	}
}

// Avisar wakes every waiter of sagaID and forgets them.
func (a *Avisos) Avisar(sagaID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for e := range a.esperas[sagaID] {
		close(e.aviso)
	}
	delete(a.esperas, sagaID)
}

// Esperar registers a waiter for sagaID. The channel is closed when the saga
// may have ended; cancel removes the waiter, may be called more than once
// and must be called (defer it) unless the channel was closed.
func (a *Avisos) Esperar(sagaID string) (<-chan struct{}, func()) {
	e := &espera{aviso: make(chan struct{})}
	a.mu.Lock()
	if a.esperas == nil {
		a.esperas = map[string]map[*espera]struct{}{}
	}
	del := a.esperas[sagaID]
	if del == nil {
		del = map[*espera]struct{}{}
		a.esperas[sagaID] = del
	}
	del[e] = struct{}{}
	a.mu.Unlock()
	cancelar := func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		del, ok := a.esperas[sagaID]
		if !ok {
			return
		}
		delete(del, e)
		if len(del) == 0 {
			delete(a.esperas, sagaID)
		}
	}
	return e.aviso, cancelar
}

// Pendientes returns how many waiters are registered (for metrics and tests).
func (a *Avisos) Pendientes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, del := range a.esperas {
		n += len(del)
	}
	return n
}
