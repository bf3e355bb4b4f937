package bandeja

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/eventos"
)

var ahora = time.UnixMilli(1_800_000_000_123)

func entrada(accion string, previos ...Registro) Entrada {
	e := Entrada{SagaID: "s1", Paso: "paso1", Accion: accion, Comando: "Hacer", Clave: "s1:paso1:" + accion, Ahora: ahora}
	if accion == eventos.Compensar {
		e.Comando = "Deshacer"
	}
	if len(previos) > 0 {
		e.Previos = map[string]Registro{}
		for _, r := range previos {
			e.Previos[r.Accion] = r
		}
	}
	return e
}

// Rows recorded earlier, at another time.
var (
	accionHecha     = Registro{Accion: eventos.Ejecutar, Comando: "Hacer", Clave: "s1:paso1:EJECUTAR", Resultado: ResultadoExito, Exito: true, Datos: `{"hecho":true}`, RespondidoMs: 1}
	accionFallida   = Registro{Accion: eventos.Ejecutar, Comando: "Hacer", Clave: "s1:paso1:EJECUTAR", Resultado: ResultadoFallo, Error: "no", Datos: "{}", RespondidoMs: 2}
	accionRechazada = Registro{Accion: eventos.Ejecutar, Comando: "Hacer", Clave: "s1:paso1:EJECUTAR", Resultado: ResultadoRechazado, Error: "tarde", Datos: "{}", RespondidoMs: 3}
	compensada      = Registro{Accion: eventos.Compensar, Comando: "Deshacer", Clave: "s1:paso1:COMPENSAR", Resultado: ResultadoExito, Exito: true, Datos: `{"deshechos":1}`, RespondidoMs: 4}
)

// nuevo is the row a decision at ahora records.
func nuevo(accion, resultado string, exito bool, errMsg, datos string) Registro {
	r := Registro{Accion: accion, Comando: "Hacer", Clave: "s1:paso1:" + accion, Resultado: resultado, Exito: exito, Error: errMsg, Datos: datos, RespondidoMs: ahora.UnixMilli()}
	if accion == eventos.Compensar {
		r.Comando = "Deshacer"
	}
	return r
}

const (
	motivoTardia = "el paso paso1 de la saga s1 ya fue compensado: la acción llegó tarde y se rechaza sin efecto"
	sinAccion    = `{"deshecho":false,"motivo":"la acción no se ejecutó: nada que deshacer; si llega después, se rechazará"}`
	sinEfecto    = `{"deshecho":false,"motivo":"la acción falló sin dejar efecto: nada que deshacer"}`
)

func TestDecidir(t *testing.T) {
	conDatosMalos := func(e Entrada) Entrada { e.ErrDatos = errors.New("json roto"); return e }
	conFallo := func(e Entrada) Entrada { e.Fallo = "error simulado"; return e }
	for _, c := range []struct {
		nombre string
		e      Entrada
		want   Decision
	}{
		// Redeliveries: whatever was recorded is replayed, nothing else happens.
		{"la reentrega de una acción hecha reenvía su respuesta guardada",
			entrada(eventos.Ejecutar, accionHecha), Decision{Caso: Reenvio, Registro: accionHecha}},
		{"la reentrega de una acción fallida reenvía su fallo guardado",
			entrada(eventos.Ejecutar, accionFallida), Decision{Caso: Reenvio, Registro: accionFallida}},
		{"la reentrega de una acción rechazada por tardía reenvía el rechazo",
			entrada(eventos.Ejecutar, accionRechazada, compensada), Decision{Caso: Reenvio, Registro: accionRechazada}},
		{"la reentrega de una compensación reenvía su respuesta guardada",
			entrada(eventos.Compensar, accionHecha, compensada), Decision{Caso: Reenvio, Registro: compensada}},
		{"la reentrega de una acción ya hecha no mira los datos ni la inyección",
			conFallo(conDatosMalos(entrada(eventos.Ejecutar, accionHecha))), Decision{Caso: Reenvio, Registro: accionHecha}},
		{"la reentrega de una compensación registrada no vuelve a fallar por inyección",
			conFallo(entrada(eventos.Compensar, compensada)), Decision{Caso: Reenvio, Registro: compensada}},

		// Actions.
		{"una acción nueva ejecuta su efecto",
			entrada(eventos.Ejecutar), Decision{Caso: Ejecucion, Efecto: EfectoAccion, Registro: nuevo(eventos.Ejecutar, "", false, "", "")}},
		{"una acción tras su compensación se rechaza sin efecto y se registra",
			entrada(eventos.Ejecutar, compensada),
			Decision{Caso: AccionTardia, Registrar: true, Registro: nuevo(eventos.Ejecutar, ResultadoRechazado, false, motivoTardia, "{}")}},
		{"una acción tardía se rechaza aunque sus datos no valgan o se inyecte un fallo",
			conFallo(conDatosMalos(entrada(eventos.Ejecutar, compensada))),
			Decision{Caso: AccionTardia, Registrar: true, Registro: nuevo(eventos.Ejecutar, ResultadoRechazado, false, motivoTardia, "{}")}},
		{"una acción con datos que no decodifican falla sin efecto y se registra",
			conDatosMalos(entrada(eventos.Ejecutar)),
			Decision{Caso: AccionSinDatos, Registrar: true, Registro: nuevo(eventos.Ejecutar, ResultadoFallo, false, "datos del comando no válidos: json roto", "{}")}},
		{"una acción con datos malos falla por los datos antes que por la inyección",
			conFallo(conDatosMalos(entrada(eventos.Ejecutar))),
			Decision{Caso: AccionSinDatos, Registrar: true, Registro: nuevo(eventos.Ejecutar, ResultadoFallo, false, "datos del comando no válidos: json roto", "{}")}},
		{"un fallo inyectado en la acción falla sin efecto y se registra como definitivo",
			conFallo(entrada(eventos.Ejecutar)),
			Decision{Caso: AccionInyectada, Registrar: true, Inyectado: true, Registro: nuevo(eventos.Ejecutar, ResultadoFallo, false, "error simulado", "{}")}},

		// Compensations.
		{"una compensación de una acción hecha ejecuta la compensación",
			entrada(eventos.Compensar, accionHecha),
			Decision{Caso: Compensacion, Efecto: EfectoCompensacion, Registro: nuevo(eventos.Compensar, "", false, "", "")}},
		{"una compensación antes de su acción se responde hecha sin nada que deshacer y se registra",
			entrada(eventos.Compensar),
			Decision{Caso: CompensacionAnticipada, Registrar: true, Registro: nuevo(eventos.Compensar, ResultadoExito, true, "", sinAccion)}},
		{"una compensación tras una acción fallida no tiene nada que deshacer y se registra",
			entrada(eventos.Compensar, accionFallida),
			Decision{Caso: CompensacionSinEfecto, Registrar: true, Registro: nuevo(eventos.Compensar, ResultadoExito, true, "", sinEfecto)}},
		{"una compensación tras una acción rechazada por tardía no tiene nada que deshacer",
			entrada(eventos.Compensar, accionRechazada),
			Decision{Caso: CompensacionSinEfecto, Registrar: true, Registro: nuevo(eventos.Compensar, ResultadoExito, true, "", sinEfecto)}},
		{"un fallo inyectado en la compensación se responde y no se registra",
			conFallo(entrada(eventos.Compensar, accionHecha)),
			Decision{Caso: CompensacionInyectada, Inyectado: true, Registro: nuevo(eventos.Compensar, ResultadoFallo, false, "error simulado", "")}},
		{"un fallo inyectado en la compensación falla aunque la acción no llegara",
			conFallo(entrada(eventos.Compensar)),
			Decision{Caso: CompensacionInyectada, Inyectado: true, Registro: nuevo(eventos.Compensar, ResultadoFallo, false, "error simulado", "")}},
		{"una compensación ignora datos que no decodifican",
			conDatosMalos(entrada(eventos.Compensar, accionHecha)),
			Decision{Caso: Compensacion, Efecto: EfectoCompensacion, Registro: nuevo(eventos.Compensar, "", false, "", "")}},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			if got := Decidir(c.e); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Decidir:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestConcluir(t *testing.T) {
	ejecucion := Decidir(entrada(eventos.Ejecutar))
	compensacion := Decidir(entrada(eventos.Compensar, accionHecha))
	final := Decidir(entrada(eventos.Compensar))
	for _, c := range []struct {
		nombre string
		d      Decision
		r      Efectuado
		want   Decision
	}{
		{"una acción que termina bien se registra con sus datos", ejecucion, Efectuado{Datos: `{"hecho":true}`},
			Decision{Caso: AccionHecha, Registrar: true, Registro: nuevo(eventos.Ejecutar, ResultadoExito, true, "", `{"hecho":true}`)}},
		{"el fallo de negocio de una acción no deja efecto y se registra como fallo definitivo", ejecucion, Efectuado{Rechazado: true, Motivo: "sin saldo", Datos: `{"ignorado":1}`},
			Decision{Caso: AccionRechazada, Registrar: true, Registro: nuevo(eventos.Ejecutar, ResultadoFallo, false, "sin saldo", "{}")}},
		{"una compensación que termina bien se registra con sus datos", compensacion, Efectuado{Datos: `{"deshechos":1}`},
			Decision{Caso: CompensacionHecha, Registrar: true, Registro: nuevo(eventos.Compensar, ResultadoExito, true, "", `{"deshechos":1}`)}},
		{"una compensación que falla se responde y no se registra, para reevaluar su reintento", compensacion, Efectuado{Rechazado: true, Motivo: "bloqueado"},
			Decision{Caso: CompensacionFallida, Registro: nuevo(eventos.Compensar, ResultadoFallo, false, "bloqueado", "")}},
		{"una decisión sin efecto no cambia", final, Efectuado{Rechazado: true, Motivo: "x"}, final},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			if got := Concluir(c.d, c.r); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Concluir:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// bandejaFalsa records what the decisions say to record, as the store does.
type bandejaFalsa map[string]Registro

// procesar decides accion against the rows so far, runs the effect with
// outcome r when asked, records, and returns the final decision.
func (b bandejaFalsa) procesar(accion string, r Efectuado) Decision {
	e := entrada(accion)
	e.Previos = b
	d := Concluir(Decidir(e), r)
	if d.Registrar {
		b[d.Registro.Accion] = d.Registro
	}
	return d
}

func casos(ds ...Decision) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Caso.String()+"/"+d.Resultado())
	}
	return strings.Join(s, " ")
}

func TestSecuenciasDeComandosDeUnPaso(t *testing.T) {
	ok := Efectuado{Datos: `{"hecho":true}`}
	rechazo := Efectuado{Rechazado: true, Motivo: "no"}
	for _, c := range []struct {
		nombre string
		pasos  func(b bandejaFalsa) []Decision
		want   string
	}{
		{"compensación antes de la acción, luego la acción tardía y las reentregas de ambas",
			func(b bandejaFalsa) []Decision {
				return []Decision{b.procesar(eventos.Compensar, ok), b.procesar(eventos.Ejecutar, ok),
					b.procesar(eventos.Ejecutar, ok), b.procesar(eventos.Compensar, ok)}
			},
			"compensacion_anticipada/exito accion_tardia/rechazado reenvio/duplicado reenvio/duplicado"},
		{"fallo de negocio de la acción y luego su compensación, que no tiene nada que deshacer",
			func(b bandejaFalsa) []Decision {
				return []Decision{b.procesar(eventos.Ejecutar, rechazo), b.procesar(eventos.Ejecutar, ok), b.procesar(eventos.Compensar, ok)}
			},
			"accion_rechazada/fallo reenvio/duplicado compensacion_sin_efecto/exito"},
		{"acción hecha, compensación que falla y su reintento que la deshace",
			func(b bandejaFalsa) []Decision {
				return []Decision{b.procesar(eventos.Ejecutar, ok), b.procesar(eventos.Compensar, rechazo),
					b.procesar(eventos.Compensar, ok), b.procesar(eventos.Compensar, rechazo)}
			},
			"accion_hecha/exito compensacion_fallida/fallo compensacion_hecha/exito reenvio/duplicado"},
	} {
		t.Run(c.nombre, func(t *testing.T) {
			if got := casos(c.pasos(bandejaFalsa{})...); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestCasoSeNombra(t *testing.T) {
	for c := Reenvio; c <= CompensacionFallida; c++ {
		if s := c.String(); s == "" || strings.HasPrefix(s, "caso(") {
			t.Errorf("caso %d has no name", int(c))
		}
	}
	if Caso(0).String() != "caso(0)" {
		t.Error("the zero Caso must not look like a rule")
	}
}
