// Package version says which build of the module is running, for -version
// flags and the build_info metric.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
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
	c := compilacionDe(info)
	if c.revision == "" || strings.Contains(c.version, c.revision) {
		return c.version
	}
	return c.version + " " + c.revisionMarcada()
}

// compilacion is what the go command recorded about a build.
type compilacion struct {
	version    string // module version, or "devel"
	revision   string // VCS revision, first 12 characters; "" without VCS
	modificado bool   // the tree had uncommitted changes
	goversion  string
}

func compilacionDe(info *debug.BuildInfo) compilacion {
	c := compilacion{version: info.Main.Version, goversion: info.GoVersion}
	if c.version == "" || c.version == "(devel)" {
		c.version = "devel"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			c.revision = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			c.modificado = s.Value == "true"
		}
	}
	return c
}

// revisionMarcada is the revision with "+dirty" when the tree had changes.
func (c compilacion) revisionMarcada() string {
	if c.modificado {
		return c.revision + "+dirty"
	}
	return c.revision
}

// Metrica returns the gauge sagas_build_info{version,revision,goversion},
// always 1, which every process with a /metrics endpoint registers: the
// labels say which build is running (revision "unknown" without VCS data).
func Metrica() prometheus.Collector {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return metricaDe(info)
}

func metricaDe(info *debug.BuildInfo) prometheus.Collector {
	c := compilacionDe(info)
	revision := c.revisionMarcada()
	if c.revision == "" {
		revision = "unknown"
	}
	if c.goversion == "" {
		c.goversion = runtime.Version()
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sagas_build_info",
		Help: "Always 1; the labels name the running build: module version, VCS revision (+dirty for a modified tree) and Go version.",
		ConstLabels: prometheus.Labels{
			"version": c.version, "revision": revision, "goversion": c.goversion,
		},
	})
	g.Set(1)
	return g
}
