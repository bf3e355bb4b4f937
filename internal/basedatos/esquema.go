package basedatos

import (
	"errors"
	"fmt"
)

// ErrEsquema: the database's schema is not at the version the binary
// expects; EsquemaError says which.
var ErrEsquema = errors.New("versión del esquema incompatible")

// EsquemaError is ErrEsquema with the versions and the command that
// migrates.
type EsquemaError struct {
	Base      string // the database
	Actual    int    // highest version applied with every earlier one (0: none)
	Necesaria int    // the highest version the binary knows
	Comando   string // what migrates it, e.g. "coordinador -preparar"
}

func (e *EsquemaError) Error() string {
	if e.Actual > e.Necesaria {
		return fmt.Sprintf("el esquema de la base de datos %s está en la versión %d, más nueva que la %d que conoce este binario: lo migró un binario más nuevo; use esa versión del binario", e.Base, e.Actual, e.Necesaria)
	}
	return fmt.Sprintf("el esquema de la base de datos %s está en la versión %d y este binario necesita %d: ejecute `%s` con el usuario de migración (SAGAS_DB_MIGRATION_USER)", e.Base, e.Actual, e.Necesaria, e.Comando)
}

// Unwrap makes errors.Is(err, ErrEsquema) hold.
func (e *EsquemaError) Unwrap() error { return ErrEsquema }

// VersionContigua is the highest v such that versions 1..v are all in
// aplicadas, and the highest of aplicadas.
func VersionContigua(aplicadas map[int]bool) (contigua, maxima int) {
	for aplicadas[contigua+1] {
		contigua++
	}
	for v := range aplicadas {
		maxima = max(maxima, v)
	}
	return contigua, maxima
}
