package almacen

// VersionEsquemaRuntime lets the external tests name the runtime tables' version.
const VersionEsquemaRuntime = versionEsquemaRuntime
