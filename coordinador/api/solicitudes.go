package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alpespartner/sagas/eventos"
)

// Routes that start sagas; each is also its flow's idempotency key prefix,
// so the same Idempotency-Key on the two flows names two sagas.
const (
	rutaCampana     = "/campana-saga"
	rutaLanzamiento = "/api/v1/comandos/lanzar-campania-completa"
)

// Limits of request values.
const (
	presupuestoMaximo   = 1e9
	largoTexto          = 200
	largoDescripcion    = 2000
	largoID             = 100
	largoClave          = 200
	maximoInfluencers   = 1000
	maximoCategorias    = 100
	maximoAfiliados     = 1_000_000
	porcentajeMaximo    = 100
	cabeceraIdempotente = "Idempotency-Key"
)

var (
	canalesNotificacion = []string{"email", "sms", "push", "whatsapp"}
	tiposComision       = []string{"porcentaje", "fijo"}
	formatoMoneda       = regexp.MustCompile(`^[A-Z]{3}$`)
)

// solicitudCampana is the body of POST /campana-saga (the seeds' contract).
type solicitudCampana struct {
	CampaniaID  string               `json:"campania_id"`
	Nombre      string               `json:"nombre"`
	Tipo        string               `json:"tipo"`
	Presupuesto float64              `json:"presupuesto"`
	Marca       *eventos.Marca       `json:"marca"`
	Influencers []eventos.Influencer `json:"influencers"`
	// SimularFallo names the step that must fail (demos and tests); nil
	// when absent or null. An empty name is refused, not taken for absent.
	SimularFallo *string `json:"simular_fallo"`
	// SimularFalloCompensacion names a step whose compensation must fail too,
	// to reach COMPENSACION_FALLIDA.
	SimularFalloCompensacion *string `json:"simular_fallo_compensacion"`
}

// entradaCampana is the input of a campana saga: the shared contract plus the
// compensation-failure switch, which eventos.EntradaCampana does not carry.
type entradaCampana struct {
	eventos.EntradaCampana
	SimularFalloCompensacion string `json:"simular_fallo_compensacion,omitempty"`
}

// decodificarCampana decodes and validates the body of POST /campana-saga;
// pasos are the step names simular_fallo may name. Bad fields are added to
// cs and returned as one 400.
func decodificarCampana(cuerpo []byte, pasos []string, cs *campos) (solicitudCampana, error) {
	var s solicitudCampana
	if err := decodificar(cuerpo, &s, cs); err != nil {
		return s, err
	}
	s.validar(pasos, cs)
	return s, cs.error()
}

func (s *solicitudCampana) validar(pasos []string, cs *campos) {
	texto(cs, "campania_id", s.CampaniaID, largoID, false)
	texto(cs, "nombre", s.Nombre, largoTexto, true)
	texto(cs, "tipo", s.Tipo, largoTexto, true)
	presupuesto(cs, "presupuesto", s.Presupuesto)
	if s.Marca == nil {
		cs.falla("marca", "es obligatorio")
	} else {
		texto(cs, "marca.id_marca", s.Marca.IDMarca, largoID, true)
		texto(cs, "marca.nombre_marca", s.Marca.NombreMarca, largoTexto, true)
	}
	switch {
	case len(s.Influencers) == 0:
		cs.falla("influencers", "debe tener al menos un elemento")
	case len(s.Influencers) > maximoInfluencers:
		cs.falla("influencers", fmt.Sprintf("admite como máximo %d elementos", maximoInfluencers))
	}
	for i, inf := range s.Influencers {
		item := fmt.Sprintf("influencers[%d]", i)
		texto(cs, item+".nombre", inf.Nombre, largoTexto, true)
		texto(cs, item+".plataforma", inf.Plataforma, largoTexto, true)
	}
	fallo := paso(cs, "simular_fallo", s.SimularFallo, pasos)
	if s.SimularFalloCompensacion != nil {
		compensacion := paso(cs, "simular_fallo_compensacion", s.SimularFalloCompensacion, pasos)
		switch {
		case compensacion < 0:
			// paso reported it
		case s.SimularFallo == nil:
			cs.falla("simular_fallo_compensacion", "requiere simular_fallo: solo se compensa tras un fallo")
		case compensacion > fallo && fallo >= 0:
			cs.falla("simular_fallo_compensacion", "debe nombrar simular_fallo o un paso anterior: los posteriores no se compensan")
		}
	}
}

// entrada is the saga input of a valid request.
func (s *solicitudCampana) entrada(campaniaID string) entradaCampana {
	return entradaCampana{
		EntradaCampana: eventos.EntradaCampana{
			CampaniaID: campaniaID, Nombre: strings.TrimSpace(s.Nombre), Tipo: strings.TrimSpace(s.Tipo),
			Presupuesto: s.Presupuesto, Marca: s.Marca, Influencers: s.Influencers, SimularFallo: valorDe(s.SimularFallo),
		},
		SimularFalloCompensacion: valorDe(s.SimularFalloCompensacion),
	}
}

// solicitudLanzamiento is the body of POST
// /api/v1/comandos/lanzar-campania-completa.
type solicitudLanzamiento struct {
	CampaniaID          string                      `json:"campania_id"`
	Nombre              string                      `json:"nombre"`
	Descripcion         string                      `json:"descripcion"`
	Tipo                string                      `json:"tipo"`
	CanalPublicidad     string                      `json:"canal_publicidad"`
	Objetivo            string                      `json:"objetivo"`
	FechaInicio         *time.Time                  `json:"fecha_inicio"`
	FechaFin            *time.Time                  `json:"fecha_fin"`
	Presupuesto         float64                     `json:"presupuesto"`
	Moneda              string                      `json:"moneda"`
	Comision            *eventos.Comision           `json:"comision"`
	CriteriosAfiliados  *eventos.CriteriosAfiliados `json:"criterios_afiliados"`
	CanalesNotificacion []string                    `json:"canales_notificacion"`
	SimularFallo        *string                     `json:"simular_fallo"`
}

// decodificarLanzamiento decodes and validates the body of POST
// /api/v1/comandos/lanzar-campania-completa, like decodificarCampana.
func decodificarLanzamiento(cuerpo []byte, pasos []string, cs *campos) (solicitudLanzamiento, error) {
	var s solicitudLanzamiento
	if err := decodificar(cuerpo, &s, cs); err != nil {
		return s, err
	}
	s.validar(pasos, cs)
	return s, cs.error()
}

func (s *solicitudLanzamiento) validar(pasos []string, cs *campos) {
	texto(cs, "campania_id", s.CampaniaID, largoID, false)
	texto(cs, "nombre", s.Nombre, largoTexto, true)
	texto(cs, "descripcion", s.Descripcion, largoDescripcion, false)
	texto(cs, "tipo", s.Tipo, largoTexto, false)
	texto(cs, "canal_publicidad", s.CanalPublicidad, largoTexto, false)
	texto(cs, "objetivo", s.Objetivo, largoTexto, false)
	fechaEnRango(cs, "fecha_inicio", s.FechaInicio)
	fechaEnRango(cs, "fecha_fin", s.FechaFin)
	if s.FechaInicio != nil && s.FechaFin != nil && !s.FechaFin.After(*s.FechaInicio) {
		cs.falla("fecha_fin", "debe ser posterior a fecha_inicio")
	}
	presupuesto(cs, "presupuesto", s.Presupuesto)
	if !formatoMoneda.MatchString(s.Moneda) {
		cs.falla("moneda", "debe ser un código ISO 4217 de tres letras mayúsculas (por ejemplo COP)")
	}
	if s.Comision == nil {
		cs.falla("comision", "es obligatorio")
	} else {
		switch s.Comision.Tipo {
		case "porcentaje":
			if s.Comision.Valor <= 0 || s.Comision.Valor > porcentajeMaximo {
				cs.falla("comision.valor", "un porcentaje debe ser > 0 y <= 100")
			}
		case "fijo":
			if s.Comision.Valor <= 0 || s.Comision.Valor > presupuestoMaximo {
				cs.falla("comision.valor", "debe ser > 0 y <= 1e9")
			}
		default:
			cs.falla("comision.tipo", "debe ser uno de: "+strings.Join(tiposComision, ", "))
		}
	}
	if c := s.CriteriosAfiliados; c != nil {
		texto(cs, "criterios_afiliados.segmento_audiencia", c.SegmentoAudiencia, largoTexto, false)
		if len(c.Categorias) > maximoCategorias {
			cs.falla("criterios_afiliados.categorias", fmt.Sprintf("admite como máximo %d elementos", maximoCategorias))
		}
		for i, cat := range c.Categorias {
			texto(cs, fmt.Sprintf("criterios_afiliados.categorias[%d]", i), cat, largoTexto, true)
		}
		if c.MinSeguidores < 0 {
			cs.falla("criterios_afiliados.min_seguidores", "debe ser >= 0")
		}
		if c.Maximo < 0 || c.Maximo > maximoAfiliados {
			cs.falla("criterios_afiliados.maximo", fmt.Sprintf("debe ser >= 0 (0: sin límite) y <= %d", maximoAfiliados))
		}
	}
	if len(s.CanalesNotificacion) == 0 {
		cs.falla("canales_notificacion", "debe tener al menos un elemento")
	}
	vistos := map[string]bool{}
	for i, canal := range s.CanalesNotificacion {
		campo := fmt.Sprintf("canales_notificacion[%d]", i)
		switch {
		case !slices.Contains(canalesNotificacion, canal):
			cs.falla(campo, "debe ser uno de: "+strings.Join(canalesNotificacion, ", "))
		case vistos[canal]:
			cs.falla(campo, "canal repetido")
		}
		vistos[canal] = true
	}
	paso(cs, "simular_fallo", s.SimularFallo, pasos)
}

// entrada is the saga input of a valid request.
func (s *solicitudLanzamiento) entrada(campaniaID string) eventos.EntradaLanzamiento {
	e := eventos.EntradaLanzamiento{
		CampaniaID: campaniaID, Nombre: strings.TrimSpace(s.Nombre), Descripcion: s.Descripcion, Tipo: s.Tipo,
		CanalPublicidad: s.CanalPublicidad, Objetivo: s.Objetivo,
		FechaInicio: s.FechaInicio.UTC(), FechaFin: s.FechaFin.UTC(),
		Presupuesto: s.Presupuesto, Moneda: s.Moneda, Comision: *s.Comision,
		CanalesNotificacion: s.CanalesNotificacion, SimularFallo: valorDe(s.SimularFallo),
	}
	if s.CriteriosAfiliados != nil {
		e.CriteriosAfiliados = *s.CriteriosAfiliados
		if len(e.CriteriosAfiliados.Categorias) == 0 {
			e.CriteriosAfiliados.Categorias = nil
		}
	}
	return e
}

// texto checks a string field: required (not blank) when obligatorio, and at
// most maximo characters.
func texto(cs *campos, campo, valor string, maximo int, obligatorio bool) {
	switch {
	case obligatorio && strings.TrimSpace(valor) == "":
		cs.falla(campo, "es obligatorio")
	case utf8.RuneCountInString(valor) > maximo:
		cs.falla(campo, fmt.Sprintf("admite como máximo %d caracteres", maximo))
	}
}

// Campaign dates must fall in [fechaMinima, fechaMaxima): this also keeps
// them encodable as RFC 3339 once moved to UTC.
var (
	fechaMinima = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	fechaMaxima = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func fechaEnRango(cs *campos, campo string, f *time.Time) {
	switch {
	case f == nil:
		cs.falla(campo, "es obligatorio")
	case f.Before(fechaMinima) || !f.Before(fechaMaxima):
		cs.falla(campo, "debe estar entre 2000-01-01T00:00:00Z y 2100-01-01T00:00:00Z")
	}
}

func presupuesto(cs *campos, campo string, v float64) {
	switch {
	case v <= 0:
		cs.falla(campo, "debe ser > 0")
	case v > presupuestoMaximo:
		cs.falla(campo, "debe ser <= 1e9")
	}
}

// paso checks that valor, when present, names one of pasos (an empty name
// is refused); it returns its index, or -1.
func paso(cs *campos, campo string, valor *string, pasos []string) int {
	if valor == nil {
		return -1
	}
	i := slices.Index(pasos, *valor)
	if i < 0 {
		cs.falla(campo, "debe ser uno de los pasos: "+strings.Join(pasos, ", "))
	}
	return i
}

// valorDe is the value of an optional text, "" when absent.
func valorDe(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
