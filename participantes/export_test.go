package participantes

// ServicioPrueba exposes the runtime's test service to the external tests.
func ServicioPrueba() Servicio { return servicioPrueba() }
