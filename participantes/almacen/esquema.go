package almacen

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/sqldialecto"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// versionEsquemaRuntime is the version of esquemaRuntime: raise it when the
// runtime's tables change. 2: inbox.datos MEDIUMTEXT on MySQL (a step's
// output may reach eventos.MaximoSalida).
const versionEsquemaRuntime = 2

// componenteRuntime is the runtime's row in schema_version; each service
// has a row of its own, under its name.
const componenteRuntime = "runtime"

const crearTablaVersion = `CREATE TABLE IF NOT EXISTS schema_version (
	componente VARCHAR(100) NOT NULL PRIMARY KEY,
	version    INT          NOT NULL,
	aplicada   VARCHAR(32)  NOT NULL
)`

// versionesEsperadas are the schema versions this binary writes and
// expects, by component: the runtime's and the service's.
func versionesEsperadas(s *servicio.Servicio) map[string]int {
	return map[string]int{componenteRuntime: versionEsquemaRuntime, s.Nombre: max(s.VersionEsquema, 1)}
}

// migrar creates the tables if missing, inserts the seed rows that are
// missing and records the versions; safe when several instances start at
// once. With sinNuevas (Migrar) a version newer than the binary's is
// refused before anything runs; otherwise (migrating at start) it is kept.
func (a *Almacen) migrar(ctx context.Context, s *servicio.Servicio, comando string, sinNuevas bool) error {
	if _, err := a.db.ExecContext(ctx, crearTablaVersion); err != nil {
		return fmt.Errorf("migrar %s (schema_version): %w", a.donde, err)
	}
	if err := a.versionesAlDia(ctx, s, comando, false, sinNuevas); err != nil {
		return err
	}
	ddls := append(append([]string{}, esquemaRuntime...), s.Esquema...)
	if a.d.nombre == MySQL {
		ddls = append(append(ddls, esquemaRuntimeMySQL...), s.EsquemaMySQL...)
	}
	for _, ddl := range ddls {
		if _, err := a.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("migrar %s (%s): %w", a.donde, primeraLinea(ddl), err)
		}
	}
	for _, sem := range s.Semillas {
		q := fmt.Sprintf("%s %s (%s) VALUES (%s)", a.d.insertarIgnorando, sem.Tabla, strings.Join(sem.Columnas, ", "), sqldialecto.Marcadores(len(sem.Columnas)))
		for _, fila := range sem.Filas {
			if _, err := a.db.ExecContext(ctx, q, fila...); err != nil {
				return fmt.Errorf("semilla de %s: %w", sem.Tabla, err)
			}
		}
	}
	ahora := time.Now().UTC().Format(time.RFC3339)
	for componente, v := range versionesEsperadas(s) {
		// Only ever raised: a newer version was refused above.
		if _, err := a.db.ExecContext(ctx, "UPDATE schema_version SET version = ?, aplicada = ? WHERE componente = ? AND version < ?", v, ahora, componente, v); err != nil {
			return fmt.Errorf("registrar versión de %s en %s: %w", componente, a.donde, err)
		}
		if _, err := a.db.ExecContext(ctx, a.d.insertarIgnorando+" schema_version (componente, version, aplicada) VALUES (?, ?, ?)", componente, v, ahora); err != nil {
			return fmt.Errorf("registrar versión de %s en %s: %w", componente, a.donde, err)
		}
	}
	return nil
}

// comprobarEsquema refuses, with a *basedatos.EsquemaError, a database
// whose schema is not at the binary's versions. It changes nothing.
func (a *Almacen) comprobarEsquema(ctx context.Context, s *servicio.Servicio, comando string) error {
	return a.versionesAlDia(ctx, s, comando, true, true)
}

// versionesAlDia compares schema_version (missing: nothing applied) with the
// binary's versions: an older one is refused when completo, a newer one when
// sinNuevas.
func (a *Almacen) versionesAlDia(ctx context.Context, s *servicio.Servicio, comando string, completo, sinNuevas bool) error {
	actuales := map[string]int{}
	filas, err := a.db.QueryContext(ctx, "SELECT componente, version FROM schema_version")
	switch {
	case err != nil && sqldialecto.TablaInexistenteMySQL(err):
	case err != nil:
		return fmt.Errorf("consultar schema_version en %s: %w", a.donde, err)
	default:
		defer filas.Close()
		for filas.Next() {
			var c string
			var v int
			if err := filas.Scan(&c, &v); err != nil {
				return fmt.Errorf("consultar schema_version en %s: %w", a.donde, err)
			}
			actuales[c] = v
		}
		if err := filas.Err(); err != nil {
			return fmt.Errorf("consultar schema_version en %s: %w", a.donde, err)
		}
	}
	// The runtime first, so the message is stable.
	for _, c := range []string{componenteRuntime, s.Nombre} {
		necesaria, actual := versionesEsperadas(s)[c], actuales[c]
		if (sinNuevas && actual > necesaria) || (completo && actual < necesaria) {
			return &basedatos.EsquemaError{Base: fmt.Sprintf("%s (tablas de %s)", a.donde, c), Actual: actual, Necesaria: necesaria, Comando: comando}
		}
	}
	return nil
}
