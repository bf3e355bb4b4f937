package motor

import (
	"fmt"
	"unicode/utf8"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
)

// largoErrorMaximo bounds the error text of a reply kept with its step (the
// columns are TEXT: 64 KiB on MySQL).
const largoErrorMaximo = 4 << 10

// sobrecargaComando bounds what a command's datos add to the input and the
// outputs it carries: {"entrada":…,"previos":{"<paso>":…,…}}.
const sobrecargaComando = 32

// acotar keeps a reply within the saga's size limits before the machine sees
// it. A successful action whose output is larger than eventos.MaximoSalida,
// or would take the next command past eventos.MaximoCarga, becomes a failure
// of its step, so the saga compensates instead of sending a command no
// participant can receive. Any other oversized output is dropped (a
// compensation's output is only kept for the record), and an error text is
// cut to largoErrorMaximo.
func acotar(s saga.Saga, r saga.Respuesta) saga.Respuesta {
	r.Error = recortar(r.Error, largoErrorMaximo)
	if len(r.Datos) == 0 {
		return r
	}
	var motivo string
	switch carga := cargaCon(s, r.Paso, len(r.Datos)); {
	case len(r.Datos) > eventos.MaximoSalida:
		motivo = fmt.Sprintf("la salida del paso %s ocupa %d bytes, más que el límite de %d bytes por paso (eventos.MaximoSalida)",
			r.Paso, len(r.Datos), eventos.MaximoSalida)
	case carga > eventos.MaximoCarga:
		motivo = fmt.Sprintf("con la salida del paso %s (%d bytes) la saga llevaría %d bytes, más que el límite de %d bytes (eventos.MaximoCarga)",
			r.Paso, len(r.Datos), carga, eventos.MaximoCarga)
	default:
		return r
	}
	r.Datos = nil
	if r.Accion == saga.Ejecutar && r.Exito {
		r.Exito, r.Error = false, motivo
	}
	return r
}

// cargaCon is an upper bound of the datos of the largest command saga s can
// send once step paso's output has n bytes: its input plus every output kept
// so far (paso's replaced) plus the wrapping.
func cargaCon(s saga.Saga, paso string, n int) int {
	total := len(s.Datos) + sobrecargaComando + len(paso) + 4 + n
	for _, p := range s.Pasos {
		if p.Nombre != paso && len(p.Salida) > 0 {
			total += len(p.Nombre) + 4 + len(p.Salida)
		}
	}
	return total
}

// recortar cuts s to at most n bytes on a rune boundary, saying so.
func recortar(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const marca = "… (recortado)"
	corte := n - len(marca)
	for corte > 0 && !utf8.RuneStart(s[corte]) {
		corte--
	}
	return s[:corte] + marca
}
