// Package eventos is the message contract shared by the coordinator and the
// participants: the envelope, every command, reply and saga outcome, their
// versioned type names, topic names, and Avro encode/decode.
//
// It does no I/O and imports nothing of this module: the Avro schema text is
// passed in (from package esquemas) when a Codec is built.
package eventos

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Envelope constants (CloudEvents-like attributes).
const (
	SpecVersion     = "1.0"
	ContentTypeJSON = "application/json"
	prefijoTipo     = "alpespartner.sagas."
)

// Acciones of a command.
const (
	Ejecutar  = "EJECUTAR"
	Compensar = "COMPENSAR"
)

// Outcome event names.
const (
	SagaCompletada          = "SagaCompletada"
	SagaCompensada          = "SagaCompensada"
	SagaCompensacionFallida = "SagaCompensacionFallida"
	// SagaCancelada: an operator cancelled the saga and every started step
	// was compensated (estado CANCELADA, error "cancelada por el operador").
	SagaCancelada = "SagaCancelada"
)

// Message property keys set on every message we publish. The key of every
// message is the saga_id.
const (
	PropSagaID      = "saga_id"
	PropPaso        = "paso"
	PropIntento     = "intento"
	PropTipo        = "type"
	PropTraceparent = "traceparent"
)

// Tipo returns the versioned type name of a message, e.g.
// Tipo("NotificarMarca") == "alpespartner.sagas.NotificarMarca.v1".
func Tipo(nombre string) string { return prefijoTipo + nombre + ".v1" }

// NombreDeTipo is the inverse of Tipo: it strips prefix and version.
func NombreDeTipo(tipo string) string {
	s := strings.TrimPrefix(tipo, prefijoTipo)
	if i := strings.LastIndex(s, ".v"); i >= 0 {
		s = s[:i]
	}
	return s
}

// Millis converts a time to the envelope's epoch milliseconds.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// Comando is a coordinator → participant message (schema ComandoSaga).
type Comando struct {
	ID                string `avro:"id" json:"id"`
	Time              int64  `avro:"time" json:"time"`
	SpecVersion       string `avro:"specversion" json:"specversion"`
	Type              string `avro:"type" json:"type"`
	DataContentType   string `avro:"datacontenttype" json:"datacontenttype"`
	ServiceName       string `avro:"service_name" json:"service_name"`
	SagaID            string `avro:"saga_id" json:"saga_id"`
	TipoSaga          string `avro:"tipo_saga" json:"tipo_saga"`
	Paso              string `avro:"paso" json:"paso"`
	Accion            string `avro:"accion" json:"accion"`
	Intento           int    `avro:"intento" json:"intento"`
	ClaveIdempotencia string `avro:"clave_idempotencia" json:"clave_idempotencia"`
	Datos             string `avro:"datos" json:"datos"`
}

// Nombre is the command name without prefix and version (NotificarMarca).
func (c *Comando) Nombre() string { return NombreDeTipo(c.Type) }

// Validar checks what a participant needs to act on a command.
func (c *Comando) Validar() error {
	var faltan []string
	for k, v := range map[string]string{"id": c.ID, "saga_id": c.SagaID, "paso": c.Paso, "type": c.Type, "clave_idempotencia": c.ClaveIdempotencia} {
		if v == "" {
			faltan = append(faltan, k)
		}
	}
	if c.Accion != Ejecutar && c.Accion != Compensar {
		faltan = append(faltan, "accion")
	}
	if len(faltan) > 0 {
		return fmt.Errorf("comando inválido: faltan o son inválidos %s", strings.Join(sorted(faltan), ", "))
	}
	return nil
}

// Respuesta is a participant → coordinator reply (schema RespuestaSaga).
type Respuesta struct {
	ID              string  `avro:"id" json:"id"`
	Time            int64   `avro:"time" json:"time"`
	SpecVersion     string  `avro:"specversion" json:"specversion"`
	Type            string  `avro:"type" json:"type"`
	DataContentType string  `avro:"datacontenttype" json:"datacontenttype"`
	ServiceName     string  `avro:"service_name" json:"service_name"`
	SagaID          string  `avro:"saga_id" json:"saga_id"`
	Paso            string  `avro:"paso" json:"paso"`
	Accion          string  `avro:"accion" json:"accion"`
	Intento         int     `avro:"intento" json:"intento"`
	Exito           bool    `avro:"exito" json:"exito"`
	Error           *string `avro:"error" json:"error,omitempty"`
	Datos           string  `avro:"datos" json:"datos"`
}

// Validar checks what the coordinator needs to apply a reply.
func (r *Respuesta) Validar() error {
	if r.ID == "" || r.SagaID == "" || r.Paso == "" || (r.Accion != Ejecutar && r.Accion != Compensar) {
		return fmt.Errorf("respuesta inválida: id, saga_id, paso y accion son obligatorios (id=%q saga_id=%q paso=%q accion=%q)", r.ID, r.SagaID, r.Paso, r.Accion)
	}
	return nil
}

// ResponderA builds the reply to c. Its id is derived from the command's
// idempotency key, attempt and outcome, so a reply re-sent for a redelivered
// command is byte-for-byte the same message, while the reply to a retry (a new
// attempt) is a new message the coordinator will not drop as a duplicate.
func ResponderA(c *Comando, servicio string, exito bool, errMsg string, datos json.RawMessage, ahora time.Time) Respuesta {
	r := Respuesta{
		ID: fmt.Sprintf("%s:%d:%s", c.ClaveIdempotencia, c.Intento, resultado(exito)), Time: Millis(ahora), SpecVersion: SpecVersion,
		Type: Tipo(c.Nombre() + "Respondido"), DataContentType: ContentTypeJSON, ServiceName: servicio,
		SagaID: c.SagaID, Paso: c.Paso, Accion: c.Accion, Intento: c.Intento, Exito: exito, Datos: string(datos),
	}
	if r.Datos == "" {
		r.Datos = "{}"
	}
	if errMsg != "" {
		r.Error = &errMsg
	}
	return r
}

// Evento is a saga outcome for choreographed consumers (schema EventoSaga).
type Evento struct {
	ID              string   `avro:"id" json:"id"`
	Time            int64    `avro:"time" json:"time"`
	SpecVersion     string   `avro:"specversion" json:"specversion"`
	Type            string   `avro:"type" json:"type"`
	DataContentType string   `avro:"datacontenttype" json:"datacontenttype"`
	ServiceName     string   `avro:"service_name" json:"service_name"`
	SagaID          string   `avro:"saga_id" json:"saga_id"`
	TipoSaga        string   `avro:"tipo_saga" json:"tipo_saga"`
	Estado          string   `avro:"estado" json:"estado"`
	CampaniaID      *string  `avro:"campania_id" json:"campania_id,omitempty"`
	PasosEjecutados []string `avro:"pasos_ejecutados" json:"pasos_ejecutados"`
	PasoFallido     *string  `avro:"paso_fallido" json:"paso_fallido,omitempty"`
	Compensaciones  []string `avro:"compensaciones" json:"compensaciones"`
	Error           *string  `avro:"error" json:"error,omitempty"`
	DuracionMs      int64    `avro:"duracion_ms" json:"duracion_ms"`
}

// Opcional returns nil for "" and &s otherwise (Avro ["null","string"]).
func Opcional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Valor is the inverse of Opcional.
func Valor(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func sorted(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func resultado(exito bool) string {
	if exito {
		return "ok"
	}
	return "fallo"
}
