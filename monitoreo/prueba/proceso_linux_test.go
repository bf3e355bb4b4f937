//go:build linux

package prueba

import "syscall"

// atributosProceso puts a child in its own process group (so Cleanup can
// signal it and anything it started) and has the kernel kill it if the test
// process dies first, so a crashed or timed-out test leaves no processes.
func atributosProceso() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
