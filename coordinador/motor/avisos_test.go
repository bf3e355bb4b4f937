package motor

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
)

func cerrado(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestAvisosDespiertaAlTerminarLaSagaYSoloEsaSaga(t *testing.T) {
	a := NuevosAvisos()
	ch1, cancel1 := a.Esperar("s1")
	defer cancel1()
	ch1b, cancel1b := a.Esperar("s1")
	defer cancel1b()
	ch2, cancel2 := a.Esperar("s2")
	defer cancel2()

	a.Transicion(saga.Saga{}, saga.Saga{ID: "s1", Estado: saga.EnProgreso}, saga.Transicion{Cambio: true})
	if cerrado(ch1) || cerrado(ch1b) {
		t.Fatal("a non-terminal transition woke the waiters")
	}
	a.Transicion(saga.Saga{}, saga.Saga{ID: "s1", Estado: saga.Completada}, saga.Transicion{Cambio: true, Terminada: true})
	if !cerrado(ch1) || !cerrado(ch1b) {
		t.Fatal("the terminal transition did not wake both waiters of s1")
	}
	if cerrado(ch2) {
		t.Fatal("s2's waiter was woken by s1's end")
	}
	if n := a.Pendientes(); n != 1 {
		t.Fatalf("Pendientes = %d, want 1 (only s2)", n)
	}
}

func TestAvisarDespiertaPorUnFinConocidoEnOtraReplica(t *testing.T) {
	a := NuevosAvisos()
	ch, cancel := a.Esperar("s1")
	defer cancel()
	a.Avisar("s1")
	if !cerrado(ch) {
		t.Fatal("Avisar did not wake the waiter")
	}
	a.Avisar("s1") // a second signal (own transition and eventos-saga) is harmless
	a.Avisar("nadie-espera")
	if n := a.Pendientes(); n != 0 {
		t.Fatalf("Pendientes = %d, want 0", n)
	}
}

func TestCancelarQuitaLaEsperaYEsIdempotente(t *testing.T) {
	var a Avisos // the zero value works
	ch, cancel := a.Esperar("s1")
	_, cancelOtra := a.Esperar("s1")
	cancel()
	cancel()
	if n := a.Pendientes(); n != 1 {
		t.Fatalf("Pendientes after one cancel = %d, want 1", n)
	}
	cancelOtra()
	if n := a.Pendientes(); n != 0 || len(a.esperas) != 0 {
		t.Fatalf("after cancelling every waiter: Pendientes = %d, map entries = %d; want 0, 0", n, len(a.esperas))
	}
	a.Avisar("s1")
	if cerrado(ch) {
		t.Fatal("a cancelled waiter was woken")
	}
}

func TestCancelarDespuesDeAvisarNoTocaEsperasNuevas(t *testing.T) {
	a := NuevosAvisos()
	_, cancelVieja := a.Esperar("s1")
	a.Avisar("s1")
	nueva, cancelNueva := a.Esperar("s1")
	defer cancelNueva()
	cancelVieja()
	if n := a.Pendientes(); n != 1 {
		t.Fatalf("the old cancel removed the new waiter: Pendientes = %d", n)
	}
	a.Avisar("s1")
	if !cerrado(nueva) {
		t.Fatal("the new waiter was not woken")
	}
}

func TestAvisosConcurrentesNoPierdenNiFiltranEsperas(t *testing.T) {
	a := NuevosAvisos()
	const sagas, porSaga = 50, 20
	var wg sync.WaitGroup
	despiertos := make(chan struct{}, sagas*porSaga)
	listos := sync.WaitGroup{}
	listos.Add(sagas * porSaga)
	for i := range sagas {
		id := fmt.Sprintf("s%d", i)
		for range porSaga {
			wg.Go(func() {
				ch, cancel := a.Esperar(id)
				defer cancel()
				listos.Done()
				select {
				case <-ch:
					despiertos <- struct{}{}
				case <-time.After(10 * time.Second):
				}
			})
		}
	}
	listos.Wait()
	var avisadores sync.WaitGroup
	for i := range sagas {
		avisadores.Go(func() { a.Avisar(fmt.Sprintf("s%d", i)) })
	}
	avisadores.Wait()
	wg.Wait()
	if len(despiertos) != sagas*porSaga {
		t.Fatalf("woken %d of %d waiters", len(despiertos), sagas*porSaga)
	}
	if n := a.Pendientes(); n != 0 {
		t.Fatalf("Pendientes = %d after every saga ended, want 0", n)
	}
}
