package almacen

import (
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// dialecto holds the few differences between SQLite and MySQL/MariaDB. The
// SQL is otherwise shared: both use ? placeholders.
type dialecto struct {
	nombre string
	// reclamar ends the SELECTs that claim rows (due sagas, outbox rows).
	// MySQL: FOR UPDATE SKIP LOCKED, so replicas split the rows. SQLite: empty;
	// the immediate transaction already excludes every other writer.
	reclamar string
	// upsertPaso ends the INSERT of changed steps so that existing rows are
	// updated in the same statement (one round trip for all changed steps).
	// A NULL datos_entrada keeps the stored one (see escrituraPasos);
	// upsertPasoPleno writes it as given.
	upsertPaso, upsertPasoPleno string
	// upsertSaga ends a multi-row INSERT of saga rows so that existing rows
	// get every column but saga_id (and clave_idempotencia) rewritten;
	// upsertSagaLote, of colsSagaLote, only the mutable ones.
	upsertSaga, upsertSagaLote string
	// insertarIgnorando starts an INSERT that skips rows whose key exists.
	insertarIgnorando string
	// bloquearLectura ends a SELECT whose rows the transaction will write:
	// FOR UPDATE on MySQL; empty on SQLite, whose writer holds the database.
	bloquearLectura string
	// borrarMensajes is the DELETE of n published outbox rows by id.
	borrarMensajes func(n int) string
	// prefijo is the predicate "column starts with ?" for saga ids, and
	// patron the value to bind to it.
	prefijo func(columna string) string
	patron  func(prefijo string) string
	// tiempo converts a time to the value bound for a time column.
	tiempo func(time.Time) any
	// duplicado reports a unique-key violation.
	duplicado func(error) bool
	// reintentable reports an error after which the whole transaction may be
	// retried (deadlock, lock wait timeout, busy database).
	reintentable func(error) bool
}

// columnasActualizables are the step columns an upsert rewrites; the row's
// identity (paso_id, saga_id, orden) and descripcion are left alone.
var columnasActualizables = []string{
	"nombre", "microservicio", "estado", "intento_numero", "timestamp_inicio", "timestamp_fin",
	"duracion_segundos", "datos_entrada", "datos_salida", "error_mensaje", "intento_compensacion",
	"timestamp_inicio_compensacion", "timestamp_fin_compensacion", "datos_salida_compensacion",
	"error_compensacion", "plazo",
}

func upsert(formato string) string { return asignar(columnasActualizables, formato) }

// upsertConservandoEntrada is upsert(formato), but datos_entrada is
// assigned conservar.
func upsertConservandoEntrada(formato, conservar string) string {
	partes := make([]string, len(columnasActualizables))
	for i, c := range columnasActualizables {
		if c == "datos_entrada" {
			partes[i] = conservar
		} else {
			partes[i] = strings.ReplaceAll(formato, "%c", c)
		}
	}
	return strings.Join(partes, ", ")
}

// asignar writes formato for each column, %c standing for its name.
func asignar(cols []string, formato string) string {
	partes := make([]string, len(cols))
	for i, c := range cols {
		partes[i] = strings.ReplaceAll(formato, "%c", c)
	}
	return strings.Join(partes, ", ")
}

var dialectoSQLite = dialecto{
	nombre:   "sqlite",
	reclamar: "",
	upsertPaso: " ON CONFLICT (paso_id) DO UPDATE SET " + upsertConservandoEntrada("%c = excluded.%c",
		"datos_entrada = COALESCE(excluded.datos_entrada, datos_entrada)"),
	upsertPasoPleno:   " ON CONFLICT (paso_id) DO UPDATE SET " + upsert("%c = excluded.%c"),
	upsertSaga:        " ON CONFLICT (saga_id) DO UPDATE SET " + asignar(colsSaga[1:], "%c = excluded.%c"),
	upsertSagaLote:    " ON CONFLICT (saga_id) DO UPDATE SET " + asignar(colsSaga[colsMutables:], "%c = excluded.%c"),
	insertarIgnorando: sqldialecto.InsertarIgnorandoSQLite,
	borrarMensajes:    func(n int) string { return "DELETE FROM outbox WHERE id IN (" + sqldialecto.Marcadores(n) + ")" },
	// GLOB is case-sensitive like MySQL's binary collation (LIKE is not in
	// SQLite) and can use the primary key index.
	prefijo: func(c string) string { return c + " GLOB ?" },
	patron: func(p string) string {
		r := strings.NewReplacer("*", "[*]", "?", "[?]", "[", "[[]")
		return r.Replace(p) + "*"
	},
	tiempo: func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return normalizar(t).Format(formatoSQLite)
	},
	duplicado:    sqldialecto.DuplicadoSQLite,
	reintentable: sqldialecto.ReintentableSQLite,
}

var dialectoMySQL = dialecto{
	nombre:   "mysql",
	reclamar: " FOR UPDATE SKIP LOCKED",
	// VALUES() works on MariaDB and MySQL (deprecated there since 8.0.20 in
	// favour of a row alias that MariaDB does not parse).
	upsertPaso: " ON DUPLICATE KEY UPDATE " + upsertConservandoEntrada("%c = VALUES(%c)",
		"datos_entrada = COALESCE(VALUES(datos_entrada), datos_entrada)"),
	upsertPasoPleno:   " ON DUPLICATE KEY UPDATE " + upsert("%c = VALUES(%c)"),
	upsertSaga:        " ON DUPLICATE KEY UPDATE " + asignar(colsSaga[1:], "%c = VALUES(%c)"),
	upsertSagaLote:    " ON DUPLICATE KEY UPDATE " + asignar(colsSaga[colsMutables:], "%c = VALUES(%c)"),
	bloquearLectura:   " FOR UPDATE",
	insertarIgnorando: sqldialecto.InsertarIgnorandoMySQL,
	// On a small outbox MariaDB plans "id IN (...)" as a full scan (index
	// hints are ignored), and InnoDB's DELETE then waits on every row another
	// drain holds: concurrent drains deadlock. ORDER BY id LIMIT makes it a
	// range scan of the primary key that touches only the listed rows.
	borrarMensajes: func(n int) string {
		return "DELETE FROM outbox WHERE id IN (" + sqldialecto.Marcadores(n) + ") ORDER BY id LIMIT " + strconv.Itoa(n)
	},
	prefijo: func(c string) string { return c + " LIKE ? ESCAPE '!'" },
	patron: func(p string) string {
		r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
		return r.Replace(p) + "%"
	},
	tiempo: func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		// Truncate here: DATETIME(6) would round on MySQL.
		return normalizar(t)
	},
	duplicado:    sqldialecto.DuplicadoMySQL,
	reintentable: sqldialecto.ReintentableMySQL,
}
