package participantes

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// Lengths of the inbox key columns; longer values are refused as poison
// before they reach the database.
const (
	maxSagaID = 191
	maxPaso   = 100
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
		error TEXT NULL,
		datos TEXT NOT NULL,
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
	nombre: AlmacenSQLite,
	bloquearVarios: func(n int) string {
		return `INSERT INTO bloqueos_paso (saga_id, paso, ultimo_comando, actualizado_en) VALUES ` + sqldialecto.Filas(n, "(?, ?, ?, ?)") +
			` ON CONFLICT (saga_id, paso) DO UPDATE SET ultimo_comando = excluded.ultimo_comando, actualizado_en = excluded.actualizado_en`
	},
	insertarIgnorando: sqldialecto.InsertarIgnorandoSQLite,
	duplicado:         sqldialecto.DuplicadoSQLite,
	reintentable:      sqldialecto.ReintentableSQLite,
}

var dialectoMySQL = dialecto{
	nombre: AlmacenMySQL,
	bloquearVarios: func(n int) string {
		return `INSERT INTO bloqueos_paso (saga_id, paso, ultimo_comando, actualizado_en) VALUES ` + sqldialecto.Filas(n, "(?, ?, ?, ?)") +
			` ON DUPLICATE KEY UPDATE ultimo_comando = VALUES(ultimo_comando), actualizado_en = VALUES(actualizado_en)`
	},
	insertarIgnorando: sqldialecto.InsertarIgnorandoMySQL,
	duplicado:         sqldialecto.DuplicadoMySQL,
	reintentable:      sqldialecto.ReintentableMySQL,
}

// almacen is a service's own database.
type almacen struct {
	db *sql.DB
	d  dialecto
	// escritor serialises this process's write transactions on SQLite (nil on
	// MySQL): SQLite runs one writer at a time anyway, and waiting here
	// instead of in its busy handler keeps latency low and respects ctx.
	escritor chan struct{}
	donde    string // for messages: file or host/database
}

// abrirAlmacen opens (and on MySQL creates) the service's database and runs
// the migrations of the runtime and of s.
func abrirAlmacen(ctx context.Context, c Config, s *Servicio) (*almacen, error) {
	a := &almacen{}
	switch c.Almacen {
	case AlmacenSQLite:
		if err := os.MkdirAll(filepath.Dir(c.RutaSQLite), 0o755); err != nil {
			return nil, fmt.Errorf("directorio de datos de %s: %w", c.RutaSQLite, err)
		}
		// WAL: readers never block the writer. busy_timeout: other processes
		// (a second instance, an operator's shell) wait instead of failing.
		// synchronous(FULL): a commit survives a power cut, since its reply
		// may already be published. _txlock=immediate: a write transaction
		// takes the write lock at BEGIN instead of failing on upgrade.
		dsn := c.RutaSQLite + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=synchronous(FULL)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("abrir sqlite %s: %w", c.RutaSQLite, err)
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		a.db, a.d, a.escritor, a.donde = db, dialectoSQLite, make(chan struct{}, 1), c.RutaSQLite
	case AlmacenMySQL:
		if err := crearBaseMySQL(ctx, c.MySQL); err != nil {
			return nil, err
		}
		cfg := configMySQL(c.MySQL)
		cfg.DBName = c.MySQL.BaseDatos
		conector, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("mysql %s: %w", c.MySQL.BaseDatos, err)
		}
		db := sql.OpenDB(mysqltx.Conector(conector))
		db.SetMaxOpenConns(c.Trabajadores + 4)
		db.SetMaxIdleConns(c.Trabajadores + 4)
		db.SetConnMaxLifetime(30 * time.Minute)
		a.db, a.d, a.donde = db, dialectoMySQL, cfg.Addr+"/"+cfg.DBName
	default:
		return nil, fmt.Errorf("SAGAS_STORAGE_TYPE=%q: allowed values are sqlite, mysql", c.Almacen)
	}
	if err := a.db.PingContext(ctx); err != nil {
		a.db.Close()
		return nil, fmt.Errorf("conectar a %s %s: %w", a.d.nombre, a.donde, err)
	}
	if err := a.migrar(ctx, s); err != nil {
		a.db.Close()
		return nil, err
	}
	return a, nil
}

func configMySQL(c ConfigMySQL) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(c.Host, strconv.Itoa(c.Puerto))
	cfg.User = c.Usuario
	cfg.Passwd = c.Clave
	cfg.InterpolateParams = true // one round trip per statement
	cfg.MultiStatements = true   // BEGIN and COMMIT travel with statements (mysqltx)
	cfg.Timeout = 10 * time.Second
	return cfg
}

// crearBaseMySQL creates the service's database if missing. Its binary
// collation compares keys byte for byte, as SQLite does.
func crearBaseMySQL(ctx context.Context, c ConfigMySQL) error {
	conector, err := mysql.NewConnector(configMySQL(c))
	if err != nil {
		return fmt.Errorf("mysql %s: %w", c.Host, err)
	}
	db := sql.OpenDB(conector)
	defer db.Close()
	// The name was checked by Config.Validar: letters, digits and _ only.
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+c.BaseDatos+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return fmt.Errorf("crear base de datos %s en %s:%d: %w", c.BaseDatos, c.Host, c.Puerto, err)
	}
	return nil
}

// migrar creates the tables if missing and inserts the seed rows that are
// missing; safe when several instances start at once.
func (a *almacen) migrar(ctx context.Context, s *Servicio) error {
	for _, ddl := range append(append([]string{}, esquemaRuntime...), s.Esquema...) {
		if _, err := a.db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("migrar %s (%s): %w", a.donde, primeraLinea(ddl), err)
		}
	}
	for _, sem := range s.Semillas {
		marcas := sqldialecto.Marcadores(len(sem.Columnas))
		q := fmt.Sprintf("%s %s (%s) VALUES (%s)", a.d.insertarIgnorando, sem.Tabla, strings.Join(sem.Columnas, ", "), marcas)
		for _, fila := range sem.Filas {
			if _, err := a.db.ExecContext(ctx, q, fila...); err != nil {
				return fmt.Errorf("semilla de %s: %w", sem.Tabla, err)
			}
		}
	}
	return nil
}

func primeraLinea(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// escribir runs fn in a write transaction and commits when fn returns true
// with no error; otherwise it rolls back.
func (a *almacen) escribir(ctx context.Context, fn func(tx *sql.Tx) (bool, error)) error {
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

// registro is an inbox row: a command processed and the reply it got.
type registro struct {
	Accion       string
	Comando      string
	Clave        string
	Resultado    string // exito, fallo or rechazado
	Exito        bool
	Error        string
	Datos        string
	RespondidoMs int64
}

// columnasInbox are the inbox columns registrosDeInbox scans.
const columnasInbox = "saga_id, paso, accion, comando, clave_idempotencia, resultado, exito, error, datos, respondido_ms"

// leerInbox returns the inbox rows of one saga step by accion.
func leerInbox(ctx context.Context, q Ejecutor, sagaID, paso string) (map[string]registro, error) {
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
	return map[string]registro{}, nil
}

// registrosDeInbox reads rows of columnasInbox by step (pasoDe), then by
// accion, and closes filas.
func registrosDeInbox(filas *sql.Rows) (map[string]map[string]registro, error) {
	defer filas.Close()
	out := map[string]map[string]registro{}
	for filas.Next() {
		var r registro
		var sagaID, paso string
		var exito int
		var msg sql.NullString
		if err := filas.Scan(&sagaID, &paso, &r.Accion, &r.Comando, &r.Clave, &r.Resultado, &exito, &msg, &r.Datos, &r.RespondidoMs); err != nil {
			return nil, err
		}
		r.Exito, r.Error = exito == 1, msg.String
		k := pasoDe(sagaID, paso)
		if out[k] == nil {
			out[k] = map[string]registro{}
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
// accion. On MySQL both go in one round trip.
func (a *almacen) bloquearYLeer(ctx context.Context, tx Ejecutor, pasos []clavePaso, ahora time.Time) (map[string]map[string]registro, error) {
	orden := slices.Clone(pasos)
	slices.SortFunc(orden, func(x, y clavePaso) int {
		return cmp.Or(cmp.Compare(x.sagaID, y.sagaID), cmp.Compare(x.paso, y.paso))
	})
	// One row per step: the last command named wins, as it would one by one.
	var args []any
	var sagas []any
	n := 0
	for i, k := range orden {
		if i+1 < len(orden) && orden[i+1].sagaID == k.sagaID && orden[i+1].paso == k.paso {
			continue
		}
		if n == 0 || sagas[len(sagas)-1] != k.sagaID {
			sagas = append(sagas, k.sagaID)
		}
		args = append(args, k.sagaID, k.paso, k.comando, Momento(ahora))
		n++
	}
	q := a.d.bloquearVarios(n)
	sel := "SELECT " + columnasInbox + " FROM inbox WHERE saga_id IN (" +
		sqldialecto.Marcadores(len(sagas)) + ")"
	var filas *sql.Rows
	var err error
	if a.d.nombre == AlmacenMySQL {
		// One round trip (multiStatements): the driver skips the upsert's
		// empty result and returns the query's rows; a failed upsert stops
		// the query and is its error.
		filas, err = tx.QueryContext(ctx, q+";\n"+sel, append(args, sagas...)...)
	} else if _, err = tx.ExecContext(ctx, q, args...); err == nil {
		filas, err = tx.QueryContext(ctx, sel, sagas...)
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
	out := map[string]map[string]registro{}
	for _, k := range pasos {
		clave := pasoDe(k.sagaID, k.paso)
		if r := todos[clave]; r != nil {
			out[clave] = r
		}
	}
	return out, nil
}

// registroDePaso is an inbox row to insert.
type registroDePaso struct {
	sagaID, paso string
	r            registro
}

// registrarVarios inserts inbox rows in one statement; errYaRegistrado if
// another instance recorded one of them meanwhile.
func (a *almacen) registrarVarios(ctx context.Context, tx Ejecutor, rs []registroDePaso, ahora time.Time) error {
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
		args = append(args, x.sagaID, x.paso, x.r.Accion, x.r.Comando, x.r.Clave, x.r.Resultado, exito, msg, x.r.Datos, x.r.RespondidoMs, Momento(ahora))
	}
	_, err := tx.ExecContext(ctx, q.String(), args...)
	switch {
	case err == nil:
		return nil
	case a.d.duplicado(err):
		return fmt.Errorf("%w: %d filas", errYaRegistrado, len(rs))
	default:
		return fmt.Errorf("registrar %d filas en inbox: %w", len(rs), err)
	}
}

// efectos lists the rows of the tables of effects for one saga.
func (a *almacen) efectos(ctx context.Context, tablas []TablaEfectos, sagaID string) ([]Efecto, error) {
	var todos []Efecto
	for _, t := range tablas {
		activo := map[string]bool{}
		for _, e := range t.Activos {
			activo[e] = true
		}
		filas, err := a.db.QueryContext(ctx, "SELECT paso, "+t.Clave+", estado, detalle, actualizado_en FROM "+t.Tabla+
			" WHERE saga_id = ? ORDER BY paso, "+t.Clave, sagaID)
		if err != nil {
			return nil, fmt.Errorf("efectos de %s en %s: %w", sagaID, t.Tabla, err)
		}
		for filas.Next() {
			e := Efecto{Tabla: t.Tabla}
			var detalle sql.NullString
			if err := filas.Scan(&e.Paso, &e.Clave, &e.Estado, &detalle, &e.ActualizadoEn); err != nil {
				filas.Close()
				return nil, fmt.Errorf("efectos de %s en %s: %w", sagaID, t.Tabla, err)
			}
			e.Activo = activo[e.Estado]
			if detalle.Valid && json.Valid([]byte(detalle.String)) {
				e.Detalle = json.RawMessage(detalle.String)
			}
			todos = append(todos, e)
		}
		err = filas.Err()
		filas.Close()
		if err != nil {
			return nil, fmt.Errorf("efectos de %s en %s: %w", sagaID, t.Tabla, err)
		}
	}
	return todos, nil
}

func (a *almacen) cerrar() error {
	if err := a.db.Close(); err != nil {
		return fmt.Errorf("cerrar %s: %w", a.donde, err)
	}
	return nil
}
