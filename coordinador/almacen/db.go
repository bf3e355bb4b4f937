package almacen

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/preparadas"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// Store types accepted in Config.Tipo.
const (
	TipoSQLite = "sqlite"
	TipoMySQL  = "mysql"
)

// MaxConexionesPorDefecto is the pool size when Config.MaxConexiones is 0.
const MaxConexionesPorDefecto = 32

// DB is the Store on SQLite or MySQL/MariaDB. It is safe for concurrent use.
type DB struct {
	sql *sql.DB
	d   dialecto
	// base names the database for messages: the MySQL database or the
	// SQLite file.
	base string
	// creaciones groups concurrent CrearSaga calls into one transaction.
	creaciones grupoCreacion
	// escritor serialises write transactions on SQLite (nil on MySQL). SQLite
	// runs one writer at a time anyway; queueing here instead of in SQLite's
	// busy handler, which polls with sleeps of up to 100 ms, keeps latency low
	// and lets a waiting caller give up with its context.
	escritor chan struct{}
	// drenando serialises DrenarOutbox on SQLite (nil on MySQL), which
	// publishes outside any transaction: two drains of one process must not
	// publish the same rows.
	drenando chan struct{}
	// preparadas caches the prepared statements of the hot path.
	preparadas *preparadas.Cache
	// idsConsecutivos: a multi-row INSERT gets consecutive AUTO_INCREMENT
	// ids (SQLite, one writer; MySQL unless innodb_autoinc_lock_mode=2 or
	// auto_increment_increment > 1), so
	// the ids of the outbox rows a transaction wrote follow from its
	// LastInsertId. See AlConfirmar.
	idsConsecutivos bool
	// alConfirmar receives the outbox rows of each committed transaction.
	alConfirmar func([]Mensaje)
	// cache remembers, on MySQL, the sagas this process committed last.
	cache cacheSagas
}

var _ Store = (*DB)(nil)

// Validar reports every problem of the configuration at once; each message
// names the field.
func (c Config) Validar() error {
	var errs []error
	switch c.Tipo {
	case TipoSQLite:
		switch {
		case c.Ruta == "":
			errs = append(errs, errors.New("almacen: Config.Ruta vacía (obligatoria con Tipo sqlite)"))
		case strings.Contains(c.Ruta, ":memory:") || strings.Contains(c.Ruta, "mode=memory"):
			errs = append(errs, fmt.Errorf("almacen: Config.Ruta %q: SQLite en memoria no está soportado, use un fichero temporal", c.Ruta))
		case strings.Contains(c.Ruta, "?"):
			errs = append(errs, fmt.Errorf("almacen: Config.Ruta %q no puede llevar parámetros (?...): el almacén fija los suyos", c.Ruta))
		}
	case TipoMySQL:
		if c.DSN == "" {
			errs = append(errs, errors.New("almacen: Config.DSN vacío (obligatorio con Tipo mysql)"))
		} else if cfg, err := mysql.ParseDSN(c.DSN); err != nil {
			errs = append(errs, fmt.Errorf("almacen: Config.DSN no válido: %w", err))
		} else if cfg.DBName == "" {
			errs = append(errs, errors.New("almacen: Config.DSN sin nombre de base de datos (…/sagas)"))
		}
	case "":
		errs = append(errs, errors.New("almacen: Config.Tipo vacío (sqlite o mysql)"))
	default:
		errs = append(errs, fmt.Errorf("almacen: Config.Tipo %q no válido (sqlite o mysql)", c.Tipo))
	}
	if c.MaxConexiones < 0 {
		errs = append(errs, fmt.Errorf("almacen: Config.MaxConexiones %d negativo", c.MaxConexiones))
	}
	return errors.Join(errs...)
}

// Abrir opens the database that c names, checks that it answers, and brings
// its schema up to date with the embedded migrations (safe when several
// coordinator replicas start at once; a schema newer than the binary knows
// is left as it is). With c.SoloComprobar (MySQL) it runs
// no DDL and refuses, with a *basedatos.EsquemaError, a schema that is not
// at the version the binary expects; otherwise a missing MySQL database is
// created.
func Abrir(ctx context.Context, c Config) (*DB, error) {
	db, err := abrir(ctx, c)
	if err != nil && sqldialecto.NumeroMySQL(err) == erBaseInexistente {
		if c.SoloComprobar {
			return nil, &basedatos.EsquemaError{Base: baseDe(c.DSN), Necesaria: VersionEsquema(), Comando: ComandoMigrar}
		}
		// The user that migrates creates the database too.
		if err := crearBaseMySQL(ctx, c.DSN); err != nil {
			return nil, err
		}
		db, err = abrir(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	if c.SoloComprobar && c.Tipo == TipoMySQL {
		err = db.comprobarEsquema(ctx)
	} else {
		err = db.migrar(ctx, false)
	}
	if err != nil {
		db.sql.Close()
		return nil, err
	}
	if c.Tipo == TipoMySQL {
		// Modes 0 and 1 give a multi-row "simple insert" consecutive ids;
		// mode 2 (MySQL 8's default) may interleave concurrent inserts, and
		// an auto_increment_increment above 1 (Galera, multi-primary
		// replication) spaces them.
		var modo, paso int
		if err := db.sql.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").Scan(&modo, &paso); err == nil {
			db.idsConsecutivos = modo != 2 && paso == 1
		}
	}
	return db, nil
}

// Migrar opens the database that c names (c.DSN as the migration user, on
// MySQL), applies the migrations not yet applied, and closes it: the
// provisioning step. It refuses a schema newer than the binary knows.
func Migrar(ctx context.Context, c Config) error {
	c.MaxConexiones = 1
	if c.Tipo == TipoMySQL {
		if err := crearBaseMySQL(ctx, c.DSN); err != nil {
			return err
		}
	}
	db, err := abrir(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.migrar(ctx, true)
}

// erBaseInexistente is MySQL's "Unknown database".
const erBaseInexistente = 1049

// crearBaseMySQL creates the database dsn names when missing, as the user
// dsn names (the migration user).
func crearBaseMySQL(ctx context.Context, dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("almacen: Config.DSN no válido: %w", err)
	}
	base := cfg.DBName
	if base == "" || strings.Contains(base, "`") {
		return fmt.Errorf("almacen: nombre de base de datos %q no válido", base)
	}
	cfg.DBName = ""
	con, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("almacen: Config.DSN no válido: %w", err)
	}
	db := sql.OpenDB(con)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+base+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return fmt.Errorf("crear base de datos %s: %w", base, basedatos.Explicar(ctx, err, cfg))
	}
	return nil
}

// baseDe is the database a DSN names, for messages.
func baseDe(dsn string) string {
	if cfg, err := mysql.ParseDSN(dsn); err == nil {
		return cfg.DBName
	}
	return "mysql"
}

// abrir opens the pool and checks that the database answers.
func abrir(ctx context.Context, c Config) (*DB, error) {
	if err := c.Validar(); err != nil {
		return nil, err
	}
	n := c.MaxConexiones
	if n == 0 {
		n = MaxConexionesPorDefecto
	}
	db := &DB{}
	switch c.Tipo {
	case TipoSQLite:
		sqldb, err := sql.Open("sqlite", dsnSQLite(c.Ruta))
		if err != nil {
			return nil, fmt.Errorf("abrir sqlite %s: %w", c.Ruta, err)
		}
		db.sql, db.d, db.base = sqldb, dialectoSQLite, c.Ruta
		db.escritor = make(chan struct{}, 1)
		db.drenando = make(chan struct{}, 1)
		db.idsConsecutivos = true
	case TipoMySQL:
		conector, err := conectorMySQL(c.DSN)
		if err != nil {
			return nil, err
		}
		db.sql, db.d, db.base = sql.OpenDB(conector), dialectoMySQL, baseDe(c.DSN)
		db.sql.SetConnMaxLifetime(30 * time.Minute)
		db.sql.SetConnMaxIdleTime(5 * time.Minute)
	}
	db.sql.SetMaxOpenConns(n)
	db.sql.SetMaxIdleConns(n)
	db.preparadas = preparadas.Nueva(db.sql, 0)
	if err := db.pingInicial(ctx); err != nil {
		db.sql.Close()
		if c.Tipo == TipoMySQL {
			if cfg, perr := mysql.ParseDSN(c.DSN); perr == nil {
				err = basedatos.Explicar(ctx, err, cfg)
			}
		}
		return nil, err
	}
	return db, nil
}

// dsnSQLite adds the connection settings every SQLite connection needs: WAL
// (readers never block the writer), a busy timeout (for other processes, such
// as an operator's sqlite3 shell), foreign keys, full fsync on commit (a
// committed transition survives a power cut, since its messages may already be
// published), and BEGIN IMMEDIATE so a write transaction takes the write lock
// up front instead of failing when it upgrades from a read.
func dsnSQLite(ruta string) string {
	return ruta + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_txlock=immediate"
}

// conectorMySQL forces what the store relies on: parseTime (DATETIME columns
// scan as time.Time), client-side interpolation of parameters for the
// statements not in the prepared cache (one round trip each instead of
// prepare, execute and close), and multiStatements, so that a transaction's
// writes go in one round trip (ejecutarJuntas). Each new connection is set to READ COMMITTED:
// a stale optimistic UPDATE then sees the committed version and fails its
// check, locking reads skip or lock only matching rows (no gap locks), and no
// extra statement is needed per transaction.
func conectorMySQL(dsn string) (driver.Connector, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("almacen: Config.DSN no válido: %w", err)
	}
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	cfg.MultiStatements = true // for ejecutarJuntas
	if cfg.Loc == nil {
		cfg.Loc = time.UTC
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("almacen: Config.DSN no válido: %w", err)
	}
	return mysqltx.Conector(conectorReadCommitted{c}), nil
}

type conectorReadCommitted struct{ driver.Connector }

func (c conectorReadCommitted) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("almacen: el driver mysql no implementa ExecerContext")
	}
	if _, err := ex.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("almacen: fijar READ COMMITTED: %w", err)
	}
	return conn, nil
}

// pingInicial is Ping, retried for a few seconds while SQLite reports the
// file busy: the first connection switches a new file to WAL, which takes an
// exclusive lock that SQLite's busy handler does not wait for, so two
// processes (or two DBs) opening a new file at once can collide. Once the
// file is in WAL mode, which is persistent, this cannot happen again.
func (db *DB) pingInicial(ctx context.Context) error {
	for intento := 1; ; intento++ {
		err := db.Ping(ctx)
		if err == nil || !db.d.reintentable(err) || intento == 50 {
			return err
		}
		if err := esperar(ctx, 50); err != nil {
			return err
		}
	}
}

// Ping checks that the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.d.nombre, err)
	}
	return nil
}

// Close closes the pool. Calls in flight may fail.
func (db *DB) Close() error {
	db.preparadas.Close()
	return db.sql.Close()
}

// Tipo says which database this is: TipoSQLite or TipoMySQL.
func (db *DB) Tipo() string { return db.d.nombre }

// ejecutor is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type ejecutor = preparadas.Ejecutor

// bloquearEscritura waits for the SQLite writer slot (a no-op on MySQL) and
// returns the function that frees it.
func (db *DB) bloquearEscritura(ctx context.Context) (func(), error) {
	if db.escritor == nil {
		return func() {}, nil
	}
	select {
	case db.escritor <- struct{}{}:
		return func() { <-db.escritor }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// transaccion runs fn in a write transaction: committed when fn returns nil,
// rolled back otherwise. The commit error is returned.
func (db *DB) transaccion(ctx context.Context, fn func(tx *sql.Tx) error) error {
	liberar, err := db.bloquearEscritura(ctx)
	if err != nil {
		return err
	}
	defer liberar()
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("iniciar transacción: %w", err)
	}
	// Also rolls back if fn panics (publicar is the caller's code); a no-op
	// after Commit.
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("confirmar transacción: %w", err)
	}
	return nil
}

// escribirSuelto runs one autocommit write statement (taking the SQLite writer
// slot).
func (db *DB) escribirSuelto(ctx context.Context, query string, args ...any) (sql.Result, error) {
	liberar, err := db.bloquearEscritura(ctx)
	if err != nil {
		return nil, err
	}
	defer liberar()
	return db.sql.ExecContext(ctx, query, args...)
}

// sentencia is a statement with its arguments.
type sentencia struct {
	q    string
	args []any
}

// ejecutarJuntas runs ss in tx, in order. On MySQL several statements go in
// one round trip (the connector enables multiStatements; arguments are
// interpolated client-side): a transaction's writes cost one round trip
// instead of one each, which on a busy machine is mostly waiting for the
// database process to be scheduled. On SQLite, in process, one by one.
//
// It returns the last statement's result (on MySQL, the statements' joint
// result, whose LastInsertId is the last statement's).
func (db *DB) ejecutarJuntas(ctx context.Context, tx *sql.Tx, ss []sentencia) (sql.Result, error) {
	if db.d.nombre != TipoMySQL || len(ss) <= 1 {
		var res sql.Result
		for _, s := range ss {
			var err error
			if res, err = db.ejecutar(ctx, tx, s.q, s.args...); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	var q strings.Builder
	var args []any
	for i, s := range ss {
		if i > 0 {
			q.WriteString(";\n")
		}
		q.WriteString(s.q)
		args = append(args, s.args...)
	}
	return tx.ExecContext(ctx, q.String(), args...)
}

// ejecutar runs a statement of the hot path in ex (a *sql.Tx or the
// *sql.DB) through its cached prepared statement.
func (db *DB) ejecutar(ctx context.Context, ex ejecutor, q string, args ...any) (sql.Result, error) {
	return db.preparadas.Exec(ctx, ex, q, args...)
}

// consultar is ejecutar for queries.
func (db *DB) consultar(ctx context.Context, ex ejecutor, q string, args ...any) (*sql.Rows, error) {
	return db.preparadas.Query(ctx, ex, q, args...)
}

// lectura runs fn in a read-only transaction: one consistent snapshot for
// several queries (SQLite: a deferred transaction, which never takes the
// write lock; MySQL: REPEATABLE READ).
func (db *DB) lectura(ctx context.Context, fn func(tx *sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.d.nombre == TipoMySQL {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.sql.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("iniciar lectura: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}
