package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
)

// binario builds the coordinator once per test binary run.
func binario(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "coordinador")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proceso starts the coordinator binary with the test's environment.
func (e *entorno) proceso(bin, replica string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "SAGAS_REPLICA_ID="+replica)
	log, err := os.Create(filepath.Join(e.t.TempDir(), replica+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		log.Close()
	})
	return cmd
}

// TestKill9DelCoordinadorNoPierdeNada kills a coordinator with SIGKILL in the
// middle of a run and starts it again: every saga ends terminal, the outbox
// ends empty, and no saga's version shows a transition applied twice.
func TestKill9DelCoordinadorNoPierdeNada(t *testing.T) {
	bin := binario(t)
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntornoConPlazo(t, tipo, 20*time.Second)
		e.participantes(servicios[:3], siempreBien)
		a := e.proceso(bin, "r1")
		m := e.motor()
		const n = 400
		for i := range n {
			id := fmt.Sprintf("%05d-%s", i, aleatorio())
			if _, _, err := m.Iniciar(context.Background(), motor.Solicitud{Tipo: saga.TipoCampana, SagaID: id, Datos: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		// Let it make some progress, then kill it mid-run.
		fin := time.Now().Add(60 * time.Second)
		for {
			r, err := e.abrir().Contar(context.Background(), almacen.Filtro{Estados: []saga.Estado{saga.Completada}})
			if err != nil {
				t.Fatal(err)
			}
			if r[saga.Completada] >= 5 {
				break
			}
			if time.Now().After(fin) {
				t.Fatalf("no progress before the kill: %v", r)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := a.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a.Wait()
		antes, _ := e.abrir().Contar(context.Background(), almacen.Filtro{})
		t.Logf("killed with %v", antes)
		if antes[saga.Completada] == n {
			t.Fatal("the kill came after the end: the test proves nothing")
		}
		e.proceso(bin, "r1")
		e.esperarTodas(n, 2*time.Minute)
		e.outboxVacio(30 * time.Second)
		sagas, err := e.abrir().Listar(context.Background(), almacen.Filtro{Limite: n})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sagas {
			retries := int64(0)
			for _, p := range s.Pasos {
				retries += int64(p.Intento - 1)
			}
			if s.Estado != saga.Completada || s.Version != 3+retries {
				t.Fatalf("saga %s: %s version %d (retries %d)", s.ID, s.Estado, s.Version, retries)
			}
		}
	})
}
