package eventos

import (
	"encoding/json"
	"time"
)

// DatosComando is the JSON carried in Comando.Datos: the saga's input and the
// outputs of the steps before this one, by step name.
type DatosComando struct {
	Entrada json.RawMessage            `json:"entrada"`
	Previos map[string]json.RawMessage `json:"previos"`
}

// Marca is the brand of a campaign.
type Marca struct {
	IDMarca     string `json:"id_marca"`
	NombreMarca string `json:"nombre_marca"`
}

// Influencer is an influencer to notify.
type Influencer struct {
	Nombre     string `json:"nombre"`
	Plataforma string `json:"plataforma"`
}

// EntradaCampana is the input of a campana saga (POST /campana-saga, or a
// legacy EventoCampaniaCreada, which names no brand and no influencers: the
// participants then pick from their own registries by segment and channel).
type EntradaCampana struct {
	CampaniaID        string       `json:"campania_id,omitempty"`
	Nombre            string       `json:"nombre"`
	Tipo              string       `json:"tipo,omitempty"`
	Presupuesto       float64      `json:"presupuesto"`
	Marca             *Marca       `json:"marca,omitempty"`
	Influencers       []Influencer `json:"influencers,omitempty"`
	Descripcion       string       `json:"descripcion,omitempty"`
	CanalPublicidad   string       `json:"canal_publicidad,omitempty"`
	Objetivo          string       `json:"objetivo,omitempty"`
	SegmentoAudiencia string       `json:"segmento_audiencia,omitempty"`
	Moneda            string       `json:"moneda,omitempty"`
	FechaInicio       *time.Time   `json:"fecha_inicio,omitempty"`
	FechaFin          *time.Time   `json:"fecha_fin,omitempty"`
	// SimularFallo names a step (or service) whose action must fail, and
	// SimularFalloCompensacion one whose compensation must fail (demos and
	// tests; the latter reaches COMPENSACION_FALLIDA).
	SimularFallo             string `json:"simular_fallo,omitempty"`
	SimularFalloCompensacion string `json:"simular_fallo_compensacion,omitempty"`
}

// Comision configures what affiliates earn.
type Comision struct {
	Tipo  string  `json:"tipo"` // porcentaje | fijo
	Valor float64 `json:"valor"`
}

// CriteriosAfiliados selects the eligible affiliates.
type CriteriosAfiliados struct {
	SegmentoAudiencia string   `json:"segmento_audiencia,omitempty"`
	Categorias        []string `json:"categorias,omitempty"`
	MinSeguidores     int      `json:"min_seguidores,omitempty"`
	Maximo            int      `json:"maximo,omitempty"`
}

// EntradaLanzamiento is the input of a lanzar-campania-completa saga.
type EntradaLanzamiento struct {
	CampaniaID          string             `json:"campania_id"`
	Nombre              string             `json:"nombre"`
	Descripcion         string             `json:"descripcion,omitempty"`
	Tipo                string             `json:"tipo,omitempty"`
	CanalPublicidad     string             `json:"canal_publicidad,omitempty"`
	Objetivo            string             `json:"objetivo,omitempty"`
	FechaInicio         time.Time          `json:"fecha_inicio"`
	FechaFin            time.Time          `json:"fecha_fin"`
	Presupuesto         float64            `json:"presupuesto"`
	Moneda              string             `json:"moneda"`
	Comision            Comision           `json:"comision"`
	CriteriosAfiliados  CriteriosAfiliados `json:"criterios_afiliados"`
	CanalesNotificacion []string           `json:"canales_notificacion"`
	// SimularFallo and SimularFalloCompensacion: as in EntradaCampana.
	SimularFallo             string `json:"simular_fallo,omitempty"`
	SimularFalloCompensacion string `json:"simular_fallo_compensacion,omitempty"`
}
