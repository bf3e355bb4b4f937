// Package servicio declares what a saga participant is: its name, domain
// tables, operations (a command and its compensation, each a function that
// runs inside the local transaction) and tables of effects, plus the helpers
// those functions use. It is the vocabulary shared by the runtime's store and
// adapter; services see it through package participantes.
package servicio

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/alpespartner/sagas/eventos"
)

// Servicio declares one participant: its name, its domain tables, the
// commands it serves and the effects it can list.
type Servicio struct {
	// Nombre is the service name: commands arrive on comandos-<Nombre>.
	Nombre string
	// Esquema holds the CREATE TABLE IF NOT EXISTS statements of the domain
	// tables. They must run unchanged on SQLite and on MySQL/MariaDB: use
	// VARCHAR, INT, BIGINT, DOUBLE and TEXT columns and PRIMARY KEY clauses.
	Esquema []string
	// EsquemaMySQL holds statements run after Esquema on MySQL/MariaDB only,
	// each idempotent (ALTER TABLE … MODIFY to widen a column of a table an
	// older version created; SQLite does not enforce VARCHAR lengths).
	EsquemaMySQL []string
	// Semillas are rows inserted at migration when missing (registries).
	Semillas []Semilla
	// VersionEsquema is the version of Esquema and Semillas (0 counts as 1):
	// raise it when they change, so a runtime that may not migrate (a
	// migration user is configured) refuses a store that lacks them.
	VersionEsquema int
	// Operaciones are the commands served, each with its compensation.
	Operaciones []Operacion
	// Efectos are the tables that hold the effects of the operations, listed
	// by the store and GET /efectos/{saga_id}.
	Efectos []TablaEfectos
	// FalloSemilla is the failure the seeds injected in this service, used
	// when SAGAS_FALLOS=semillas.
	FalloSemilla FalloSemilla
}

// Operacion is one command a service serves and the command that undoes it.
// Both functions run inside the local transaction that also records the
// inbox entry, so the effect and the record of having done it commit together.
type Operacion struct {
	Comando      string // e.g. NotificarMarca
	Compensacion string // e.g. CompensarNotificacionMarca
	// Ejecutar applies the effect. It returns the reply data (marshalled to
	// JSON) or an error: an error from Rechazar is a business failure, replied
	// and recorded as final; any other error rolls back and the command is
	// redelivered.
	Ejecutar Manejador
	// Compensar undoes the effect of Ejecutar for p.SagaID and p.Paso, keeping
	// the rows and changing their state. It must succeed when there is
	// nothing left to undo.
	Compensar Manejador
}

// Manejador runs one command inside the local transaction tx.
type Manejador func(ctx context.Context, tx Ejecutor, p Peticion) (any, error)

// Ejecutor runs SQL; *sql.Tx and *sql.DB implement it. Statements use ?
// placeholders, which both SQLite and MySQL accept.
//
// On MySQL the runtime holds an effect's ExecContext statements back and
// sends them with the command's inbox row and COMMIT, so writes cost no
// round trip of their own. Order is kept: a query, or reading a statement's
// result (RowsAffected, LastInsertId), sends what is held first. An error a
// held statement causes is returned by whatever sent it (the query, the
// result, or the commit, which redelivers the command) rather than by its
// ExecContext: code that must react to one statement's error reads its
// result.
type Ejecutor interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Peticion is what a Manejador gets to know about its command.
type Peticion struct {
	Comando *eventos.Comando
	SagaID  string
	Paso    string
	// Entrada is the saga input (eventos.EntradaCampana or
	// eventos.EntradaLanzamiento, by Comando.TipoSaga).
	Entrada json.RawMessage
	// Previos holds the reply data of the earlier steps, by step name.
	Previos map[string]json.RawMessage
	// Ahora is the time of processing, the same for every row it writes.
	Ahora time.Time
}

// LeerEntrada decodes the saga input into v. A malformed input is a business
// failure: the command can never succeed.
func (p Peticion) LeerEntrada(v any) error {
	if len(p.Entrada) == 0 {
		return Rechazar("el comando no trae entrada de la saga")
	}
	if err := json.Unmarshal(p.Entrada, v); err != nil {
		return Rechazar(fmt.Sprintf("entrada de la saga no válida: %v", err))
	}
	return nil
}

// LeerPrevio decodes the output of an earlier step into v and reports
// whether that step left one.
func (p Peticion) LeerPrevio(paso string, v any) (bool, error) {
	raw, ok := p.Previos[paso]
	if !ok || len(raw) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, Rechazar(fmt.Sprintf("salida del paso %s no válida: %v", paso, err))
	}
	return true, nil
}

// BuscarPrevio decodes into v the field campo of the first earlier step
// output (in step-name order) that has it, and reports whether one had it.
// A service finds what another left (e.g. afiliados_reservados) without
// knowing the name the saga definition gave that step.
func (p Peticion) BuscarPrevio(campo string, v any) (bool, error) {
	pasos := make([]string, 0, len(p.Previos))
	for paso := range p.Previos {
		pasos = append(pasos, paso)
	}
	slices.Sort(pasos)
	for _, paso := range pasos {
		var campos map[string]json.RawMessage
		if json.Unmarshal(p.Previos[paso], &campos) != nil {
			continue
		}
		if raw, ok := campos[campo]; ok {
			if err := json.Unmarshal(raw, v); err != nil {
				return false, Rechazar(fmt.Sprintf("campo %s de la salida del paso %s no válido: %v", campo, paso, err))
			}
			return true, nil
		}
	}
	return false, nil
}

// Momento formats t as stored in the domain and inbox tables: UTC with
// millisecond precision, a fixed width so that the text sorts as time does.
func Momento(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ErrorNegocio is a business failure of an action: the participant refuses
// the command for good. It is replied with exito=false and recorded as final.
type ErrorNegocio struct{ Motivo string }

func (e *ErrorNegocio) Error() string { return e.Motivo }

// Rechazar returns a business failure with the reason sent in the reply.
func Rechazar(motivo string) error { return &ErrorNegocio{Motivo: motivo} }

// ComoNegocio finds a business failure in err's chain.
func ComoNegocio(err error) (*ErrorNegocio, bool) {
	var e *ErrorNegocio
	return e, errors.As(err, &e)
}

// Semilla is a set of rows a migration inserts when they are missing.
type Semilla struct {
	Tabla    string
	Columnas []string
	Filas    [][]any
}

// TablaEfectos describes a domain table of effects. By convention such a
// table has the columns saga_id, paso, estado, detalle (JSON text) and
// actualizado_en, plus Clave, which tells the effects of one step apart.
type TablaEfectos struct {
	Tabla string
	Clave string
	// Activos are the states in which a row is an effect in force (for
	// example ENVIADA); any other state means it was undone.
	Activos []string
}

// Efecto is one row of a table of effects.
type Efecto struct {
	Tabla         string          `json:"tabla"`
	Paso          string          `json:"paso"`
	Clave         string          `json:"clave"`
	Estado        string          `json:"estado"`
	Activo        bool            `json:"activo"`
	Detalle       json.RawMessage `json:"detalle,omitempty"`
	ActualizadoEn string          `json:"actualizado_en"`
}

// FalloSemilla is a failure rate and message copied from the seeds.
type FalloSemilla struct {
	Tasa    float64
	Mensaje string
}

// CambiarEstado moves the rows of one saga step in tabla from estado desde to
// hasta and returns how many changed. Compensations use it: rows stay, their
// state says they were undone. tabla is a constant of the caller, never input.
func CambiarEstado(ctx context.Context, tx Ejecutor, tabla string, p Peticion, desde, hasta string) (int64, error) {
	res, err := tx.ExecContext(ctx,
		"UPDATE "+tabla+" SET estado = ?, actualizado_en = ? WHERE saga_id = ? AND paso = ? AND estado = ?",
		hasta, Momento(p.Ahora), p.SagaID, p.Paso, desde)
	if err != nil {
		return 0, fmt.Errorf("%s de %s a %s (saga %s, paso %s): %w", tabla, desde, hasta, p.SagaID, p.Paso, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: filas cambiadas: %w", tabla, err)
	}
	return n, nil
}

// Deshacer is the usual compensation: it moves the step's effect rows in
// tabla from desde to hasta and reports how many, under the key salida.
func Deshacer(tabla, desde, hasta, salida string) Manejador {
	return func(ctx context.Context, tx Ejecutor, p Peticion) (any, error) {
		n, err := CambiarEstado(ctx, tx, tabla, p, desde, hasta)
		return map[string]any{salida: n}, err
	}
}

// Detalle marshals v for a detalle column.
func Detalle(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("detalle: %w", err)
	}
	return string(b), nil
}

// Validar reports every problem of the declaration at once.
func (s *Servicio) Validar() error {
	var errs []error
	if s.Nombre == "" {
		errs = append(errs, errors.New("servicio sin nombre"))
	}
	if len(s.Operaciones) == 0 {
		errs = append(errs, fmt.Errorf("servicio %s sin operaciones", s.Nombre))
	}
	vistos := map[string]bool{}
	for i, op := range s.Operaciones {
		if op.Comando == "" || op.Compensacion == "" || op.Ejecutar == nil || op.Compensar == nil {
			errs = append(errs, fmt.Errorf("servicio %s: operación %d necesita comando, compensación y sus dos funciones", s.Nombre, i))
		}
		for _, n := range []string{op.Comando, op.Compensacion} {
			if vistos[n] {
				errs = append(errs, fmt.Errorf("servicio %s: comando %q repetido", s.Nombre, n))
			}
			vistos[n] = true
		}
	}
	for _, t := range s.Efectos {
		if t.Tabla == "" || t.Clave == "" || len(t.Activos) == 0 {
			errs = append(errs, fmt.Errorf("servicio %s: tabla de efectos %q necesita tabla, clave y estados activos", s.Nombre, t.Tabla))
		}
	}
	if s.FalloSemilla.Tasa < 0 || s.FalloSemilla.Tasa > 1 {
		errs = append(errs, fmt.Errorf("servicio %s: tasa de fallo de las semillas %v fuera de [0,1]", s.Nombre, s.FalloSemilla.Tasa))
	}
	return errors.Join(errs...)
}

// Operacion finds the operation of a command name and says which action
// the name is: eventos.Ejecutar for its command, eventos.Compensar for its
// compensation.
func (s *Servicio) Operacion(nombre string) (*Operacion, string, bool) {
	for i := range s.Operaciones {
		op := &s.Operaciones[i]
		switch nombre {
		case op.Comando:
			return op, eventos.Ejecutar, true
		case op.Compensacion:
			return op, eventos.Compensar, true
		}
	}
	return nil, "", false
}

// Activos counts the effects in force among efs.
func Activos(efs []Efecto) int {
	n := 0
	for _, e := range efs {
		if e.Activo {
			n++
		}
	}
	return n
}
