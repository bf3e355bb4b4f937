package ciclo

import "runtime/debug"

// GCPorDefecto is the garbage collector's target percentage the services
// run with unless GOGC says otherwise: the heap may grow to five times the
// live one (Go's default, 100, is twice). The services' live heap is small
// (a loaded coordinator's ~7 MB), so at Go's default it collected about ten
// times a second and marking took ~14 % of its CPU; at 400 the coordinator
// and the participants spent ~20 % less CPU per saga, for 10-30 MB more
// resident memory per busy process (docs/performance.md).
const GCPorDefecto = 400

// AjustarGC sets the collector's target to GCPorDefecto when GOGC is not
// set in the environment; with GOGC set, the runtime's reading of it stands.
// GOMEMLIMIT, when set, applies either way. It returns the percentage in
// effect.
func AjustarGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(GCPorDefecto)
	return GCPorDefecto
}
