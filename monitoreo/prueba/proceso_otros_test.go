//go:build !linux && !windows

package prueba

import "syscall"

// atributosProceso puts a child in its own process group, so Cleanup can
// signal it and anything it started.
func atributosProceso() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
