package mensajeria

import (
	"slices"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
)

// Esquemas maps each of our topics to its Avro schema.
type Esquemas struct {
	t eventos.Topologia
}

// NuevosEsquemas returns the topic → schema mapping of a topology.
func NuevosEsquemas(t eventos.Topologia) Esquemas { return Esquemas{t} }

// De returns the schema text of topic, or "" for topics without one.
func (e Esquemas) De(topico string) string {
	switch {
	case topico == e.t.Respuestas():
		return esquemas.MustAvro(esquemas.RespuestaSaga)
	case topico == e.t.Eventos():
		return esquemas.MustAvro(esquemas.EventoSaga)
	case len(topico) > len(e.t.Comandos("")) && topico[:len(e.t.Comandos(""))] == e.t.Comandos(""):
		return esquemas.MustAvro(esquemas.ComandoSaga)
	}
	return ""
}

// Servicios lists the participant services the catalogue's flows use, in
// every version it knows.
func Servicios(c saga.Catalogo) []string {
	var out []string
	for tipo := range c {
		for _, v := range c.Versiones(tipo) {
			d, err := c.BuscarVersion(tipo, v)
			if err != nil {
				continue
			}
			for _, p := range d.Pasos {
				if !slices.Contains(out, p.Servicio) {
					out = append(out, p.Servicio)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
