// Package almacen is a participant's own SQL store (SQLite or MySQL/MariaDB):
// it opens and migrates the database (the runtime's inbox and bloqueos_paso
// tables plus the service's domain tables), lists the service's effects, and
// applies the inbox decisions of package bandeja, running the service's
// action or compensation inside the local transaction that records the reply.
package almacen

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/preparadas"
	"github.com/alpespartner/sagas/internal/sqldialecto"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// Store types.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// Opciones says which database to open.
type Opciones struct {
	Tipo       string // SQLite or MySQL
	RutaSQLite string // the SQLite file, created with its directory if missing
	MySQL      ServidorMySQL
	// Conexiones is the MySQL pool size.
	Conexiones int
	// Reloj gives the time of each transaction (nil: time.Now).
	Reloj func() time.Time
	// SoloComprobar makes Abrir run no DDL on MySQL (a runtime user with
	// data privileges only): it checks that the database is at the binary's
	// schema version and refuses otherwise; Migrar changes it. SQLite always
	// migrates.
	SoloComprobar bool
	// ComandoMigrar names the command that migrates, for the message of a
	// schema at another version (e.g. "influencer -preparar").
	ComandoMigrar string
}

// ServidorMySQL says where the service's own MySQL database lives.
type ServidorMySQL struct {
	// Config is the server, the user and TLS (go-sql-driver/mysql); its
	// database is ignored.
	Config    *mysql.Config
	BaseDatos string // letters, digits and _ only
}

// Almacen is a service's own database. It is safe for concurrent use.
type Almacen struct {
	db      *sql.DB
	d       dialecto
	efectos []servicio.TablaEfectos
	reloj   func() time.Time
	// escritor serialises this process's write transactions on SQLite (nil on
	// MySQL): SQLite runs one writer at a time anyway, and waiting here
	// instead of in its busy handler keeps latency low and respects ctx.
	escritor chan struct{}
	donde    string // for messages: file or host/database
	// preparadas caches the prepared statements of the command path, the
	// services' own included (SQLite; nil on MySQL, whose statements travel
	// as text with BEGIN and COMMIT, mysqltx).
	preparadas *preparadas.Cache
	// unViaje and unViajeFallido count the actions aplicarEnUnViaje applied
	// and those it handed back to the usual path.
	unViaje, unViajeFallido atomic.Int64
}

// UnViaje says how many actions were applied in one round trip (MySQL, on
// their first delivery) and how many of those attempts were rolled back and
// applied the usual way (the step had inbox rows, or any error).
func (a *Almacen) UnViaje() (aplicadas, repetidas int64) {
	return a.unViaje.Load(), a.unViajeFallido.Load()
}

// Abrir opens the database of s and runs the migrations of the runtime and
// of s (on MySQL creating the database first): its tables and missing seed
// rows. With o.SoloComprobar (MySQL) it creates and changes nothing and
// refuses, with a *basedatos.EsquemaError, a database that is not at the
// binary's schema version.
func Abrir(ctx context.Context, o Opciones, s *servicio.Servicio) (*Almacen, error) {
	return abrirYMigrar(ctx, o, s, false)
}

// abrirYMigrar is Abrir; sinNuevas refuses, when migrating, a schema newer
// than the binary knows (Migrar).
func abrirYMigrar(ctx context.Context, o Opciones, s *servicio.Servicio, sinNuevas bool) (*Almacen, error) {
	soloComprobar := o.SoloComprobar && o.Tipo == MySQL
	if o.Tipo == MySQL && !soloComprobar {
		if err := crearBaseMySQL(ctx, o.MySQL); err != nil {
			return nil, err
		}
	}
	a, err := abrir(ctx, o, s)
	if err != nil {
		if soloComprobar && sqldialecto.NumeroMySQL(err) == erBaseInexistente {
			return nil, &basedatos.EsquemaError{Base: o.MySQL.BaseDatos, Necesaria: versionEsquemaRuntime, Comando: o.ComandoMigrar}
		}
		return nil, err
	}
	if soloComprobar {
		err = a.comprobarEsquema(ctx, s, o.ComandoMigrar)
	} else {
		err = a.migrar(ctx, s, o.ComandoMigrar, sinNuevas)
	}
	if err != nil {
		a.db.Close()
		return nil, err
	}
	return a, nil
}

// Migrar creates the database of s when missing (MySQL), brings its tables
// and seed rows to the binary's schema version and closes it: the
// provisioning step, run with o.MySQL as the migration user. It refuses a
// schema newer than the binary knows.
func Migrar(ctx context.Context, o Opciones, s *servicio.Servicio) error {
	o.SoloComprobar = false
	o.Conexiones = 1
	a, err := abrirYMigrar(ctx, o, s, true)
	if err != nil {
		return err
	}
	return a.Close()
}

// erBaseInexistente is MySQL's "Unknown database".
const erBaseInexistente = 1049

// abrir opens the pool and checks that the database answers.
func abrir(ctx context.Context, o Opciones, s *servicio.Servicio) (*Almacen, error) {
	a := &Almacen{efectos: s.Efectos, reloj: o.Reloj}
	if a.reloj == nil {
		a.reloj = time.Now
	}
	var cfg *mysql.Config
	switch o.Tipo {
	case SQLite:
		if err := os.MkdirAll(filepath.Dir(o.RutaSQLite), 0o755); err != nil {
			return nil, fmt.Errorf("directorio de datos de %s: %w", o.RutaSQLite, err)
		}
		// WAL: readers never block the writer. busy_timeout: other processes
		// (a second instance, an operator's shell) wait instead of failing.
		// synchronous(FULL): a commit survives a power cut, since its reply
		// may already be published. _txlock=immediate: a write transaction
		// takes the write lock at BEGIN instead of failing on upgrade.
		dsn := o.RutaSQLite + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=synchronous(FULL)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("abrir sqlite %s: %w", o.RutaSQLite, err)
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		a.db, a.d, a.escritor, a.donde = db, dialectoSQLite, make(chan struct{}, 1), o.RutaSQLite
		a.preparadas = preparadas.Nueva(db, 0)
	case MySQL:
		cfg = configMySQL(o.MySQL)
		cfg.DBName = o.MySQL.BaseDatos
		conector, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("mysql %s: %w", o.MySQL.BaseDatos, err)
		}
		db := sql.OpenDB(mysqltx.Conector(conector))
		n := max(o.Conexiones, 1)
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxLifetime(30 * time.Minute)
		a.db, a.d, a.donde = db, dialectoMySQL, cfg.Addr+"/"+cfg.DBName
	default:
		return nil, fmt.Errorf("SAGAS_STORAGE_TYPE=%q: allowed values are sqlite, mysql", o.Tipo)
	}
	if err := a.db.PingContext(ctx); err != nil {
		a.db.Close()
		if cfg != nil {
			err = basedatos.Explicar(ctx, err, cfg)
		}
		return nil, fmt.Errorf("conectar a %s %s: %w", a.d.nombre, a.donde, err)
	}
	return a, nil
}

// configMySQL is the driver's configuration of c, without a database, with
// what the store relies on.
func configMySQL(c ServidorMySQL) *mysql.Config {
	var cfg *mysql.Config
	if c.Config != nil {
		cfg = c.Config.Clone()
	} else {
		cfg = mysql.NewConfig()
	}
	cfg.DBName = ""
	cfg.InterpolateParams = true // one round trip per statement
	cfg.MultiStatements = true   // BEGIN and COMMIT travel with statements (mysqltx)
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg
}

// crearBaseMySQL creates the service's database if missing. Its binary
// collation compares keys byte for byte, as SQLite does.
func crearBaseMySQL(ctx context.Context, c ServidorMySQL) error {
	cfg := configMySQL(c)
	conector, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mysql %s: %w", cfg.Addr, err)
	}
	db := sql.OpenDB(conector)
	defer db.Close()
	// The name was checked by the configuration: letters, digits and _ only.
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+c.BaseDatos+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return fmt.Errorf("crear base de datos %s en %s: %w", c.BaseDatos, cfg.Addr, basedatos.Explicar(ctx, err, cfg))
	}
	return nil
}

func primeraLinea(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Tipo says which database this is: SQLite or MySQL.
func (a *Almacen) Tipo() string { return a.d.nombre }

// Donde names the database for messages: its file or host/database.
func (a *Almacen) Donde() string { return a.donde }

// Ping checks that the database answers.
func (a *Almacen) Ping(ctx context.Context) error { return a.db.PingContext(ctx) }

// Close closes the database. Calls in flight may fail.
func (a *Almacen) Close() error {
	a.preparadas.Close()
	if err := a.db.Close(); err != nil {
		return fmt.Errorf("cerrar %s: %w", a.donde, err)
	}
	return nil
}

// escribir runs fn in a write transaction and commits when fn returns true
// with no error; otherwise it rolls back.
func (a *Almacen) escribir(ctx context.Context, fn func(tx *sql.Tx) (bool, error)) error {
	if a.escritor != nil {
		select {
		case a.escritor <- struct{}{}:
			defer func() { <-a.escritor }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("iniciar transacción: %w", err)
	}
	confirmar, err := fn(tx)
	if err != nil || !confirmar {
		if rerr := tx.Rollback(); rerr != nil && err == nil {
			return fmt.Errorf("deshacer transacción: %w", rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("confirmar transacción: %w", err)
	}
	return nil
}

// Efectos lists the rows of the service's tables of effects for one saga,
// active or undone.
func (a *Almacen) Efectos(ctx context.Context, sagaID string) ([]servicio.Efecto, error) {
	var todos []servicio.Efecto
	for _, t := range a.efectos {
		efs, err := a.efectosDe(ctx, t, sagaID)
		if err != nil {
			return nil, fmt.Errorf("efectos de %s en %s: %w", sagaID, t.Tabla, err)
		}
		todos = append(todos, efs...)
	}
	return todos, nil
}

func (a *Almacen) efectosDe(ctx context.Context, t servicio.TablaEfectos, sagaID string) ([]servicio.Efecto, error) {
	activo := map[string]bool{}
	for _, e := range t.Activos {
		activo[e] = true
	}
	filas, err := a.db.QueryContext(ctx, "SELECT paso, "+t.Clave+", estado, detalle, actualizado_en FROM "+t.Tabla+
		" WHERE saga_id = ? ORDER BY paso, "+t.Clave, sagaID)
	if err != nil {
		return nil, err
	}
	defer filas.Close()
	var efs []servicio.Efecto
	for filas.Next() {
		e := servicio.Efecto{Tabla: t.Tabla}
		var detalle sql.NullString
		if err := filas.Scan(&e.Paso, &e.Clave, &e.Estado, &detalle, &e.ActualizadoEn); err != nil {
			return nil, err
		}
		e.Activo = activo[e.Estado]
		if detalle.Valid && json.Valid([]byte(detalle.String)) {
			e.Detalle = json.RawMessage(detalle.String)
		}
		efs = append(efs, e)
	}
	return efs, filas.Err()
}
