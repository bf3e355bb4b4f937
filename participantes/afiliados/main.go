// Command afiliados is the saga participant that reserves the affiliates
// eligible for a campaign launch (step solicitar_afiliados_elegibles of the
// lanzar-campania-completa saga) from its own registry, and releases them
// when the saga compensates. Configuration: see package participantes.
package main

import "github.com/alpespartner/sagas/participantes"

func main() { participantes.Main(servicio()) }
