package puente

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/google/uuid"
)

// The exactly-once keys of legacy messages (the package documentation states
// the rules; these functions are them).

// ClaveEventoCampania is the idempotency key of a legacy EventoCampaniaCreada:
// "legado:eventos-campania:<id>:<id_campania>", the envelope id together with
// the campaign id, because legacy producers reuse envelope ids. A ':' or '%'
// in the envelope id is percent-encoded, so the key names one pair (id "a:b"
// with campaign "c" and id "a" with campaign "b:c" are two keys); ids without
// them keep the key they always had.
func ClaveEventoCampania(id, idCampania string) string {
	return "legado:eventos-campania:" + segmentoClave(id) + ":" + idCampania
}

// ClaveLanzamiento is the idempotency key of a legacy
// ComandoLanzarCampaniaCompleta, "legado:lanzar:<id>": the envelope id is
// also the saga id (and names the campaign, see CampaniaDeLanzamiento), so
// it is the command's business key. The command's content goes with it as
// the request's fingerprint (huellaLanzamiento).
func ClaveLanzamiento(id string) string { return "legado:lanzar:" + id }

// CampaniaDeLanzamiento is the campaign id of the saga started by a legacy
// launch command: a UUID v5 of the envelope id, the same for every copy.
func CampaniaDeLanzamiento(id string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(espacioCampaniaLegado+id)).String()
}

var escaparSegmento = strings.NewReplacer("%", "%25", ":", "%3A")

// segmentoClave makes s one ':'-free segment of a key, injectively.
func segmentoClave(s string) string {
	if !strings.ContainsAny(s, ":%") {
		return s
	}
	return escaparSegmento.Replace(s)
}

// huellaLanzamiento fingerprints a launch command's payload as the legacy
// producer sent it (not the saga input, whose defaults may change between
// versions): the SHA-256 of its fields as canonical JSON, dates in epoch ms.
func huellaLanzamiento(c camposLegado) (string, error) {
	carga := struct {
		Nombre            string  `json:"nombre"`
		Descripcion       string  `json:"descripcion"`
		Tipo              string  `json:"tipo"`
		CanalPublicidad   string  `json:"canal_publicidad"`
		Objetivo          string  `json:"objetivo"`
		FechaInicio       *int64  `json:"fecha_inicio"`
		FechaFin          *int64  `json:"fecha_fin"`
		Presupuesto       float64 `json:"presupuesto"`
		Moneda            string  `json:"moneda"`
		SegmentoAudiencia string  `json:"segmento_audiencia"`
	}{c.nombre, c.descripcion, c.tipo, c.canal, c.objetivo, nil, nil, c.presupuesto, c.moneda, c.segmento}
	if c.inicio != nil {
		v := c.inicio.UnixMilli()
		carga.FechaInicio = &v
	}
	if c.fin != nil {
		v := c.fin.UnixMilli()
		carga.FechaFin = &v
	}
	b, err := json.Marshal(carga)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}
