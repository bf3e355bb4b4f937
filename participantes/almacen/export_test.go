package almacen

// VersionEsquemaRuntime lets the external tests name the runtime tables' version.
const VersionEsquemaRuntime = versionEsquemaRuntime

// Preparadas is how many statements the store has prepared.
func (a *Almacen) Preparadas() int { return a.preparadas.Preparadas() }

// PreparandoSentencias is how many statements are being prepared.
func (a *Almacen) PreparandoSentencias() int { return a.preparadas.EnCurso() }
