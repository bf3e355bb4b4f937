package eventos

import "fmt"

// Topologia names our topics inside one Pulsar tenant/namespace.
type Topologia struct {
	Tenant    string // e.g. alpespartner
	Namespace string // e.g. sagas
}

// TopologiaPorDefecto is alpespartner/sagas.
var TopologiaPorDefecto = Topologia{Tenant: "alpespartner", Namespace: "sagas"}

// NS returns tenant/namespace.
func (t Topologia) NS() string { return t.Tenant + "/" + t.Namespace }

func (t Topologia) topico(nombre string) string {
	return fmt.Sprintf("persistent://%s/%s/%s", t.Tenant, t.Namespace, nombre)
}

// Comandos is the command topic of a participant service.
func (t Topologia) Comandos(servicio string) string { return t.topico("comandos-" + servicio) }

// Respuestas is the topic all participants reply on.
func (t Topologia) Respuestas() string { return t.topico("respuestas-saga") }

// Eventos is the topic of saga outcomes.
func (t Topologia) Eventos() string { return t.topico("eventos-saga") }

// DLQ is the dead-letter topic of a topic.
func DLQ(topico string) string { return topico + "-DLQ" }

// Legacy topics of the original system (public/default, short names).
const (
	TopicoLegacyCampania       = "persistent://public/default/eventos-campania"
	TopicoLegacyLanzarCompleta = "persistent://public/default/comando-lanzar-campania-completa"
)
