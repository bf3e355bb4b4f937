// Command influencer is the saga participant that notifies a campaign's
// influencers (step influencer of the campana saga) and cancels those
// notifications when the saga compensates. With no influencers in the input
// (a legacy CampanaCreada event) it picks them from its own registry by
// segmento_audiencia. Configuration: see package participantes.
package main

import "github.com/alpespartner/sagas/participantes"

func main() { participantes.Main(servicio()) }
