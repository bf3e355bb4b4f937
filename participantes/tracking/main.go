// Command tracking is the saga participant that sets up tracking: for a
// campaign (step tracking of the campana saga, InicializarTracking) and for
// the conversions of a full launch (step inicializar_tracking_conversiones,
// InicializarTrackingConversiones). Compensations deactivate the
// configuration. Configuration: see package participantes.
package main

import "github.com/alpespartner/sagas/participantes"

func main() { participantes.Main(servicio()) }
