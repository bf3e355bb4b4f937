package almacen

// VersionEsquemaRuntime lets the external tests name the runtime tables' version.
const VersionEsquemaRuntime = versionEsquemaRuntime

// Preparadas is how many statements the store has prepared.
func (a *Almacen) Preparadas() int { return a.preparadas.Preparadas() }
