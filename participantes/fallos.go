package participantes

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
)

// simulacion is what the saga input may ask of the participants: a forced
// failure of one step's action or of its compensation, named by step or by
// service (so "tracking" hits every tracking step).
type simulacion struct {
	SimularFallo             string `json:"simular_fallo"`
	SimularFalloCompensacion string `json:"simular_fallo_compensacion"`
}

// leerSimulacion reads the two fields from any saga input; an input that is
// not a JSON object asks for nothing.
func leerSimulacion(entrada json.RawMessage) simulacion {
	var s simulacion
	if len(entrada) > 0 {
		_ = json.Unmarshal(entrada, &s) // a malformed input is reported by the handler
	}
	return s
}

// inyector decides the injected failures of one service. The random ones
// come from a seeded generator, so a run can be reproduced with SAGAS_SEMILLA.
type inyector struct {
	servicio string
	tasa     float64
	mensaje  string
	mu       sync.Mutex
	rng      *rand.Rand
}

func nuevoInyector(servicio string, semilla FalloSemilla, cfg ConfigFallos) *inyector {
	msg := semilla.Mensaje
	if msg == "" {
		msg = fmt.Sprintf("error simulado en el servicio %s", servicio)
	}
	return &inyector{
		servicio: servicio,
		tasa:     cfg.TasaEfectiva(semilla.Tasa),
		mensaje:  msg,
		rng:      rand.New(rand.NewPCG(cfg.Semilla, cfg.Semilla^0x9e3779b97f4a7c15)),
	}
}

// nombra reports whether a simular_fallo value names this step or service.
func (i *inyector) nombra(valor, paso string) bool {
	return valor != "" && (valor == paso || valor == i.servicio)
}

// fallaAccion says whether the action of step paso must fail, and the error
// text of the reply: forced by the input, or drawn at the configured rate.
func (i *inyector) fallaAccion(paso string, s simulacion) (string, bool) {
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

// fallaCompensacion says whether the compensation of step paso must fail:
// only when the input asks for it, every time.
func (i *inyector) fallaCompensacion(paso string, s simulacion) (string, bool) {
	if i.nombra(s.SimularFalloCompensacion, paso) {
		return fmt.Sprintf("fallo simulado en la compensación del paso %s (simular_fallo_compensacion=%s)", paso, s.SimularFalloCompensacion), true
	}
	return "", false
}
