package almacen

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/alpespartner/sagas/internal/sqldialecto"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// columnasInbox are the inbox columns registrosDeInbox scans.
const columnasInbox = "saga_id, paso, accion, comando, clave_idempotencia, resultado, exito, error, datos, respondido_ms"

// leerInbox returns the inbox rows of one saga step by accion.
func leerInbox(ctx context.Context, q servicio.Ejecutor, sagaID, paso string) (map[string]bandeja.Registro, error) {
	filas, err := q.QueryContext(ctx, "SELECT "+columnasInbox+" FROM inbox WHERE saga_id = ? AND paso = ?", sagaID, paso)
	if err != nil {
		return nil, fmt.Errorf("leer inbox de %s/%s: %w", sagaID, paso, err)
	}
	regs, err := registrosDeInbox(filas)
	if err != nil {
		return nil, fmt.Errorf("leer inbox de %s/%s: %w", sagaID, paso, err)
	}
	if r := regs[pasoDe(sagaID, paso)]; r != nil {
		return r, nil
	}
	return map[string]bandeja.Registro{}, nil
}

// registrosDeInbox reads rows of columnasInbox by step (pasoDe), then by
// accion, and closes filas.
func registrosDeInbox(filas *sql.Rows) (map[string]map[string]bandeja.Registro, error) {
	defer filas.Close()
	out := map[string]map[string]bandeja.Registro{}
	for filas.Next() {
		var r bandeja.Registro
		var sagaID, paso string
		var exito int
		var msg sql.NullString
		if err := filas.Scan(&sagaID, &paso, &r.Accion, &r.Comando, &r.Clave, &r.Resultado, &exito, &msg, &r.Datos, &r.RespondidoMs); err != nil {
			return nil, err
		}
		r.Exito, r.Error = exito == 1, msg.String
		k := pasoDe(sagaID, paso)
		if out[k] == nil {
			out[k] = map[string]bandeja.Registro{}
		}
		out[k][r.Accion] = r
	}
	return out, filas.Err()
}

// errYaRegistrado: another instance recorded the same (saga_id, paso,
// accion) between our read and our insert.
var errYaRegistrado = errors.New("inbox: comando ya registrado por otra instancia")

// clavePaso names a step to lock and the command that locks it.
type clavePaso struct{ sagaID, paso, comando string }

// pasoDe is the map key of a step.
func pasoDe(sagaID, paso string) string { return sagaID + "\x00" + paso }

// bloquearYLeer upserts the lock rows of pasos in one statement, in sorted
// order, and reads their inbox rows in one query: by step (pasoDe), then by
// accion. With savepoint, it takes the savepoint of the effect
// (tomarSavepoint) between the two. On MySQL all go in one round trip.
func (a *Almacen) bloquearYLeer(ctx context.Context, tx servicio.Ejecutor, pasos []clavePaso, ahora time.Time, savepoint bool) (map[string]map[string]bandeja.Registro, error) {
	q, args, n, sagas := a.bloqueo(pasos, ahora)
	sel := "SELECT " + columnasInbox + " FROM inbox WHERE saga_id IN (" +
		sqldialecto.Marcadores(len(sagas)) + ")"
	var filas *sql.Rows
	var err error
	if a.d.nombre == MySQL {
		// One round trip (multiStatements): the driver skips the empty
		// results of the upsert and the savepoint and returns the query's
		// rows; a failed statement stops the query and is its error.
		if savepoint {
			q += ";\n" + tomarSavepoint
		}
		filas, err = tx.QueryContext(ctx, q+";\n"+sel, append(args, sagas...)...)
	} else if _, err = tx.ExecContext(ctx, q, args...); err == nil {
		if savepoint {
			_, err = tx.ExecContext(ctx, tomarSavepoint)
		}
		if err == nil {
			filas, err = tx.QueryContext(ctx, sel, sagas...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bloquear %d pasos y leer el inbox de %d sagas: %w", n, len(sagas), err)
	}
	// Rows of the sagas' other steps are read too (the index is by saga
	// first); they are dropped here.
	todos, err := registrosDeInbox(filas)
	if err != nil {
		return nil, fmt.Errorf("leer inbox de %d sagas: %w", len(sagas), err)
	}
	out := map[string]map[string]bandeja.Registro{}
	for _, k := range pasos {
		clave := pasoDe(k.sagaID, k.paso)
		if r := todos[clave]; r != nil {
			out[clave] = r
		}
	}
	return out, nil
}

// bloqueo is the upsert of the lock rows of pasos, in sorted order, one
// row per step (the last command named wins, as it would one by one), with
// its arguments, how many rows it locks and the sagas they belong to.
func (a *Almacen) bloqueo(pasos []clavePaso, ahora time.Time) (q string, args []any, n int, sagas []any) {
	orden := slices.Clone(pasos)
	slices.SortFunc(orden, func(x, y clavePaso) int {
		return cmp.Or(cmp.Compare(x.sagaID, y.sagaID), cmp.Compare(x.paso, y.paso))
	})
	for i, k := range orden {
		if i+1 < len(orden) && orden[i+1].sagaID == k.sagaID && orden[i+1].paso == k.paso {
			continue
		}
		if n == 0 || sagas[len(sagas)-1] != k.sagaID {
			sagas = append(sagas, k.sagaID)
		}
		args = append(args, k.sagaID, k.paso, k.comando, servicio.Momento(ahora))
		n++
	}
	return a.d.bloquearVarios(n), args, n, sagas
}

// sinInbox fails a text with MySQL's error 1242 ("Subquery returns more
// than 1 row") when any of n steps (saga_id, paso), its arguments, has an
// inbox row: a text of several statements stops at its first error, so
// nothing after it runs.
func sinInbox(n int) string {
	return "SELECT (SELECT 1 FROM (SELECT 1 UNION ALL SELECT 2) AS dos WHERE EXISTS (SELECT 1 FROM inbox WHERE " +
		strings.Repeat("(saga_id = ? AND paso = ?) OR ", n-1) + "(saga_id = ? AND paso = ?)))"
}

// registroDePaso is an inbox row to insert.
type registroDePaso struct {
	sagaID, paso string
	r            bandeja.Registro
}

// registrarVarios inserts inbox rows in one statement, after the effects'
// statements dif holds (nil: none); errYaRegistrado if another instance
// recorded one of them meanwhile. With effects in the same text a duplicate
// key may be theirs, so it is an error like any other: the command comes
// again and its inbox row, if another instance wrote it, decides it then.
func (a *Almacen) registrarVarios(ctx context.Context, tx servicio.Ejecutor, rs []registroDePaso, ahora time.Time, dif *diferidas) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO inbox (saga_id, paso, accion, comando, clave_idempotencia, resultado, exito, error, datos, respondido_ms, procesado_en) VALUES `)
	args := make([]any, 0, 11*len(rs))
	for i, x := range rs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		var msg any
		if x.r.Error != "" {
			msg = x.r.Error
		}
		exito := 0
		if x.r.Exito {
			exito = 1
		}
		args = append(args, x.sagaID, x.paso, x.r.Accion, x.r.Comando, x.r.Clave, x.r.Resultado, exito, msg, x.r.Datos, x.r.RespondidoMs, servicio.Momento(ahora))
	}
	texto, conEfectos := q.String(), false
	if dif != nil {
		texto, args, conEfectos = dif.con(texto, args)
	}
	_, err := tx.ExecContext(ctx, texto, args...)
	switch {
	case err == nil:
		return nil
	case conEfectos:
		return fmt.Errorf("efectos y registro de %d filas en inbox: %w", len(rs), err)
	case a.d.duplicado(err):
		return fmt.Errorf("%w: %d filas", errYaRegistrado, len(rs))
	default:
		return fmt.Errorf("registrar %d filas en inbox: %w", len(rs), err)
	}
}
