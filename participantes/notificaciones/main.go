// Command notificaciones is the saga participant that prepares a
// campaign launch's notifications, one per channel (step
// preparar_notificaciones_campania of the lanzar-campania-completa saga), and
// cancels them when the saga compensates. Configuration: see package
// participantes.
package main

import "github.com/alpespartner/sagas/participantes"

func main() { participantes.Main(servicio()) }
