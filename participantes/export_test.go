package participantes

import "github.com/alpespartner/sagas/participantes/internal/prueba"

// ServicioPrueba exposes the runtime's test service to the external tests.
func ServicioPrueba() Servicio { return prueba.Servicio() }
