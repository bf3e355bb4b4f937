// Command marca is the saga participant that notifies the brand of a
// campaign (step marca of the campana saga) and cancels the notification when
// the saga compensates. With no brand in the input (a legacy CampanaCreada
// event) it picks one from its own registry by canal_publicidad.
// Configuration: see package participantes.
package main

import "github.com/alpespartner/sagas/participantes"

func main() { participantes.Main(servicio()) }
