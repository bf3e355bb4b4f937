package saga

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Duracion is a time.Duration that reads and writes as a Go duration string
// ("30s") in JSON, so definitions stay readable as data.
type Duracion time.Duration

// MarshalJSON writes the duration as a string such as "1m30s".
func (d Duracion) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "500ms".
func (d *Duracion) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duracion: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duracion %q: %w", s, err)
	}
	*d = Duracion(v)
	return nil
}

// Paso is one step of a saga definition: which service runs it, with which
// command, and how it is undone.
type Paso struct {
	Nombre       string `json:"nombre"`
	Descripcion  string `json:"descripcion"`
	Servicio     string `json:"servicio"`     // participant; commands go to topic comandos-<servicio>
	Comando      string `json:"comando"`      // e.g. NotificarInfluencer
	Compensacion string `json:"compensacion"` // e.g. CompensarNotificacionInfluencer
	// Plazo is how long one attempt waits for its reply before it is retried
	// with the same idempotency key.
	Plazo Duracion `json:"plazo"`
	// Intentos is how many attempts the action gets before the step counts as failed.
	Intentos int `json:"intentos"`
	// Grupo, when set, names the parallel group of the step: consecutive
	// steps with the same Grupo start together and the saga goes on once all
	// of them completed. A member receives the outputs of the steps before
	// its group, not those of the other members.
	Grupo string `json:"grupo,omitempty"`
}

// Definicion is a saga flow as data: name, version and ordered steps. The
// engine is generic; a new flow is a new Definicion plus participant handlers.
type Definicion struct {
	Tipo    string `json:"tipo"`
	Version int    `json:"version"`
	Pasos   []Paso `json:"pasos"`
	// Compensation policy: each compensation gets IntentosCompensacion attempts,
	// waiting PlazoCompensacion for a reply and backing off exponentially from
	// EsperaCompensacion (capped at EsperaMaxima) after a failed attempt.
	IntentosCompensacion int      `json:"intentos_compensacion"`
	PlazoCompensacion    Duracion `json:"plazo_compensacion"`
	EsperaCompensacion   Duracion `json:"espera_compensacion"`
	EsperaMaxima         Duracion `json:"espera_maxima"`
	// EsquemaEntrada, when set, is a JSON Schema (draft 2020-12 unless its
	// $schema says otherwise) of the saga's input: the flow can then be
	// started through POST /api/v1/sagas/{tipo}, which validates the input
	// against it. The state machine never reads it.
	EsquemaEntrada json.RawMessage `json:"esquema_entrada,omitempty"`

	// anteriores are earlier versions of this tipo that the catalogue still
	// knows, so that sagas started on them run to their end on them.
	anteriores []*Definicion
}

// Validar reports every problem of the definition at once.
func (d *Definicion) Validar() error {
	var errs []error
	if d.Tipo == "" {
		errs = append(errs, errors.New("tipo vacío"))
	}
	if d.Version < 1 {
		errs = append(errs, fmt.Errorf("%s: version %d, debe ser >= 1", d.Tipo, d.Version))
	}
	if len(d.Pasos) == 0 {
		errs = append(errs, fmt.Errorf("%s: sin pasos", d.Tipo))
	}
	vistos, gruposVistos := map[string]bool{}, map[string]bool{}
	for i, p := range d.Pasos {
		switch {
		case p.Nombre == "":
			errs = append(errs, fmt.Errorf("%s: paso %d sin nombre", d.Tipo, i))
		case vistos[p.Nombre]:
			errs = append(errs, fmt.Errorf("%s: paso %q repetido", d.Tipo, p.Nombre))
		}
		vistos[p.Nombre] = true
		if p.Servicio == "" || p.Comando == "" || p.Compensacion == "" {
			errs = append(errs, fmt.Errorf("%s: paso %q necesita servicio, comando y compensacion", d.Tipo, p.Nombre))
		}
		if p.Plazo <= 0 || p.Intentos < 1 {
			errs = append(errs, fmt.Errorf("%s: paso %q necesita plazo > 0 e intentos >= 1", d.Tipo, p.Nombre))
		}
		if p.Grupo != "" && i > 0 && d.Pasos[i-1].Grupo != p.Grupo && gruposVistos[p.Grupo] {
			errs = append(errs, fmt.Errorf("%s: grupo %q con pasos no consecutivos (paso %q)", d.Tipo, p.Grupo, p.Nombre))
		}
		gruposVistos[p.Grupo] = true
	}
	if len(d.EsquemaEntrada) > 0 && !esObjetoJSON(d.EsquemaEntrada) {
		errs = append(errs, fmt.Errorf("%s: esquema_entrada debe ser un objeto JSON (un JSON Schema)", d.Tipo))
	}
	if d.IntentosCompensacion < 1 || d.PlazoCompensacion <= 0 || d.EsperaCompensacion <= 0 || d.EsperaMaxima < d.EsperaCompensacion {
		errs = append(errs, fmt.Errorf("%s: política de compensación inválida", d.Tipo))
	}
	return errors.Join(errs...)
}

func esObjetoJSON(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

// Indice returns the position of the named step, or -1.
func (d *Definicion) Indice(paso string) int {
	for i, p := range d.Pasos {
		if p.Nombre == paso {
			return i
		}
	}
	return -1
}

// Grupo returns the positions [desde, hasta) of the steps that start
// together with step i: its parallel group, or step i alone.
func (d *Definicion) Grupo(i int) (desde, hasta int) {
	desde, hasta = i, i+1
	g := d.Pasos[i].Grupo
	if g == "" {
		return desde, hasta
	}
	for desde > 0 && d.Pasos[desde-1].Grupo == g {
		desde--
	}
	for hasta < len(d.Pasos) && d.Pasos[hasta].Grupo == g {
		hasta++
	}
	return desde, hasta
}

// Leer decodes and validates a definition written as JSON.
func Leer(r io.Reader) (*Definicion, error) {
	var d Definicion
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("leer definicion: %w", err)
	}
	if err := d.Validar(); err != nil {
		return nil, fmt.Errorf("definicion %s: %w", d.Tipo, err)
	}
	return &d, nil
}

// Catalogo holds the current definition of each tipo (new sagas start on
// it), each one carrying the earlier versions still known.
type Catalogo map[string]*Definicion

// Buscar returns the current definition of tipo or ErrTipoDesconocido.
func (c Catalogo) Buscar(tipo string) (*Definicion, error) {
	d, ok := c[tipo]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTipoDesconocido, tipo)
	}
	return d, nil
}

// BuscarVersion returns the definition a saga of tipo started on. A version
// the catalogue does not know is ErrVersionDesconocida: a saga never goes on
// with another version's steps.
func (c Catalogo) BuscarVersion(tipo string, version int) (*Definicion, error) {
	d, err := c.Buscar(tipo)
	if err != nil {
		return nil, err
	}
	if d.Version == version {
		return d, nil
	}
	for _, a := range d.anteriores {
		if a.Version == version {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w: %s versión %d (conocidas: %s)", ErrVersionDesconocida, tipo, version, listaVersiones(c.Versiones(tipo)))
}

// EnCurso counts the sagas of one tipo and definition version that still
// need their definition: those not ended, and those in COMPENSACION_FALLIDA
// (an operator's retry runs their compensations).
type EnCurso struct {
	Tipo    string
	Version int
	Sagas   int
}

// ComprobarEnCurso reports, as one ErrVersionDesconocida, every tipo and
// version of en that the catalogue cannot run, with how many sagas need it
// and the versions it knows. A coordinator must not start with such a
// catalogue: those sagas could not take one more step.
func (c Catalogo) ComprobarEnCurso(en []EnCurso) error {
	var (
		faltan []string
		sagas  int
	)
	for _, e := range en {
		if e.Sagas == 0 {
			continue
		}
		if _, err := c.BuscarVersion(e.Tipo, e.Version); err == nil {
			continue
		}
		conocidas := "tipo desconocido"
		if vs := c.Versiones(e.Tipo); len(vs) > 0 {
			conocidas = "conocidas: " + listaVersiones(vs)
		}
		faltan = append(faltan, fmt.Sprintf("%s versión %d (%d sagas; %s)", e.Tipo, e.Version, e.Sagas, conocidas))
		sagas += e.Sagas
	}
	if len(faltan) == 0 {
		return nil
	}
	slices.Sort(faltan)
	return fmt.Errorf("%w: %d sagas en curso necesitan definiciones que el catálogo no tiene: %s; "+
		"devuelva esos archivos a SAGAS_DEFINICIONES (un directorio admite varias versiones de un tipo: la más alta es la actual)",
		ErrVersionDesconocida, sagas, strings.Join(faltan, ", "))
}

func listaVersiones(vs []int) string {
	partes := make([]string, len(vs))
	for i, v := range vs {
		partes[i] = strconv.Itoa(v)
	}
	return strings.Join(partes, ", ")
}

// Versiones lists the versions of tipo the catalogue knows, current first.
func (c Catalogo) Versiones(tipo string) []int {
	d, ok := c[tipo]
	if !ok {
		return nil
	}
	out := []int{d.Version}
	for _, a := range d.anteriores {
		out = append(out, a.Version)
	}
	return out
}

// agregar makes d the current definition of its tipo, keeping the one it
// replaces (and that one's earlier versions) as earlier versions; a
// definition of the same version is replaced outright.
func (c Catalogo) agregar(d *Definicion) {
	viejo, ok := c[d.Tipo]
	if !ok {
		c[d.Tipo] = d
		return
	}
	var anteriores []*Definicion
	for _, a := range append([]*Definicion{viejo}, viejo.anteriores...) {
		if a.Version != d.Version {
			copia := *a
			copia.anteriores = nil
			anteriores = append(anteriores, &copia)
		}
	}
	d.anteriores = append(d.anteriores, anteriores...)
	c[d.Tipo] = d
}

// Tipos of the two flows of the original system.
const (
	TipoCampana                = "campana"
	TipoLanzarCampaniaCompleta = "lanzar-campania-completa"
)

func politica(d Definicion) *Definicion {
	d.IntentosCompensacion = 5
	d.PlazoCompensacion = Duracion(10 * time.Second)
	d.EsperaCompensacion = Duracion(500 * time.Millisecond)
	d.EsperaMaxima = Duracion(10 * time.Second)
	return &d
}

// Campana is the seeds' campaign saga: notify influencers, notify the brand,
// initialise tracking.
func Campana() *Definicion {
	return politica(Definicion{
		Tipo: TipoCampana, Version: 1,
		Pasos: []Paso{
			{Nombre: "influencer", Descripcion: "Notificar a los influencers", Servicio: "influencer",
				Comando: "NotificarInfluencer", Compensacion: "CompensarNotificacionInfluencer",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
			{Nombre: "marca", Descripcion: "Notificar a la marca", Servicio: "marca",
				Comando: "NotificarMarca", Compensacion: "CompensarNotificacionMarca",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
			{Nombre: "tracking", Descripcion: "Inicializar el tracking de la campaña", Servicio: "tracking",
				Comando: "InicializarTracking", Compensacion: "CompensarInicializacionTracking",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
		},
	})
}

// LanzarCampaniaCompleta is the BFF's full launch (version 2): reserve the
// eligible affiliates, then configure commissions, initialise conversion
// tracking and prepare notifications in parallel, since each of those three
// needs only the reserved affiliates and the saga's input. Step names are
// the legacy system's, so its operators recognise them.
func LanzarCampaniaCompleta() *Definicion {
	d := LanzarCampaniaCompletaV1()
	d.Version = 2
	d.Pasos = slices.Clone(d.Pasos)
	for i := 1; i < len(d.Pasos); i++ {
		d.Pasos[i].Grupo = "preparar_lanzamiento"
	}
	return d
}

// LanzarCampaniaCompletaV1 is the first, sequential version of
// LanzarCampaniaCompleta (affiliates, commissions, conversion tracking,
// notifications, one after the other). Sagas started on it finish on it.
func LanzarCampaniaCompletaV1() *Definicion {
	return politica(Definicion{
		Tipo: TipoLanzarCampaniaCompleta, Version: 1,
		Pasos: []Paso{
			{Nombre: "solicitar_afiliados_elegibles", Descripcion: "Reservar afiliados elegibles", Servicio: "afiliados",
				Comando: "SolicitarAfiliadosElegibles", Compensacion: "LiberarAfiliadosElegibles",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
			{Nombre: "configurar_comisiones_campania", Descripcion: "Configurar comisiones de la campaña", Servicio: "comisiones",
				Comando: "ConfigurarComisionesCampania", Compensacion: "RevertirComisionesCampania",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
			{Nombre: "inicializar_tracking_conversiones", Descripcion: "Inicializar tracking de conversiones", Servicio: "tracking",
				Comando: "InicializarTrackingConversiones", Compensacion: "DesactivarTrackingConversiones",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
			{Nombre: "preparar_notificaciones_campania", Descripcion: "Preparar notificaciones de la campaña", Servicio: "notificaciones",
				Comando: "PrepararNotificacionesCampania", Compensacion: "CancelarNotificacionesCampania",
				Plazo: Duracion(10 * time.Second), Intentos: 3},
		},
	})
}

// CatalogoPorDefecto returns both flows of the original system, each at its
// newest version (LanzarCampaniaCompleta also keeps version 1).
func CatalogoPorDefecto() Catalogo {
	c := Catalogo{TipoCampana: Campana(), TipoLanzarCampaniaCompleta: LanzarCampaniaCompletaV1()}
	c.agregar(LanzarCampaniaCompleta())
	return c
}

// CargarDirectorio adds to c every definition in dir/*.json. A file's
// definition becomes the current one of its tipo (e.g. to change deadlines
// without a build, or to go back to an earlier version); the definition it
// replaces stays known for the sagas that started on it. Of several files of
// one tipo, the highest version becomes the current one.
func (c Catalogo) CargarDirectorio(fsys fs.FS) error {
	nombres, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return err
	}
	var (
		errs   []error
		leidas []*Definicion
	)
	for _, n := range nombres {
		f, err := fsys.Open(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, err := Leer(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		leidas = append(leidas, d)
	}
	// Lowest version first, so that the highest of a tipo ends current.
	slices.SortStableFunc(leidas, func(a, b *Definicion) int { return a.Version - b.Version })
	for _, d := range leidas {
		c.agregar(d)
	}
	return errors.Join(errs...)
}
