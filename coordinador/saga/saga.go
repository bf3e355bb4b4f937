// Package saga is the pure core of the coordinator: saga definitions as data
// and the state machine that advances a saga from its replies and deadlines.
//
// It does no I/O and reads no clock: every input carries the time, every output
// is a new Saga value plus the commands to send. The store persists both in one
// transaction (the outbox), so the machine can be table-tested exhaustively.
//
//	stateDiagram-v2
//	    [*] --> INICIADA: Nueva (command of step 1)
//	    INICIADA --> EN_PROGRESO: step 1 OK
//	    INICIADA --> COMPENSANDO: step 1 failed / timed out after its retries
//	    EN_PROGRESO --> EN_PROGRESO: step OK, next step
//	    EN_PROGRESO --> COMPLETADA: last step OK
//	    EN_PROGRESO --> COMPENSANDO: step failed / timed out after its retries
//	    COMPENSANDO --> COMPENSANDO: compensation OK, previous step / failed, retry with backoff
//	    COMPENSANDO --> COMPENSADA: first step compensated
//	    COMPENSANDO --> COMPENSACION_FALLIDA: compensation retries exhausted
//	    COMPENSACION_FALLIDA --> COMPENSANDO: operator retry (Reintentar)
//	    COMPLETADA --> [*]
//	    COMPENSADA --> [*]
package saga

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Estado of a saga.
type Estado string

// Saga states (the seeds' names).
const (
	Iniciada            Estado = "INICIADA"
	EnProgreso          Estado = "EN_PROGRESO"
	Completada          Estado = "COMPLETADA"
	Compensando         Estado = "COMPENSANDO"
	Compensada          Estado = "COMPENSADA"
	CompensacionFallida Estado = "COMPENSACION_FALLIDA"
)

// Terminal reports whether no reply or deadline can change the saga any more
// (COMPENSACION_FALLIDA leaves it only through an operator's Reintentar).
func (e Estado) Terminal() bool {
	return e == Completada || e == Compensada || e == CompensacionFallida
}

// EstadoPaso is the state of one step.
type EstadoPaso string

// Step states (the seeds' names).
const (
	PasoPendiente   EstadoPaso = "PENDIENTE"
	PasoEjecutando  EstadoPaso = "EJECUTANDO"
	PasoCompletado  EstadoPaso = "COMPLETADO"
	PasoFallido     EstadoPaso = "FALLIDO"
	PasoCompensando EstadoPaso = "COMPENSANDO"
	PasoCompensado  EstadoPaso = "COMPENSADO"
)

// Accion says whether a command runs a step or undoes it.
type Accion string

// Actions.
const (
	Ejecutar  Accion = "EJECUTAR"
	Compensar Accion = "COMPENSAR"
)

// Errors of the state machine.
var (
	ErrTipoDesconocido = errors.New("tipo de saga desconocido")
	ErrNoReintentable  = errors.New("la saga no está en COMPENSACION_FALLIDA")
)

// EstadoDePaso is the timeline entry of one step: its action and its
// compensation.
type EstadoDePaso struct {
	Nombre   string     `json:"nombre"`
	Servicio string     `json:"servicio"`
	Estado   EstadoPaso `json:"estado"`
	Intento  int        `json:"intento"` // attempts of the action so far
	Inicio   time.Time  `json:"inicio,omitzero"`
	Fin      time.Time  `json:"fin,omitzero"`
	// Entrada is the data sent with the action's command.
	Entrada json.RawMessage `json:"entrada,omitempty"`
	// Salida is the participant's reply data of the action.
	Salida json.RawMessage `json:"salida,omitempty"`
	Error  string          `json:"error,omitempty"`

	IntentoCompensacion int             `json:"intento_compensacion"`
	InicioCompensacion  time.Time       `json:"inicio_compensacion,omitzero"`
	FinCompensacion     time.Time       `json:"fin_compensacion,omitzero"`
	SalidaCompensacion  json.RawMessage `json:"salida_compensacion,omitempty"`
	ErrorCompensacion   string          `json:"error_compensacion,omitempty"`
}

// Saga is the whole state of one saga instance. It is a value: the machine
// returns a changed copy and leaves its input alone.
type Saga struct {
	ID                string          `json:"saga_id"`
	Tipo              string          `json:"tipo"`
	VersionDefinicion int             `json:"version_definicion"`
	Estado            Estado          `json:"estado"`
	CampaniaID        string          `json:"campania_id,omitempty"`
	UsuarioID         string          `json:"usuario_id,omitempty"`
	Datos             json.RawMessage `json:"datos,omitempty"` // the saga's input
	Pasos             []EstadoDePaso  `json:"pasos"`
	// Actual is the index of the step being executed or compensated.
	Actual int `json:"actual"`
	// Plazo is the next deadline (zero when none): the reply deadline of the
	// outstanding command, or the end of a backoff wait when EnEspera is set.
	Plazo          time.Time `json:"plazo,omitzero"`
	EnEspera       bool      `json:"en_espera,omitempty"`
	PasoFallido    string    `json:"paso_fallido,omitempty"`
	Compensaciones []string  `json:"compensaciones"`
	Error          string    `json:"error,omitempty"`
	Inicio         time.Time `json:"inicio"`
	Fin            time.Time `json:"fin,omitzero"`
	// Version counts the saga's persisted transitions; the store uses it for
	// optimistic concurrency.
	Version int64 `json:"version"`
}

// Clone returns a deep copy, so a transition never aliases its input.
func (s Saga) Clone() Saga {
	s.Pasos = slices.Clone(s.Pasos)
	s.Compensaciones = slices.Clone(s.Compensaciones)
	return s
}

// PasosEjecutados lists, in order, the steps whose action completed.
func (s *Saga) PasosEjecutados() []string {
	out := []string{}
	for _, p := range s.Pasos {
		// A compensated step whose action had succeeded still counts as executed;
		// the failed step carries its error.
		if p.Estado == PasoCompletado || (p.Estado == PasoCompensando || p.Estado == PasoCompensado) && p.Error == "" {
			out = append(out, p.Nombre)
		}
	}
	return out
}

// Comando is a message the coordinator must send to a participant.
type Comando struct {
	SagaID   string `json:"saga_id"`
	Tipo     string `json:"tipo"` // saga tipo
	Paso     string `json:"paso"`
	Servicio string `json:"servicio"`
	Nombre   string `json:"nombre"` // command name, e.g. NotificarMarca
	Accion   Accion `json:"accion"`
	Intento  int    `json:"intento"`
	// Clave is the idempotency key: the same for every attempt of one action.
	Clave string          `json:"clave"`
	Datos json.RawMessage `json:"datos"`
}

// Respuesta is a participant's reply to a command.
type Respuesta struct {
	Paso    string
	Accion  Accion
	Intento int
	Exito   bool
	Error   string
	Datos   json.RawMessage
}

// Transicion is the result of feeding one input to the machine.
type Transicion struct {
	Saga     Saga
	Comandos []Comando
	// Cambio is false when the input was ignored (duplicate, late, unknown or
	// for a terminal saga); then nothing must be written but the inbox entry.
	Cambio bool
	// Terminada is true when this transition made the saga terminal.
	Terminada bool
	// Motivo says in words what happened, for logs.
	Motivo string
}

// Clave is the idempotency key of one action of one step of one saga.
func Clave(sagaID, paso string, a Accion) string { return sagaID + ":" + paso + ":" + string(a) }

// Nueva starts a saga: the first step is sent and its deadline set.
func Nueva(d *Definicion, id string, datos json.RawMessage, ahora time.Time) Transicion {
	s := Saga{
		ID: id, Tipo: d.Tipo, VersionDefinicion: d.Version, Estado: Iniciada,
		Datos: datos, Inicio: ahora, Compensaciones: []string{},
	}
	for _, p := range d.Pasos {
		s.Pasos = append(s.Pasos, EstadoDePaso{Nombre: p.Nombre, Servicio: p.Servicio, Estado: PasoPendiente})
	}
	t := Transicion{Saga: s, Cambio: true, Motivo: "saga iniciada"}
	t.ejecutar(d, 0, ahora)
	return t
}

// Aplicar feeds a participant's reply to the machine.
func Aplicar(d *Definicion, s Saga, r Respuesta, ahora time.Time) Transicion {
	t := Transicion{Saga: s.Clone()}
	s2 := &t.Saga
	i := d.Indice(r.Paso)
	// A compensation that succeeded after the coordinator gave up on it (its
	// reply was late) resumes the saga: nothing is left to undo there, so an
	// operator need not be called.
	tardia := s2.Estado == CompensacionFallida && r.Accion == Compensar && r.Exito && i == s2.Actual
	if s2.Estado.Terminal() && !tardia {
		t.Motivo = "respuesta a saga terminada: ignorada"
		return t
	}
	if tardia {
		s2.Estado, s2.Fin = Compensando, time.Time{}
	}
	if i < 0 || i != s2.Actual {
		t.Motivo = fmt.Sprintf("respuesta de %s/%s fuera de turno: ignorada", r.Paso, r.Accion)
		return t
	}
	p := &s2.Pasos[i]
	switch {
	case r.Accion == Ejecutar && p.Estado == PasoEjecutando:
		if r.Exito {
			p.Estado, p.Fin, p.Salida, p.Error = PasoCompletado, ahora, r.Datos, ""
			t.Cambio = true
			if i == len(d.Pasos)-1 {
				s2.Estado, s2.Fin, s2.Plazo, s2.EnEspera = Completada, ahora, time.Time{}, false
				t.Terminada = true
				t.Motivo = "último paso completado: saga COMPLETADA"
				return t
			}
			s2.Estado = EnProgreso
			t.Motivo = "paso " + r.Paso + " completado"
			t.ejecutar(d, i+1, ahora)
			return t
		}
		t.Cambio = true
		if len(r.Datos) > 0 {
			p.Salida = r.Datos
		}
		t.fallar(d, i, nonEmpty(r.Error, "el participante respondió con un fallo"), ahora)
		return t
	case r.Accion == Compensar && p.Estado == PasoCompensando && r.Exito:
		// Also during a backoff wait: a slow reply to the previous attempt
		// is as good as the next attempt's.
		t.Cambio = true
		p.Estado, p.FinCompensacion, p.SalidaCompensacion, p.ErrorCompensacion = PasoCompensado, ahora, r.Datos, ""
		s2.Compensaciones = append(s2.Compensaciones, p.Nombre)
		s2.EnEspera = false
		t.Motivo = "paso " + r.Paso + " compensado"
		t.compensarAnterior(d, i, ahora)
		return t
	case r.Accion == Compensar && p.Estado == PasoCompensando && !s2.EnEspera:
		t.Cambio = true
		p.ErrorCompensacion = nonEmpty(r.Error, "el participante no pudo compensar")
		t.reintentarCompensacion(d, i, ahora)
		return t
	}
	t.Motivo = fmt.Sprintf("respuesta duplicada o tardía de %s/%s (paso %s): ignorada", r.Paso, r.Accion, p.Estado)
	return t
}

// Vencer feeds the passage of time: if the saga's deadline has passed, the
// silent command is retried, or the step fails, or a backoff wait ends.
func Vencer(d *Definicion, s Saga, ahora time.Time) Transicion {
	t := Transicion{Saga: s.Clone()}
	s2 := &t.Saga
	if s2.Estado.Terminal() || s2.Plazo.IsZero() || ahora.Before(s2.Plazo) {
		t.Motivo = "sin plazo vencido"
		return t
	}
	t.Cambio = true
	i := s2.Actual
	p := &s2.Pasos[i]
	switch p.Estado {
	case PasoEjecutando:
		if p.Intento < d.Pasos[i].Intentos {
			t.Motivo = fmt.Sprintf("paso %s sin respuesta: reintento %d", p.Nombre, p.Intento+1)
			t.enviar(d, i, Ejecutar, ahora)
			return t
		}
		t.fallar(d, i, fmt.Sprintf("paso %s sin respuesta tras %d intentos (timeout)", p.Nombre, p.Intento), ahora)
	case PasoCompensando:
		if s2.EnEspera {
			s2.EnEspera = false
			t.Motivo = fmt.Sprintf("reintento %d de la compensación de %s", p.IntentoCompensacion+1, p.Nombre)
			t.enviar(d, i, Compensar, ahora)
			return t
		}
		p.ErrorCompensacion = "sin respuesta a la compensación (timeout)"
		t.reintentarCompensacion(d, i, ahora)
	default:
		t.Cambio = false
		t.Motivo = "plazo sin comando pendiente: ignorado"
	}
	return t
}

// Reintentar is the operator's retry of a COMPENSACION_FALLIDA saga: the
// compensation of the stuck step starts again with a fresh attempt budget.
func Reintentar(d *Definicion, s Saga, ahora time.Time) (Transicion, error) {
	if s.Estado != CompensacionFallida {
		return Transicion{Saga: s}, fmt.Errorf("%w (estado %s)", ErrNoReintentable, s.Estado)
	}
	t := Transicion{Saga: s.Clone(), Cambio: true, Motivo: "reintento manual de la compensación"}
	s2 := &t.Saga
	s2.Estado, s2.Fin, s2.EnEspera = Compensando, time.Time{}, false
	s2.Pasos[s2.Actual].IntentoCompensacion = 0
	t.enviar(d, s2.Actual, Compensar, ahora)
	return t, nil
}

// ejecutar starts step i.
func (t *Transicion) ejecutar(d *Definicion, i int, ahora time.Time) {
	s := &t.Saga
	s.Actual = i
	p := &s.Pasos[i]
	p.Estado, p.Inicio, p.Intento = PasoEjecutando, ahora, 0
	t.enviar(d, i, Ejecutar, ahora)
}

// fallar marks step i failed and starts compensating it (the failed step
// included: its participant may have applied part of it, or may apply it late).
func (t *Transicion) fallar(d *Definicion, i int, motivo string, ahora time.Time) {
	s := &t.Saga
	p := &s.Pasos[i]
	p.Estado, p.Fin, p.Error = PasoFallido, ahora, motivo
	s.Estado, s.PasoFallido, s.Error = Compensando, p.Nombre, motivo
	t.Motivo = "paso " + p.Nombre + " falló: " + motivo + "; compensando"
	t.compensar(d, i, ahora)
}

func (t *Transicion) compensar(d *Definicion, i int, ahora time.Time) {
	s := &t.Saga
	s.Actual = i
	p := &s.Pasos[i]
	p.Estado, p.InicioCompensacion, p.IntentoCompensacion = PasoCompensando, ahora, 0
	t.enviar(d, i, Compensar, ahora)
}

// compensarAnterior moves to the newest started step before i, or ends the saga.
func (t *Transicion) compensarAnterior(d *Definicion, i int, ahora time.Time) {
	s := &t.Saga
	for j := i - 1; j >= 0; j-- {
		if s.Pasos[j].Estado != PasoPendiente {
			t.compensar(d, j, ahora)
			return
		}
	}
	s.Estado, s.Fin, s.Plazo, s.EnEspera = Compensada, ahora, time.Time{}, false
	t.Terminada = true
	t.Motivo += ": saga COMPENSADA"
}

// reintentarCompensacion waits with backoff before the next attempt, or gives up.
func (t *Transicion) reintentarCompensacion(d *Definicion, i int, ahora time.Time) {
	s := &t.Saga
	p := &s.Pasos[i]
	if p.IntentoCompensacion >= d.IntentosCompensacion {
		s.Estado, s.Fin, s.Plazo, s.EnEspera = CompensacionFallida, ahora, time.Time{}, false
		s.Error = fmt.Sprintf("compensación de %s falló tras %d intentos: %s", p.Nombre, p.IntentoCompensacion, p.ErrorCompensacion)
		t.Terminada = true
		t.Motivo = s.Error
		return
	}
	s.EnEspera = true
	s.Plazo = ahora.Add(Espera(d, p.IntentoCompensacion))
	t.Motivo = fmt.Sprintf("compensación de %s falló (%s): reintento tras espera", p.Nombre, p.ErrorCompensacion)
}

// Espera is the backoff before compensation attempt n+1: base·2^(n-1), capped.
func Espera(d *Definicion, n int) time.Duration {
	w := time.Duration(d.EsperaCompensacion)
	for k := 1; k < n && w < time.Duration(d.EsperaMaxima); k++ {
		w *= 2
	}
	return min(w, time.Duration(d.EsperaMaxima))
}

// enviar emits the command for the next attempt of action a of step i and sets
// the reply deadline.
func (t *Transicion) enviar(d *Definicion, i int, a Accion, ahora time.Time) {
	s := &t.Saga
	p := &s.Pasos[i]
	def := d.Pasos[i]
	var intento int
	var nombre string
	var plazo time.Duration
	if a == Ejecutar {
		p.Intento++
		intento, nombre, plazo = p.Intento, def.Comando, time.Duration(def.Plazo)
	} else {
		p.IntentoCompensacion++
		intento, nombre, plazo = p.IntentoCompensacion, def.Compensacion, time.Duration(d.PlazoCompensacion)
	}
	s.Plazo, s.EnEspera = ahora.Add(plazo), false
	datos := datosComando(s, i, a)
	if a == Ejecutar {
		p.Entrada = datos
	}
	t.Comandos = append(t.Comandos, Comando{
		SagaID: s.ID, Tipo: s.Tipo, Paso: p.Nombre, Servicio: p.Servicio, Nombre: nombre,
		Accion: a, Intento: intento, Clave: Clave(s.ID, p.Nombre, a), Datos: datos,
	})
}

// datosComando is what a participant receives: the saga's input and the
// outputs of the steps before this one (for a compensation, also its own).
func datosComando(s *Saga, i int, a Accion) json.RawMessage {
	previos := map[string]json.RawMessage{}
	hasta := i
	if a == Compensar {
		hasta = i + 1
	}
	for _, p := range s.Pasos[:hasta] {
		if len(p.Salida) > 0 {
			previos[p.Nombre] = p.Salida
		}
	}
	entrada := s.Datos
	if len(entrada) == 0 {
		entrada = json.RawMessage("{}")
	}
	// Without HTML escaping: json.Marshal would turn each '<', '>' and '&'
	// of the input and outputs into six bytes (\u003c), growing a command
	// past the limits its parts were checked against.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Entrada json.RawMessage            `json:"entrada"`
		Previos map[string]json.RawMessage `json:"previos"`
	}{entrada, previos}); err != nil {
		// Only invalid raw JSON can fail here; the store validates inputs.
		return []byte(`{"entrada":{},"previos":{}}`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
