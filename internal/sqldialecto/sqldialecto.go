// Package sqldialecto holds the SQL details that differ between SQLite and
// MySQL/MariaDB and that every store of the project needs: how errors are
// classified (duplicate key, retryable transaction) and how multi-row
// statements are written. It keeps no state and opens nothing.
package sqldialecto

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// MySQL/MariaDB error numbers the stores react to.
const (
	ErClaveDuplicada   = 1062
	ErEsperaDeBloqueo  = 1205
	ErInterbloqueo     = 1213
	ErTablaInexistente = 1146
)

// Starts of an INSERT that skips the rows whose key already exists.
const (
	InsertarIgnorandoSQLite = "INSERT OR IGNORE INTO"
	InsertarIgnorandoMySQL  = "INSERT IGNORE INTO"
)

// NumeroMySQL is the server's error number of err, or 0 when err does not
// come from a MySQL server.
func NumeroMySQL(err error) uint16 {
	var e *mysql.MySQLError
	if errors.As(err, &e) {
		return e.Number
	}
	return 0
}

// TablaInexistenteMySQL reports a missing table on MySQL/MariaDB.
func TablaInexistenteMySQL(err error) bool { return NumeroMySQL(err) == ErTablaInexistente }

// DuplicadoMySQL reports a unique-key violation on MySQL/MariaDB.
func DuplicadoMySQL(err error) bool { return NumeroMySQL(err) == ErClaveDuplicada }

// ReintentableMySQL reports an error after which the whole transaction may be
// run again on MySQL/MariaDB: a deadlock or a lock wait timeout.
func ReintentableMySQL(err error) bool {
	n := NumeroMySQL(err)
	return n == ErInterbloqueo || n == ErEsperaDeBloqueo
}

// DuplicadoSQLite reports a primary-key or unique violation on SQLite.
func DuplicadoSQLite(err error) bool {
	c, ok := codigoSQLite(err)
	return ok && (c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// ReintentableSQLite reports an error after which the whole transaction may
// be run again on SQLite: the database (or a table) was busy or locked.
func ReintentableSQLite(err error) bool {
	c, ok := codigoSQLite(err)
	c &= 0xff // the primary code: extended codes such as SQLITE_BUSY_SNAPSHOT count too
	return ok && (c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED)
}

func codigoSQLite(err error) (int, bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.Code(), true
}

// Marcadores returns n comma-separated placeholders: "?, ?, ?".
func Marcadores(n int) string { return Filas(n, "?") }

// Filas repeats fila n times, comma-separated: the VALUES of a multi-row
// INSERT, for example Filas(2, "(?, ?)") is "(?, ?), (?, ?)".
func Filas(n int, fila string) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat(fila+", ", n-1) + fila
}
