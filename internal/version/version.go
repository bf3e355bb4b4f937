// Package version says which build of the module is running, for -version
// flags and the build_info metric.
package version

import (
	"runtime/debug"
	"strings"
)

// Cadena is the build's version: the module version (or "devel"), then the
// VCS revision and "+dirty" when the tree had uncommitted changes, e.g.
// "devel 1b250b5c2f1e+dirty". It reads the build info the go command embeds.
func Cadena() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return cadenaDe(info)
}

func cadenaDe(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var revision string
	var modificado bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modificado = s.Value == "true"
		}
	}
	if revision == "" || strings.Contains(v, revision[:min(12, len(revision))]) {
		return v
	}
	v += " " + revision[:min(12, len(revision))]
	if modificado {
		v += "+dirty"
	}
	return v
}
