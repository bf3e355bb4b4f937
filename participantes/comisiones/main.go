// Command comisiones is the saga participant that configures what
// affiliates earn in a campaign launch (step configurar_comisiones_campania
// of the lanzar-campania-completa saga) and reverts that configuration when
// the saga compensates. Configuration: see package participantes.
package main

import "github.com/alpespartner/sagas/participantes"

func main() { participantes.Main(servicio()) }
