package sistema

import (
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Pausar freezes one process (SIGSTOP): it holds its connections and does
// nothing, like a participant that stopped answering.
func (s *Sistema) Pausar(nombre string) {
	s.t.Helper()
	if c := s.procesos[nombre]; c != nil {
		if err := c.Process.Signal(syscall.SIGSTOP); err != nil {
			s.t.Fatalf("pausar %s: %v", nombre, err)
		}
	}
}

// Reanudar lets a paused process go on (SIGCONT).
func (s *Sistema) Reanudar(nombre string) {
	s.t.Helper()
	if c := s.procesos[nombre]; c != nil {
		if err := c.Process.Signal(syscall.SIGCONT); err != nil {
			s.t.Fatalf("reanudar %s: %v", nombre, err)
		}
	}
}

// DetenerUno stops one process as an operator does (SIGTERM, then SIGKILL
// after 30s) and waits for it.
func (s *Sistema) DetenerUno(nombre string) {
	c := s.procesos[nombre]
	if c == nil {
		return
	}
	c.Process.Signal(syscall.SIGTERM)
	hecho := make(chan struct{})
	go func() { c.Wait(); close(hecho) }()
	select {
	case <-hecho:
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		<-hecho
	}
	s.logs[nombre].Close()
	delete(s.procesos, nombre)
}

// ReiniciarCoordinador starts the first coordinator again, after
// DetenerUno("coordinador"), on the same API address and with the
// system's environment as it is now, and waits until it is ready. Its log
// goes on in the same file's place (the earlier one is replaced).
func (s *Sistema) ReiniciarCoordinador() {
	s.t.Helper()
	puerto := s.API[strings.LastIndex(s.API, ":")+1:]
	s.iniciar(filepath.Join(Binarios(s.t), "coordinador"), "coordinador", map[string]string{"SAGAS_API_HOST": "127.0.0.1", "SAGAS_API_PORT": puerto})
	s.esperarListo(s.API+"/readyz", "coordinador")
}
