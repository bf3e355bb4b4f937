// Package fallos injects failures into a participant's commands for demos
// and tests: at a configured rate drawn from a seeded generator (the seeds'
// rates), or forced by the saga input (simular_fallo,
// simular_fallo_compensacion) at a named step or service.
package fallos

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/alpespartner/sagas/eventos"
)

// Simulacion is what the saga input may ask of the participants: a forced
// failure of one step's action or of its compensation, named by step or by
// service (so "tracking" hits every tracking step).
type Simulacion struct {
	SimularFallo             string `json:"simular_fallo"`
	SimularFalloCompensacion string `json:"simular_fallo_compensacion"`
}

// LeerSimulacion reads the two fields from any saga input; an input that is
// not a JSON object asks for nothing.
func LeerSimulacion(entrada json.RawMessage) Simulacion {
	var s Simulacion
	if len(entrada) > 0 {
		_ = json.Unmarshal(entrada, &s) // a malformed input is reported by the handler
	}
	return s
}

// Inyector decides the injected failures of one service. The random ones
// come from a seeded generator, so a run can be reproduced with SAGAS_SEMILLA.
// It is safe for concurrent use.
type Inyector struct {
	servicio string
	tasa     float64
	mensaje  string
	mu       sync.Mutex
	rng      *rand.Rand
}

// NuevoInyector fails servicio's actions at rate tasa (0: never) with
// mensaje (a default names the service), drawing from a generator seeded
// with semilla.
func NuevoInyector(servicio string, tasa float64, mensaje string, semilla uint64) *Inyector {
	if mensaje == "" {
		mensaje = fmt.Sprintf("error simulado en el servicio %s", servicio)
	}
	return &Inyector{
		servicio: servicio,
		tasa:     tasa,
		mensaje:  mensaje,
		rng:      rand.New(rand.NewPCG(semilla, semilla^0x9e3779b97f4a7c15)),
	}
}

// Tasa is the rate at which actions fail.
func (i *Inyector) Tasa() float64 { return i.tasa }

// Veredicto is the injected failure of a command, by its action (eventos.Ejecutar
// or eventos.Compensar): the reply's error text, or "" when it must not fail.
func (i *Inyector) Veredicto(accion, paso string, s Simulacion) string {
	falla := i.FallaAccion
	if accion == eventos.Compensar {
		falla = i.FallaCompensacion
	}
	motivo, _ := falla(paso, s)
	return motivo
}

// nombra reports whether a simular_fallo value names this step or service.
func (i *Inyector) nombra(valor, paso string) bool {
	return valor != "" && (valor == paso || valor == i.servicio)
}

// FallaAccion says whether the action of step paso must fail, and the error
// text of the reply: forced by the input, or drawn at the configured rate.
func (i *Inyector) FallaAccion(paso string, s Simulacion) (string, bool) {
	if i.nombra(s.SimularFallo, paso) {
		return fmt.Sprintf("fallo simulado en el paso %s (simular_fallo=%s)", paso, s.SimularFallo), true
	}
	if i.tasa <= 0 {
		return "", false
	}
	i.mu.Lock()
	sorteo := i.rng.Float64()
	i.mu.Unlock()
	if sorteo < i.tasa {
		return i.mensaje, true
	}
	return "", false
}

// FallaCompensacion says whether the compensation of step paso must fail:
// only when the input asks for it, every time.
func (i *Inyector) FallaCompensacion(paso string, s Simulacion) (string, bool) {
	if i.nombra(s.SimularFalloCompensacion, paso) {
		return fmt.Sprintf("fallo simulado en la compensación del paso %s (simular_fallo_compensacion=%s)", paso, s.SimularFalloCompensacion), true
	}
	return "", false
}
