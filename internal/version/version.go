// Package version says which build of a binary is running, from the
// information the Go toolchain embeds (module version, VCS revision).
package version

import (
	"runtime/debug"
	"strings"
)

// Cadena describes the running binary's build in one line: its main module's
// path and version, then the VCS revision and time when the build recorded
// them ("+cambios" when the tree had uncommitted changes) and the Go version.
func Cadena() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(sin información de compilación)"
	}
	return describir(info)
}

func describir(info *debug.BuildInfo) string {
	partes := []string{info.Main.Path}
	if info.Main.Version != "" {
		partes = append(partes, info.Main.Version)
	}
	var rev, cuando string
	cambios := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			cuando = s.Value
		case "vcs.modified":
			cambios = s.Value == "true"
		}
	}
	if rev != "" {
		if cambios {
			rev += "+cambios"
		}
		partes = append(partes, "revisión "+rev)
	}
	if cuando != "" {
		partes = append(partes, cuando)
	}
	if info.GoVersion != "" {
		partes = append(partes, info.GoVersion)
	}
	return strings.Join(partes, " ")
}
