// Package bandeja holds the inbox rules of a saga participant as a pure
// decision: given a command and the inbox rows already recorded for its
// step, Decidir says what to reply, whether to record it, and whether the
// service's action or compensation must run first (then Concluir finishes the
// decision with its outcome). No I/O, no clock: the time comes in Entrada.
// The store applies a decision in the local transaction that records it, so
// the effect and the record of having done it commit together.
//
// The rules, by the command's action and the step's rows (previos):
//
//	action     previos / input                caso                     recorded  reply
//	any        the same action recorded       Reenvio                  no        the stored one, again
//	EJECUTAR   COMPENSAR recorded             AccionTardia             yes       fallo (rechazado), no effect
//	EJECUTAR   data did not decode            AccionSinDatos           yes       fallo, no effect
//	EJECUTAR   failure injected               AccionInyectada          yes       fallo, no effect
//	EJECUTAR   otherwise: run the action      Ejecucion, then
//	             it succeeded                 AccionHecha              yes       exito, its data
//	             it refused (Rechazar)        AccionRechazada          yes       fallo; its writes undone
//	COMPENSAR  failure injected               CompensacionInyectada    no        fallo
//	COMPENSAR  no EJECUTAR recorded           CompensacionAnticipada   yes       exito, nothing undone; a late action is refused
//	COMPENSAR  EJECUTAR recorded as failed    CompensacionSinEfecto    yes       exito, nothing to undo
//	COMPENSAR  otherwise: run compensation    Compensacion, then
//	             it succeeded                 CompensacionHecha        yes       exito, its data
//	             it refused (Rechazar)        CompensacionFallida      no        fallo; retried later
//
// A failed compensation is not recorded so that its retry is evaluated
// again; every other outcome is final for its (saga_id, paso, accion).
package bandeja

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/alpespartner/sagas/eventos"
)

// Results of a command, the label of sagas_participante_comandos_total.
const (
	ResultadoExito     = "exito"     // replied exito=true
	ResultadoFallo     = "fallo"     // replied exito=false (business or injected failure)
	ResultadoDuplicado = "duplicado" // a redelivery: the stored reply was sent again
	ResultadoRechazado = "rechazado" // an action that came after its compensation
)

// Registro is an inbox row: a command processed and the reply it got.
type Registro struct {
	Accion       string
	Comando      string
	Clave        string // idempotency key
	Resultado    string // ResultadoExito, ResultadoFallo or ResultadoRechazado
	Exito        bool
	Error        string
	Datos        string // reply data, JSON
	RespondidoMs int64  // time of the reply, Unix milliseconds
}

// Entrada is what the rules look at for one command.
type Entrada struct {
	SagaID  string
	Paso    string
	Accion  string // eventos.Ejecutar or eventos.Compensar
	Comando string // command name, recorded with the reply
	Clave   string // idempotency key, recorded with the reply
	// Previos are the step's inbox rows by action.
	Previos map[string]Registro
	// ErrDatos is the error decoding the command's data, if any.
	ErrDatos error
	// Fallo is the reason of a failure injected for this command (by
	// configuration or by the saga input); empty when none.
	Fallo string
	// Ahora is the time of processing, recorded as the reply's time.
	Ahora time.Time
}

// Caso names the rule that decided a command.
type Caso int

// The rules; see the package documentation.
const (
	Reenvio Caso = iota + 1
	AccionTardia
	AccionSinDatos
	AccionInyectada
	Ejecucion
	AccionHecha
	AccionRechazada
	CompensacionInyectada
	CompensacionAnticipada
	CompensacionSinEfecto
	Compensacion
	CompensacionHecha
	CompensacionFallida
)

var nombresCaso = [...]string{
	Reenvio: "reenvio", AccionTardia: "accion_tardia", AccionSinDatos: "accion_sin_datos",
	AccionInyectada: "accion_inyectada", Ejecucion: "ejecucion", AccionHecha: "accion_hecha",
	AccionRechazada: "accion_rechazada", CompensacionInyectada: "compensacion_inyectada",
	CompensacionAnticipada: "compensacion_anticipada", CompensacionSinEfecto: "compensacion_sin_efecto",
	Compensacion: "compensacion", CompensacionHecha: "compensacion_hecha", CompensacionFallida: "compensacion_fallida",
}

func (c Caso) String() string {
	if c > 0 && int(c) < len(nombresCaso) {
		return nombresCaso[c]
	}
	return fmt.Sprintf("caso(%d)", int(c))
}

// Efecto is the service function a decision needs to run before it is final.
type Efecto int

// Effects.
const (
	SinEfecto          Efecto = iota // the decision is final
	EfectoAccion                     // run the operation's action, then Concluir
	EfectoCompensacion               // run the operation's compensation, then Concluir
)

// Decision is what to do with one command.
type Decision struct {
	Caso Caso
	// Efecto, when not SinEfecto, must run in the local transaction and its
	// outcome be passed to Concluir; Registro is then not yet the reply.
	Efecto Efecto
	// Registro is the reply: the stored one for a Reenvio, else the new one.
	Registro Registro
	// Registrar says whether Registro is recorded in the inbox in the same
	// transaction as the effect.
	Registrar bool
	// Inyectado says that an injected failure decided the reply.
	Inyectado bool
}

// Resultado is the decision's result label: ResultadoDuplicado for a
// Reenvio, else the reply's own result.
func (d Decision) Resultado() string {
	if d.Caso == Reenvio {
		return ResultadoDuplicado
	}
	return d.Registro.Resultado
}

// Decidir applies the inbox rules to one command.
func Decidir(e Entrada) Decision {
	if r, ok := e.Previos[e.Accion]; ok {
		return Decision{Caso: Reenvio, Registro: r}
	}
	if e.Accion == eventos.Ejecutar {
		return decidirAccion(e)
	}
	return decidirCompensacion(e)
}

func decidirAccion(e Entrada) Decision {
	fallo := func(c Caso, resultado, motivo string) Decision {
		r := e.registro(resultado, false, "{}")
		r.Error = motivo
		return Decision{Caso: c, Registro: r, Registrar: true, Inyectado: c == AccionInyectada}
	}
	switch _, compensada := e.Previos[eventos.Compensar]; {
	case compensada:
		return fallo(AccionTardia, ResultadoRechazado,
			fmt.Sprintf("el paso %s de la saga %s ya fue compensado: la acción llegó tarde y se rechaza sin efecto", e.Paso, e.SagaID))
	case e.ErrDatos != nil:
		return fallo(AccionSinDatos, ResultadoFallo, fmt.Sprintf("datos del comando no válidos: %v", e.ErrDatos))
	case e.Fallo != "":
		return fallo(AccionInyectada, ResultadoFallo, e.Fallo)
	}
	return Decision{Caso: Ejecucion, Efecto: EfectoAccion, Registro: e.registro("", false, "")}
}

// Reply data of a compensation with nothing to undo.
var (
	datosAnticipada = datosSinDeshacer("la acción no se ejecutó: nada que deshacer; si llega después, se rechazará")
	datosSinEfecto  = datosSinDeshacer("la acción falló sin dejar efecto: nada que deshacer")
)

func datosSinDeshacer(motivo string) string {
	b, err := json.Marshal(map[string]any{"deshecho": false, "motivo": motivo})
	if err != nil {
		panic(err) // a constant map of strings always marshals
	}
	return string(b)
}

func decidirCompensacion(e Entrada) Decision {
	if e.Fallo != "" {
		r := e.registro(ResultadoFallo, false, "")
		r.Error = e.Fallo
		return Decision{Caso: CompensacionInyectada, Registro: r, Inyectado: true}
	}
	accion, ejecutada := e.Previos[eventos.Ejecutar]
	switch {
	case !ejecutada:
		return Decision{Caso: CompensacionAnticipada, Registro: e.registro(ResultadoExito, true, datosAnticipada), Registrar: true}
	case !accion.Exito:
		return Decision{Caso: CompensacionSinEfecto, Registro: e.registro(ResultadoExito, true, datosSinEfecto), Registrar: true}
	}
	return Decision{Caso: Compensacion, Efecto: EfectoCompensacion, Registro: e.registro("", false, "")}
}

func (e Entrada) registro(resultado string, exito bool, datos string) Registro {
	return Registro{
		Accion: e.Accion, Comando: e.Comando, Clave: e.Clave, Resultado: resultado,
		Exito: exito, Datos: datos, RespondidoMs: eventos.Millis(e.Ahora),
	}
}

// Efectuado is the outcome of the effect a decision asked for.
type Efectuado struct {
	// Datos is the effect's reply data (JSON) when it succeeded.
	Datos string
	// Rechazado says the service refused for a business reason (Rechazar),
	// given in Motivo.
	Rechazado bool
	Motivo    string
}

// Concluir makes final a decision whose Efecto ran with outcome r. A refused
// action is recorded as a final failure (the caller must have undone its
// writes); a refused compensation is replied but not recorded. A decision
// without Efecto is returned as is.
func Concluir(d Decision, r Efectuado) Decision {
	if d.Efecto == SinEfecto {
		return d
	}
	out := Decision{Registro: d.Registro}
	switch {
	case !r.Rechazado:
		out.Caso, out.Registrar = AccionHecha, true
		if d.Efecto == EfectoCompensacion {
			out.Caso = CompensacionHecha
		}
		out.Registro.Resultado, out.Registro.Exito, out.Registro.Datos = ResultadoExito, true, r.Datos
	case d.Efecto == EfectoAccion:
		out.Caso, out.Registrar = AccionRechazada, true
		out.Registro.Resultado, out.Registro.Error, out.Registro.Datos = ResultadoFallo, r.Motivo, "{}"
	default:
		out.Caso = CompensacionFallida
		out.Registro.Resultado, out.Registro.Error = ResultadoFallo, r.Motivo
	}
	return out
}
