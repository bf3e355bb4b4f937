// Package coordinador is the saga coordinator. The root package holds only
// what every part shares; the parts live in subpackages: saga (the pure state
// machine and flow definitions), motor (the engine that persists each
// transition with its messages), almacen (MySQL and SQLite storage),
// mensajeria (the Pulsar relay and consumers), puente (the legacy
// choreography bridge), api (HTTP), bitacora (per-saga log files) and
// inspector (the web UI). Command cmd/coordinador wires them together.
package coordinador

// Servicio is the coordinator's name in message envelopes and logs.
const Servicio = "coordinador"
