package api

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/traza"
)

// Saga states in the order listings report them, and those still running.
var (
	estadosSaga = saga.Estados
	activos     = []saga.Estado{saga.Iniciada, saga.EnProgreso, saga.Compensando}
)

// estadoSaga is the seeds' status shape, answered by the POSTs and
// GET /saga/{id_saga}/estado. Always: id_saga, tipo, estado, inicio,
// pasos_ejecutados, compensaciones. Terminal: fin and tiempo_total ("2.3s").
// Running: paso_actual. After a failure: paso_fallido and error.
type estadoSaga struct {
	IDSaga          string      `json:"id_saga"`
	Tipo            string      `json:"tipo"`
	Estado          saga.Estado `json:"estado"`
	CampaniaID      string      `json:"campania_id,omitempty"`
	Inicio          time.Time   `json:"inicio,omitzero"`
	Fin             time.Time   `json:"fin,omitzero"`
	TiempoTotal     string      `json:"tiempo_total,omitempty"`
	PasoActual      string      `json:"paso_actual,omitempty"`
	PasosEjecutados []string    `json:"pasos_ejecutados"`
	PasoFallido     string      `json:"paso_fallido,omitempty"`
	Compensaciones  []string    `json:"compensaciones"`
	Error           string      `json:"error,omitempty"`
	// Cancelacion is when an operator cancelled the saga.
	Cancelacion time.Time `json:"cancelacion,omitzero"`
}

func estadoDe(s saga.Saga) estadoSaga {
	e := estadoSaga{
		IDSaga: s.ID, Tipo: s.Tipo, Estado: s.Estado, CampaniaID: s.CampaniaID, Inicio: s.Inicio,
		PasosEjecutados: s.PasosEjecutados(), PasoFallido: s.PasoFallido,
		Compensaciones: append([]string{}, s.Compensaciones...), Error: s.Error, Cancelacion: s.Cancelacion,
	}
	if s.Estado.Terminal() {
		e.Fin, e.TiempoTotal = s.Fin, tiempoTotal(s)
	} else {
		e.PasoActual = pasoActual(s)
	}
	return e
}

// detalleSaga is GET /api/v1/sagas/{saga_id}: the saga with its input and
// the timeline of its steps.
type detalleSaga struct {
	IDSaga            string          `json:"id_saga"`
	Tipo              string          `json:"tipo"`
	VersionDefinicion int             `json:"version_definicion"`
	Estado            saga.Estado     `json:"estado"`
	CampaniaID        string          `json:"campania_id,omitempty"`
	UsuarioID         string          `json:"usuario_id,omitempty"`
	TraceID           string          `json:"trace_id,omitempty"` // absent for sagas started before traces were kept
	Entrada           json.RawMessage `json:"entrada,omitempty"`
	Inicio            time.Time       `json:"inicio"`
	Fin               time.Time       `json:"fin,omitzero"`
	DuracionSegundos  *float64        `json:"duracion_segundos,omitempty"`
	TiempoTotal       string          `json:"tiempo_total,omitempty"`
	PasoActual        string          `json:"paso_actual,omitempty"`
	PasosEjecutados   []string        `json:"pasos_ejecutados"`
	PasoFallido       string          `json:"paso_fallido,omitempty"`
	Compensaciones    []string        `json:"compensaciones"`
	Error             string          `json:"error,omitempty"`
	Cancelacion       time.Time       `json:"cancelacion,omitzero"`
	// Plazo is the next deadline: the earliest of the steps' (a reply
	// deadline, or the end of a backoff wait).
	Plazo   time.Time     `json:"plazo,omitzero"`
	Version int64         `json:"version"`
	Pasos   []pasoDetalle `json:"pasos"`
}

// pasoDetalle is one step of the timeline.
type pasoDetalle struct {
	Paso             string          `json:"paso"`
	Descripcion      string          `json:"descripcion,omitempty"`
	Grupo            string          `json:"grupo,omitempty"`
	Servicio         string          `json:"servicio"`
	Estado           saga.EstadoPaso `json:"estado"`
	Intento          int             `json:"intento"`
	Inicio           time.Time       `json:"inicio,omitzero"`
	Fin              time.Time       `json:"fin,omitzero"`
	DuracionSegundos *float64        `json:"duracion_segundos,omitempty"`
	Error            string          `json:"error,omitempty"`
	Entrada          json.RawMessage `json:"entrada,omitempty"`
	Salida           json.RawMessage `json:"salida,omitempty"`
	// Compensacion is present once the step's compensation started.
	Compensacion *compensacionDetalle `json:"compensacion,omitempty"`
}

// compensacionDetalle is the compensation of one step.
type compensacionDetalle struct {
	Intento          int             `json:"intento"`
	Inicio           time.Time       `json:"inicio,omitzero"`
	Fin              time.Time       `json:"fin,omitzero"`
	DuracionSegundos *float64        `json:"duracion_segundos,omitempty"`
	Error            string          `json:"error,omitempty"`
	Salida           json.RawMessage `json:"salida,omitempty"`
}

func detalleDe(s saga.Saga, def *saga.Definicion) detalleSaga {
	e := estadoDe(s)
	d := detalleSaga{
		IDSaga: s.ID, Tipo: s.Tipo, VersionDefinicion: s.VersionDefinicion, Estado: s.Estado,
		CampaniaID: s.CampaniaID, UsuarioID: s.UsuarioID, TraceID: traza.TraceID(s.Traceparent), Entrada: objetoJSON(s.Datos),
		Inicio: s.Inicio, Fin: e.Fin, DuracionSegundos: duracion(s.Inicio, s.Fin), TiempoTotal: e.TiempoTotal,
		PasoActual: e.PasoActual, PasosEjecutados: e.PasosEjecutados, PasoFallido: s.PasoFallido,
		Compensaciones: e.Compensaciones, Error: s.Error, Cancelacion: s.Cancelacion, Plazo: s.Plazo, Version: s.Version,
		Pasos: make([]pasoDetalle, 0, len(s.Pasos)),
	}
	for _, p := range s.Pasos {
		pd := pasoDetalle{
			Paso: p.Nombre, Servicio: p.Servicio, Estado: p.Estado, Intento: p.Intento,
			Inicio: p.Inicio, Fin: p.Fin, DuracionSegundos: duracion(p.Inicio, p.Fin), Error: p.Error,
			Entrada: objetoJSON(p.Entrada), Salida: objetoJSON(p.Salida),
		}
		if def != nil {
			if i := def.Indice(p.Nombre); i >= 0 {
				pd.Descripcion, pd.Grupo = def.Pasos[i].Descripcion, def.Pasos[i].Grupo
			}
		}
		if p.IntentoCompensacion > 0 || !p.InicioCompensacion.IsZero() {
			pd.Compensacion = &compensacionDetalle{
				Intento: p.IntentoCompensacion, Inicio: p.InicioCompensacion, Fin: p.FinCompensacion,
				DuracionSegundos: duracion(p.InicioCompensacion, p.FinCompensacion),
				Error:            p.ErrorCompensacion, Salida: objetoJSON(p.SalidaCompensacion),
			}
		}
		d.Pasos = append(d.Pasos, pd)
	}
	return d
}

// resumenSaga is one saga of a listing.
type resumenSaga struct {
	IDSaga string `json:"id_saga"`
	Tipo   string `json:"tipo"`
	// VersionDefinicion is the version of its tipo's definition the saga
	// started on, and runs to its end on.
	VersionDefinicion int         `json:"version_definicion"`
	Estado            saga.Estado `json:"estado"`
	CampaniaID        string      `json:"campania_id,omitempty"`
	Nombre            string      `json:"nombre,omitempty"`
	Inicio            time.Time   `json:"inicio"`
	Fin               time.Time   `json:"fin,omitzero"`
	TiempoTotal       string      `json:"tiempo_total,omitempty"`
	PasoFallido       string      `json:"paso_fallido,omitempty"`
	Error             string      `json:"error,omitempty"`
	Cancelacion       time.Time   `json:"cancelacion,omitzero"`
}

func resumenDe(s saga.Saga) resumenSaga {
	r := resumenSaga{
		IDSaga: s.ID, Tipo: s.Tipo, VersionDefinicion: s.VersionDefinicion, Estado: s.Estado, CampaniaID: s.CampaniaID, Nombre: nombreDe(s.Datos),
		Inicio: s.Inicio, PasoFallido: s.PasoFallido, Error: s.Error, Cancelacion: s.Cancelacion,
	}
	if s.Estado.Terminal() {
		r.Fin, r.TiempoTotal = s.Fin, tiempoTotal(s)
	}
	return r
}

// listaSagas is a listing: the sagas (newest first, at most limite), how
// many match every filter (total) and, per estado, how many match every
// filter but estado (conteos, every estado present).
type listaSagas struct {
	Sagas   []resumenSaga       `json:"sagas"`
	Total   int                 `json:"total"`
	Conteos map[saga.Estado]int `json:"conteos"`
}

// campania is a campaign as the sagas tell it.
type campania struct {
	CampaniaID string      `json:"campania_id"`
	Nombre     string      `json:"nombre,omitempty"`
	Sagas      int         `json:"sagas"`
	UltimaSaga resumenSaga `json:"ultima_saga"`
}

// listaCampanias is GET /api/v1/campanias.
type listaCampanias struct {
	Campanias []campania `json:"campanias"`
	Total     int        `json:"total"`
}

// tiempoTotal is the seeds' duration text: seconds with up to millisecond
// precision, e.g. "2.3s" (also a valid Go duration).
func tiempoTotal(s saga.Saga) string {
	if s.Fin.IsZero() {
		return ""
	}
	d := s.Fin.Sub(s.Inicio).Round(time.Millisecond)
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func duracion(inicio, fin time.Time) *float64 {
	if inicio.IsZero() || fin.IsZero() {
		return nil
	}
	v := fin.Sub(inicio).Seconds()
	return &v
}

func pasoActual(s saga.Saga) string {
	if s.Actual < 0 || s.Actual >= len(s.Pasos) {
		return ""
	}
	return s.Pasos[s.Actual].Nombre
}

// objetoJSON keeps raw JSON that is valid, so one bad payload cannot break
// the whole answer.
func objetoJSON(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return b
}

// nombreDe reads the campaign name both saga inputs carry.
func nombreDe(datos json.RawMessage) string {
	var v struct {
		Nombre string `json:"nombre"`
	}
	if len(datos) == 0 || json.Unmarshal(datos, &v) != nil {
		return ""
	}
	return v.Nombre
}
