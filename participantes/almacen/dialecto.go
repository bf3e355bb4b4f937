package almacen

import "github.com/alpespartner/sagas/internal/sqldialecto"

// Lengths of the inbox key columns; longer values must be refused as poison
// before they reach the database.
const (
	MaxSagaID = 191
	MaxPaso   = 100
	// MaxComando and MaxClave bound the command name and its idempotency
	// key (inbox.comando, inbox.clave_idempotencia).
	MaxComando = 100
	MaxClave   = 400
)

// esquemaRuntime is what the runtime itself needs in every service's store.
//
// inbox holds one row per (saga_id, paso, accion) processed, with the fields
// of the reply, written in the same transaction as the effect.
//
// bloqueos_paso holds one row per (saga_id, paso). An action and its
// compensation both upsert it first, so on MySQL they queue on its row lock
// even when they run on different instances, and the one that comes second
// sees what the first recorded. (On SQLite every write transaction already
// takes the database's write lock.)
var esquemaRuntime = []string{
	`CREATE TABLE IF NOT EXISTS inbox (
		saga_id VARCHAR(191) NOT NULL,
		paso VARCHAR(100) NOT NULL,
		accion VARCHAR(10) NOT NULL,
		comando VARCHAR(100) NOT NULL,
		clave_idempotencia VARCHAR(400) NOT NULL,
		resultado VARCHAR(20) NOT NULL,
		exito INT NOT NULL,
		error MEDIUMTEXT NULL,
		datos MEDIUMTEXT NOT NULL,
		respondido_ms BIGINT NOT NULL,
		procesado_en VARCHAR(30) NOT NULL,
		PRIMARY KEY (saga_id, paso, accion)
	)`,
	`CREATE TABLE IF NOT EXISTS bloqueos_paso (
		saga_id VARCHAR(191) NOT NULL,
		paso VARCHAR(100) NOT NULL,
		ultimo_comando VARCHAR(100) NOT NULL,
		actualizado_en VARCHAR(30) NOT NULL,
		PRIMARY KEY (saga_id, paso)
	)`,
}

// esquemaRuntimeMySQL widens, on MySQL/MariaDB, the inbox columns an older
// version created as TEXT (64 KiB there): a reply's datos may hold up to
// eventos.MaximoSalida (1 MiB). Idempotent; SQLite's TEXT has no such bound.
var esquemaRuntimeMySQL = []string{
	`ALTER TABLE inbox MODIFY datos MEDIUMTEXT NOT NULL, MODIFY error MEDIUMTEXT NULL`,
}

// dialecto holds the few differences between SQLite and MySQL/MariaDB.
type dialecto struct {
	nombre string
	// bloquearVarios upserts n bloqueos_paso rows (saga_id, paso,
	// ultimo_comando, actualizado_en) in one statement.
	bloquearVarios func(n int) string
	// insertarIgnorando starts an INSERT that skips rows already there.
	insertarIgnorando string
	duplicado         func(error) bool
	// reintentable reports an error after which the whole transaction may be
	// run again (deadlock, lock wait timeout, busy database).
	reintentable func(error) bool
}

var dialectoSQLite = dialecto{
	nombre: SQLite,
	bloquearVarios: func(n int) string {
		return `INSERT INTO bloqueos_paso (saga_id, paso, ultimo_comando, actualizado_en) VALUES ` + sqldialecto.Filas(n, "(?, ?, ?, ?)") +
			` ON CONFLICT (saga_id, paso) DO UPDATE SET ultimo_comando = excluded.ultimo_comando, actualizado_en = excluded.actualizado_en`
	},
	insertarIgnorando: sqldialecto.InsertarIgnorandoSQLite,
	duplicado:         sqldialecto.DuplicadoSQLite,
	reintentable:      sqldialecto.ReintentableSQLite,
}

var dialectoMySQL = dialecto{
	nombre: MySQL,
	bloquearVarios: func(n int) string {
		return `INSERT INTO bloqueos_paso (saga_id, paso, ultimo_comando, actualizado_en) VALUES ` + sqldialecto.Filas(n, "(?, ?, ?, ?)") +
			` ON DUPLICATE KEY UPDATE ultimo_comando = VALUES(ultimo_comando), actualizado_en = VALUES(actualizado_en)`
	},
	insertarIgnorando: sqldialecto.InsertarIgnorandoMySQL,
	duplicado:         sqldialecto.DuplicadoMySQL,
	reintentable:      sqldialecto.ReintentableMySQL,
}
