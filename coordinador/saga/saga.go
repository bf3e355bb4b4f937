// Package saga is the pure core of the coordinator: saga definitions as data
// and the state machine that advances a saga from its replies and deadlines.
//
// It does no I/O and reads no clock: every input carries the time, every output
// is a new Saga value plus the commands to send. The store persists both in one
// transaction (the outbox), so the machine can be table-tested exhaustively.
//
// Steps of a parallel group (Paso.Grupo) are sent together and each has its
// own deadline and attempts; when one fails, the members that answered are
// compensated, those still out are awaited (their reply or their deadline,
// without further attempts) and compensated too, and only then the steps
// before the group, newest first. Compensations run one at a time.
//
// An operator's Cancelar stops a running saga the same way: the steps of the
// newest started group that answered are compensated, those in flight are
// awaited (reply or deadline) and compensated too, then the earlier steps;
// the saga ends CANCELADA instead of COMPENSADA.
//
//	stateDiagram-v2
//	    [*] --> INICIADA: Nueva (command of step 1, or of every member of its group)
//	    INICIADA --> EN_PROGRESO: step 1 OK
//	    INICIADA --> COMPENSANDO: step 1 failed / timed out after its retries
//	    EN_PROGRESO --> EN_PROGRESO: step OK, next step (group: next once every member is OK)
//	    EN_PROGRESO --> COMPLETADA: last step OK
//	    EN_PROGRESO --> COMPENSANDO: step failed / timed out after its retries
//	    INICIADA --> COMPENSANDO: operator cancel (Cancelar)
//	    EN_PROGRESO --> COMPENSANDO: operator cancel (Cancelar)
//	    COMPENSANDO --> COMPENSANDO: compensation OK, previous step / failed, retry with backoff
//	    COMPENSANDO --> COMPENSADA: first step compensated
//	    COMPENSANDO --> CANCELADA: first step compensated, after a cancel
//	    COMPENSANDO --> COMPENSACION_FALLIDA: compensation retries exhausted
//	    COMPENSACION_FALLIDA --> COMPENSANDO: operator retry (Reintentar)
//	    COMPLETADA --> [*]
//	    COMPENSADA --> [*]
//	    CANCELADA --> [*]
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
	// Cancelada: an operator cancelled the saga and every started step was
	// compensated (terminal).
	Cancelada Estado = "CANCELADA"
)

// Estados lists every saga state, in the order listings report them.
var Estados = []Estado{Iniciada, EnProgreso, Completada, Compensando, Compensada, CompensacionFallida, Cancelada}

// Terminal reports whether no reply or deadline can change the saga any more
// (COMPENSACION_FALLIDA leaves it only through an operator's Reintentar).
func (e Estado) Terminal() bool {
	return e == Completada || e == Compensada || e == CompensacionFallida || e == Cancelada
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
	// ErrVersionDesconocida is a definition version of a known tipo that the
	// catalogue does not hold (its file left SAGAS_DEFINICIONES).
	ErrVersionDesconocida = errors.New("versión de definición desconocida")
	ErrNoReintentable     = errors.New("la saga no está en COMPENSACION_FALLIDA")
	// ErrNoCancelable: the saga already ended (NoCancelableError says how).
	ErrNoCancelable = errors.New("la saga ya terminó: no se puede cancelar")
)

// NoCancelableError is ErrNoCancelable with the state the saga ended in.
type NoCancelableError struct {
	SagaID string
	Estado Estado
}

func (e *NoCancelableError) Error() string {
	return fmt.Sprintf("saga %s en %s: %v", e.SagaID, e.Estado, ErrNoCancelable)
}

// Unwrap makes errors.Is(err, ErrNoCancelable) hold.
func (e *NoCancelableError) Unwrap() error { return ErrNoCancelable }

// MotivoCancelacion is the saga's error text once an operator cancelled it.
const MotivoCancelacion = "cancelada por el operador"

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
	// Plazo is the step's own deadline (zero when none): the reply deadline
	// of its outstanding command, or the end of its compensation's backoff
	// wait. Members of a parallel group each have theirs.
	Plazo time.Time `json:"plazo,omitzero"`

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
	// Traceparent is the W3C trace context the saga started in (the API
	// request's or the legacy message's); commands not caused by a reply
	// (deadlines, an operator's retry) are sent in it.
	Traceparent string         `json:"traceparent,omitempty"`
	Pasos       []EstadoDePaso `json:"pasos"`
	// Actual is the index of the step being executed (the first member of a
	// parallel group) or compensated (or, after a group failed, the member
	// whose reply is awaited before compensating it).
	Actual int `json:"actual"`
	// Plazo is the earliest of the steps' deadlines (zero when none); the
	// store sweeps sagas by it.
	Plazo time.Time `json:"plazo,omitzero"`
	// EnEspera is set while the compensation in course waits out its backoff
	// (compensations run one at a time).
	EnEspera       bool      `json:"en_espera,omitempty"`
	PasoFallido    string    `json:"paso_fallido,omitempty"`
	Compensaciones []string  `json:"compensaciones"`
	Error          string    `json:"error,omitempty"`
	Inicio         time.Time `json:"inicio"`
	Fin            time.Time `json:"fin,omitzero"`
	// Cancelacion is when an operator cancelled the saga (zero if never):
	// its compensations then end in CANCELADA.
	Cancelacion time.Time `json:"cancelacion,omitzero"`
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

// Nueva starts a saga: the first step (or every member of the first
// parallel group) is sent and its deadline set.
func Nueva(d *Definicion, id string, datos json.RawMessage, ahora time.Time) Transicion {
	s := Saga{
		ID: id, Tipo: d.Tipo, VersionDefinicion: d.Version, Estado: Iniciada,
		Datos: datos, Inicio: ahora, Compensaciones: []string{},
	}
	for _, p := range d.Pasos {
		s.Pasos = append(s.Pasos, EstadoDePaso{Nombre: p.Nombre, Servicio: p.Servicio, Estado: PasoPendiente})
	}
	t := Transicion{Saga: s, Cambio: true, Motivo: "saga iniciada"}
	t.ejecutarGrupo(d, 0, ahora)
	t.plazo()
	return t
}

// Aplicar feeds a participant's reply to the machine.
func Aplicar(d *Definicion, s Saga, r Respuesta, ahora time.Time) Transicion {
	t := Transicion{Saga: s.Clone()}
	s2 := &t.Saga
	i := d.Indice(r.Paso)
	if i < 0 || i >= len(s2.Pasos) {
		t.Motivo = fmt.Sprintf("respuesta de %s/%s, paso desconocido: ignorada", r.Paso, r.Accion)
		return t
	}
	p := &s2.Pasos[i]
	// A compensation that succeeded after the coordinator gave up on it (its
	// reply was late) resumes the saga: nothing is left to undo there, so an
	// operator need not be called.
	tardia := s2.Estado == CompensacionFallida && r.Accion == Compensar && r.Exito && i == s2.Actual && p.Estado == PasoCompensando
	// A member of a failed group may answer after the saga gave up on a
	// compensation: its outcome is recorded so that the operator's retry
	// compensates it with its output.
	miembroTardio := s2.Estado == CompensacionFallida && r.Accion == Ejecutar && p.Estado == PasoEjecutando
	if s2.Estado.Terminal() && !tardia && !miembroTardio {
		t.Motivo = "respuesta a saga terminada: ignorada"
		return t
	}
	if tardia {
		s2.Estado, s2.Fin = Compensando, time.Time{}
	}
	switch {
	case r.Accion == Ejecutar && p.Estado == PasoEjecutando && s2.Estado != EnProgreso && s2.Estado != Iniciada:
		// The group already failed: this member is compensated in its turn.
		t.Cambio = true
		p.Plazo, p.Fin = time.Time{}, ahora
		if len(r.Datos) > 0 {
			p.Salida = r.Datos
		}
		if r.Exito {
			p.Estado = PasoCompletado
			t.anotar("paso " + r.Paso + " completado tras " + s2.porQueCompensa())
		} else {
			p.Estado, p.Error = PasoFallido, nonEmpty(r.Error, "el participante respondió con un fallo")
			t.anotar("paso " + r.Paso + " falló tras " + s2.porQueCompensa())
		}
		if s2.Estado == Compensando {
			t.siguienteCompensacion(d, ahora)
		}
	case r.Accion == Ejecutar && p.Estado == PasoEjecutando:
		t.Cambio = true
		p.Plazo = time.Time{}
		if !r.Exito {
			if len(r.Datos) > 0 {
				p.Salida = r.Datos
			}
			t.fallar(d, i, nonEmpty(r.Error, "el participante respondió con un fallo"), ahora)
			break
		}
		p.Estado, p.Fin, p.Salida, p.Error = PasoCompletado, ahora, r.Datos, ""
		s2.Estado = EnProgreso
		desde, hasta := d.Grupo(i)
		if faltan := pendientes(s2.Pasos[desde:hasta]); faltan > 0 {
			t.anotar(fmt.Sprintf("paso %s completado; faltan %d del grupo %s", r.Paso, faltan, d.Pasos[i].Grupo))
			break
		}
		if hasta == len(d.Pasos) {
			s2.Estado, s2.Fin, s2.EnEspera = Completada, ahora, false
			t.Terminada = true
			t.anotar("último paso completado: saga COMPLETADA")
			break
		}
		t.anotar("paso " + r.Paso + " completado")
		t.ejecutarGrupo(d, hasta, ahora)
	case r.Accion == Compensar && p.Estado == PasoCompensando && r.Exito:
		// Also during a backoff wait: a slow reply to the previous attempt
		// is as good as the next attempt's.
		t.Cambio = true
		p.Estado, p.FinCompensacion, p.SalidaCompensacion, p.ErrorCompensacion = PasoCompensado, ahora, r.Datos, ""
		p.Plazo = time.Time{}
		s2.Compensaciones = append(s2.Compensaciones, p.Nombre)
		s2.EnEspera = false
		t.anotar("paso " + r.Paso + " compensado")
		t.siguienteCompensacion(d, ahora)
	case r.Accion == Compensar && p.Estado == PasoCompensando && !s2.EnEspera && (r.Intento == 0 || r.Intento == p.IntentoCompensacion):
		// A failure counts only for the attempt in flight: a redelivered or
		// late failure of an earlier attempt must not use up another one.
		t.Cambio = true
		p.ErrorCompensacion = nonEmpty(r.Error, "el participante no pudo compensar")
		t.reintentarCompensacion(d, i, ahora)
	default:
		t.Motivo = fmt.Sprintf("respuesta duplicada o tardía de %s/%s (paso %s): ignorada", r.Paso, r.Accion, p.Estado)
		return t
	}
	t.plazo()
	return t
}

// porQueCompensa names what stopped the saga, for the texts about a step
// that answered (or not) after it.
func (s *Saga) porQueCompensa() string {
	if !s.Cancelacion.IsZero() {
		return "la cancelación"
	}
	return "el fallo de su grupo"
}

// pendientes counts the steps of ps not completed.
func pendientes(ps []EstadoDePaso) int {
	n := 0
	for _, p := range ps {
		if p.Estado != PasoCompletado {
			n++
		}
	}
	return n
}

// Vencer feeds the passage of time: each command whose deadline passed is
// retried, or its step fails, or a backoff wait ends. A member of a failed
// group that never answered is not retried: it counts as failed and is
// compensated in its turn.
func Vencer(d *Definicion, s Saga, ahora time.Time) Transicion {
	t := Transicion{Saga: s.Clone()}
	s2 := &t.Saga
	if s2.Estado.Terminal() || s2.Plazo.IsZero() || ahora.Before(s2.Plazo) {
		t.Motivo = "sin plazo vencido"
		return t
	}
	for i := range s2.Pasos {
		p := &s2.Pasos[i]
		if p.Plazo.IsZero() || ahora.Before(p.Plazo) {
			continue
		}
		t.Cambio = true
		switch {
		case p.Estado == PasoEjecutando && s2.Estado == Compensando:
			p.Estado, p.Fin, p.Plazo = PasoFallido, ahora, time.Time{}
			p.Error = fmt.Sprintf("paso %s sin respuesta tras %s (timeout)", p.Nombre, s2.porQueCompensa())
			t.anotar(p.Error)
		case p.Estado == PasoEjecutando && p.Intento < d.Pasos[i].Intentos:
			t.anotar(fmt.Sprintf("paso %s sin respuesta: reintento %d", p.Nombre, p.Intento+1))
			t.enviar(d, i, Ejecutar, ahora)
		case p.Estado == PasoEjecutando:
			t.fallar(d, i, fmt.Sprintf("paso %s sin respuesta tras %d intentos (timeout)", p.Nombre, p.Intento), ahora)
		case p.Estado == PasoCompensando && s2.EnEspera:
			s2.EnEspera = false
			t.anotar(fmt.Sprintf("reintento %d de la compensación de %s", p.IntentoCompensacion+1, p.Nombre))
			t.enviar(d, i, Compensar, ahora)
		case p.Estado == PasoCompensando:
			p.ErrorCompensacion = "sin respuesta a la compensación (timeout)"
			t.reintentarCompensacion(d, i, ahora)
		default:
			p.Plazo = time.Time{} // a deadline left on a step with no command out
		}
		if s2.Estado.Terminal() {
			break
		}
	}
	if s2.Estado == Compensando {
		t.siguienteCompensacion(d, ahora)
	}
	antes := s2.Plazo
	t.plazo()
	if !t.Cambio {
		// The saga's deadline was stale (no step had one due): only that moves.
		t.Cambio = !s2.Plazo.Equal(antes)
		t.Motivo = "plazo sin comando pendiente"
	}
	return t
}

// Reintentar is the operator's retry of a COMPENSACION_FALLIDA saga: the
// compensation of the stuck step starts again with a fresh attempt budget.
// Its attempts go on numbering from where the last round ended (a round is
// IntentosCompensacion attempts: the second starts at attempt N+1), so a
// reply to an earlier round's attempt, redelivered late, never passes for
// one of the new round's, and each new attempt's reply has an id of its own.
func Reintentar(d *Definicion, s Saga, ahora time.Time) (Transicion, error) {
	if s.Estado != CompensacionFallida {
		return Transicion{Saga: s}, fmt.Errorf("%w (estado %s)", ErrNoReintentable, s.Estado)
	}
	t := Transicion{Saga: s.Clone(), Cambio: true, Motivo: "reintento manual de la compensación"}
	s2 := &t.Saga
	s2.Estado, s2.Fin, s2.EnEspera = Compensando, time.Time{}, false
	p := &s2.Pasos[s2.Actual]
	n := d.IntentosCompensacion
	p.IntentoCompensacion = (p.IntentoCompensacion + n - 1) / n * n
	t.enviar(d, s2.Actual, Compensar, ahora)
	t.plazo()
	return t, nil
}

// Cancelar is the operator's cancel. A running saga (INICIADA, EN_PROGRESO)
// stops advancing and compensates every started step, newest first: the
// members of the current group that answered at once, those still in flight
// once their reply arrives or their deadline passes (never retried). It ends
// CANCELADA. A saga already cancelled, or already compensating after a
// failure, is left as it is (Cambio false, no error): the cancel is
// idempotent. A saga that already ended is a *NoCancelableError.
func Cancelar(d *Definicion, s Saga, ahora time.Time) (Transicion, error) {
	switch {
	case !s.Cancelacion.IsZero():
		return Transicion{Saga: s, Motivo: "saga ya cancelada: nada que hacer"}, nil
	case s.Estado == Compensando:
		return Transicion{Saga: s, Motivo: "saga ya compensando: nada que hacer"}, nil
	case s.Estado.Terminal():
		return Transicion{Saga: s}, &NoCancelableError{SagaID: s.ID, Estado: s.Estado}
	}
	t := Transicion{Saga: s.Clone(), Cambio: true, Motivo: "cancelada por el operador; compensando"}
	s2 := &t.Saga
	s2.Estado, s2.Cancelacion, s2.Error = Compensando, ahora, MotivoCancelacion
	t.siguienteCompensacion(d, ahora)
	t.plazo()
	return t, nil
}

// anotar adds m to the transition's account of what happened.
func (t *Transicion) anotar(m string) {
	if t.Motivo == "" {
		t.Motivo = m
		return
	}
	t.Motivo += "; " + m
}

// plazo sets the saga's deadline to the earliest of its steps' (none when
// terminal): the store sweeps sagas by it.
func (t *Transicion) plazo() {
	s := &t.Saga
	s.Plazo = time.Time{}
	if s.Estado.Terminal() {
		s.EnEspera = false
		return
	}
	for _, p := range s.Pasos {
		if !p.Plazo.IsZero() && (s.Plazo.IsZero() || p.Plazo.Before(s.Plazo)) {
			s.Plazo = p.Plazo
		}
	}
}

// ejecutarGrupo starts step i and, when it belongs to a parallel group,
// every member of the group.
func (t *Transicion) ejecutarGrupo(d *Definicion, i int, ahora time.Time) {
	desde, hasta := d.Grupo(i)
	t.Saga.Actual = desde
	for j := desde; j < hasta; j++ {
		p := &t.Saga.Pasos[j]
		p.Estado, p.Inicio, p.Intento = PasoEjecutando, ahora, 0
		t.enviar(d, j, Ejecutar, ahora)
	}
}

// fallar marks step i failed and starts compensating (the failed step
// included: its participant may have applied part of it, or may apply it
// late).
func (t *Transicion) fallar(d *Definicion, i int, motivo string, ahora time.Time) {
	s := &t.Saga
	p := &s.Pasos[i]
	p.Estado, p.Fin, p.Error, p.Plazo = PasoFallido, ahora, motivo, time.Time{}
	s.Estado, s.PasoFallido, s.Error = Compensando, p.Nombre, motivo
	t.anotar("paso " + p.Nombre + " falló: " + motivo + "; compensando")
	t.siguienteCompensacion(d, ahora)
}

// siguienteCompensacion starts the next compensation, newest step first,
// one at a time: first the members of the failed group that answered
// (highest position first); while a member has not answered, its reply or
// its deadline is awaited before going below the group; then the earlier
// steps. With nothing left to undo, the saga is COMPENSADA.
func (t *Transicion) siguienteCompensacion(d *Definicion, ahora time.Time) {
	s := &t.Saga
	for _, p := range s.Pasos {
		if p.Estado == PasoCompensando {
			return
		}
	}
	desde, hasta := len(s.Pasos), len(s.Pasos)
	if f := d.Indice(s.PasoFallido); f >= 0 {
		desde, hasta = d.Grupo(f)
	} else if f := ultimoIniciado(s.Pasos); f >= 0 {
		// A cancel: no step failed; the newest started group is undone first.
		desde, hasta = d.Grupo(f)
	}
	esperando := -1
	for j := hasta - 1; j >= desde; j-- {
		switch s.Pasos[j].Estado {
		case PasoCompletado, PasoFallido:
			t.compensar(d, j, ahora)
			return
		case PasoEjecutando:
			esperando = max(esperando, j)
		}
	}
	if esperando >= 0 {
		s.Actual, s.EnEspera = esperando, false
		t.anotar("esperando la respuesta de " + s.Pasos[esperando].Nombre + " para compensarlo")
		return
	}
	for j := desde - 1; j >= 0; j-- {
		if e := s.Pasos[j].Estado; e == PasoCompletado || e == PasoFallido {
			t.compensar(d, j, ahora)
			return
		}
	}
	s.Estado, s.Fin, s.EnEspera = Compensada, ahora, false
	if !s.Cancelacion.IsZero() {
		s.Estado = Cancelada
	}
	t.Terminada = true
	t.anotar("saga " + string(s.Estado))
}

// ultimoIniciado is the position of the newest step that started, or -1.
func ultimoIniciado(ps []EstadoDePaso) int {
	for j := len(ps) - 1; j >= 0; j-- {
		if ps[j].Estado != PasoPendiente {
			return j
		}
	}
	return -1
}

func (t *Transicion) compensar(d *Definicion, i int, ahora time.Time) {
	s := &t.Saga
	s.Actual = i
	p := &s.Pasos[i]
	p.Estado, p.InicioCompensacion, p.IntentoCompensacion = PasoCompensando, ahora, 0
	t.enviar(d, i, Compensar, ahora)
}

// reintentarCompensacion waits with backoff before the next attempt, or gives up.
func (t *Transicion) reintentarCompensacion(d *Definicion, i int, ahora time.Time) {
	s := &t.Saga
	p := &s.Pasos[i]
	n := intentoDeRonda(p.IntentoCompensacion, d.IntentosCompensacion)
	if n >= d.IntentosCompensacion {
		s.Estado, s.Fin, s.EnEspera = CompensacionFallida, ahora, false
		p.Plazo = time.Time{}
		s.Error = fmt.Sprintf("compensación de %s falló tras %d intentos: %s", p.Nombre, n, p.ErrorCompensacion)
		t.Terminada = true
		t.anotar(s.Error)
		return
	}
	s.EnEspera = true
	p.Plazo = ahora.Add(Espera(d, n))
	t.anotar(fmt.Sprintf("compensación de %s falló (%s): reintento tras espera", p.Nombre, p.ErrorCompensacion))
}

// intentoDeRonda is attempt i's place in its round of n attempts (1..n):
// after an operator's Reintentar, attempt n+1 is the new round's first.
func intentoDeRonda(i, n int) int {
	if i < 1 {
		return i
	}
	return (i-1)%n + 1
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
	p.Plazo = ahora.Add(plazo)
	if a == Compensar {
		s.EnEspera = false
	}
	datos := datosComando(d, s, i, a)
	if a == Ejecutar {
		p.Entrada = datos
	}
	t.Comandos = append(t.Comandos, Comando{
		SagaID: s.ID, Tipo: s.Tipo, Paso: p.Nombre, Servicio: p.Servicio, Nombre: nombre,
		Accion: a, Intento: intento, Clave: Clave(s.ID, p.Nombre, a), Datos: datos,
	})
}

// datosComando is what a participant receives: the saga's input and the
// outputs of the steps before this one's group (for a compensation, also its
// own). Members of a group do not see each other's outputs: they run at once.
func datosComando(d *Definicion, s *Saga, i int, a Accion) json.RawMessage {
	previos := map[string]json.RawMessage{}
	desde, _ := d.Grupo(i)
	for _, p := range s.Pasos[:desde] {
		if len(p.Salida) > 0 {
			previos[p.Nombre] = p.Salida
		}
	}
	if p := s.Pasos[i]; a == Compensar && len(p.Salida) > 0 {
		previos[p.Nombre] = p.Salida
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
