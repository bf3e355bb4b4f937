package mensajeria

import (
	"context"
	"fmt"
	"slices"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
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

// Servicios lists the participant services the catalogue's flows use.
func Servicios(c saga.Catalogo) []string {
	var out []string
	for _, d := range c {
		for _, p := range d.Pasos {
			if !slices.Contains(out, p.Servicio) {
				out = append(out, p.Servicio)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Preparar creates the namespace with its policies (de-duplication,
// retention, BACKWARD_TRANSITIVE schema compatibility) and registers every
// topic's schema. Idempotent; several replicas may run it at once.
func Preparar(ctx context.Context, a *bus.Admin, t eventos.Topologia, servicios []string) error {
	if err := a.PrepararNamespace(ctx, t.Tenant, t.Namespace); err != nil {
		return err
	}
	e := NuevosEsquemas(t)
	topicos := []string{t.Respuestas(), t.Eventos()}
	for _, s := range servicios {
		topicos = append(topicos, t.Comandos(s))
	}
	for _, topico := range topicos {
		if err := a.RegistrarEsquema(ctx, topico, e.De(topico)); err != nil {
			return fmt.Errorf("preparar topología: %w", err)
		}
	}
	return nil
}
