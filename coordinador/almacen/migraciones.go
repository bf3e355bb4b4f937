package almacen

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// Migrations are numbered files, NNNN_nombre.sql, one directory per dialect.
// Each statement ends with ";" at the end of a line; lines starting with "--"
// are comments.
//
//go:embed migraciones/sqlite/*.sql migraciones/mysql/*.sql
var migraciones embed.FS

type migracion struct {
	version int
	nombre  string
	sql     string
}

func cargarMigraciones(dialecto string) ([]migracion, error) {
	dir := path.Join("migraciones", dialecto)
	entradas, err := fs.ReadDir(migraciones, dir)
	if err != nil {
		return nil, fmt.Errorf("leer migraciones %s: %w", dir, err)
	}
	var ms []migracion
	for _, e := range entradas {
		nombre := e.Name()
		num, _, ok := strings.Cut(nombre, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migración %s/%s: el nombre debe empezar por un número positivo y _", dir, nombre)
		}
		b, err := migraciones.ReadFile(path.Join(dir, nombre))
		if err != nil {
			return nil, fmt.Errorf("leer migración %s: %w", nombre, err)
		}
		ms = append(ms, migracion{version: v, nombre: nombre, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migraciones %s y %s con la misma versión", ms[i-1].nombre, ms[i].nombre)
		}
	}
	return ms, nil
}

// sentencias splits a migration file into statements.
func sentencias(texto string) []string {
	var out []string
	var actual strings.Builder
	for _, linea := range strings.Split(texto, "\n") {
		t := strings.TrimSpace(linea)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		actual.WriteString(linea)
		actual.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(actual.String()), ";"))
			actual.Reset()
		}
	}
	if s := strings.TrimSpace(actual.String()); s != "" {
		out = append(out, s)
	}
	return out
}

const crearTablaMigraciones = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version  INTEGER      NOT NULL PRIMARY KEY,
	nombre   VARCHAR(255) NOT NULL,
	aplicada VARCHAR(32)  NOT NULL
)`

// ComandoMigrar is the command the schema errors tell the operator to run.
const ComandoMigrar = "coordinador -preparar"

// comprobarEsquema reads schema_migrations (missing: nothing applied) and
// refuses, with a *basedatos.EsquemaError, a schema older or newer than the
// embedded migrations. It changes nothing.
func (db *DB) comprobarEsquema(ctx context.Context) error {
	ms, err := cargarMigraciones(db.d.nombre)
	if err != nil {
		return err
	}
	aplicadas, err := db.versionesAplicadas(ctx, db.sql)
	if err != nil {
		return err
	}
	return db.esquemaAlDia(ms, aplicadas, true, true)
}

// VersionEsquema is the schema version this binary's migrations lead to
// (the highest embedded migration, the same for both dialects).
func VersionEsquema() int {
	ms, _ := cargarMigraciones(TipoMySQL)
	v := 0
	for _, m := range ms {
		v = max(v, m.version)
	}
	return v
}

// esquemaAlDia compares the versions applied with ms: a missing one is
// refused when completo, one newer than the binary knows when sinNuevas.
func (db *DB) esquemaAlDia(ms []migracion, aplicadas map[int]bool, completo, sinNuevas bool) error {
	necesaria := 0
	for _, m := range ms {
		necesaria = max(necesaria, m.version)
	}
	contigua, maxima := basedatos.VersionContigua(aplicadas)
	if (!sinNuevas || maxima <= necesaria) && (!completo || contigua >= necesaria) {
		return nil
	}
	e := &basedatos.EsquemaError{Base: db.base, Actual: contigua, Necesaria: necesaria, Comando: ComandoMigrar}
	if maxima > necesaria {
		e.Actual = maxima
	}
	return e
}

// versionesAplicadas reads schema_migrations; a missing table means none.
func (db *DB) versionesAplicadas(ctx context.Context, ex ejecutor) (map[int]bool, error) {
	filas, err := ex.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		if sqldialecto.TablaInexistenteMySQL(err) {
			return map[int]bool{}, nil
		}
		return nil, fmt.Errorf("consultar schema_migrations: %w", err)
	}
	defer filas.Close()
	aplicadas := map[int]bool{}
	for filas.Next() {
		var v int
		if err := filas.Scan(&v); err != nil {
			return nil, fmt.Errorf("consultar schema_migrations: %w", err)
		}
		aplicadas[v] = true
	}
	if err := filas.Err(); err != nil {
		return nil, fmt.Errorf("consultar schema_migrations: %w", err)
	}
	return aplicadas, nil
}

// migrar applies the migrations not yet recorded in schema_migrations. With
// sinNuevas it refuses a schema newer than the binary knows (Migrar);
// otherwise (migrating at start) a newer one is left as it is, as a newer
// binary's migrations keep what older binaries use.
func (db *DB) migrar(ctx context.Context, sinNuevas bool) error {
	ms, err := cargarMigraciones(db.d.nombre)
	if err != nil {
		return err
	}
	if db.d.nombre == TipoMySQL {
		return db.migrarMySQL(ctx, ms, sinNuevas)
	}
	return db.migrarSQLite(ctx, ms, sinNuevas)
}

// migrarSQLite applies each migration in its own transaction (SQLite's DDL is
// transactional). BEGIN IMMEDIATE excludes another process doing the same;
// the check of schema_migrations inside the transaction makes it idempotent.
func (db *DB) migrarSQLite(ctx context.Context, ms []migracion, sinNuevas bool) error {
	if _, err := db.escribirSuelto(ctx, crearTablaMigraciones); err != nil {
		return fmt.Errorf("crear schema_migrations: %w", err)
	}
	aplicadas, err := db.versionesAplicadas(ctx, db.sql)
	if err != nil {
		return err
	}
	if err := db.esquemaAlDia(ms, aplicadas, false, sinNuevas); err != nil {
		return err
	}
	for _, m := range ms {
		err := db.transaccion(ctx, func(tx *sql.Tx) error {
			aplicada, err := migracionAplicada(ctx, tx, m.version)
			if err != nil || aplicada {
				return err
			}
			return aplicarMigracion(ctx, tx, m)
		})
		if err != nil {
			return fmt.Errorf("migración %s: %w", m.nombre, err)
		}
	}
	return nil
}

// migrarMySQL holds a named server lock (GET_LOCK) for the whole run, so two
// replicas starting together apply each migration once. MySQL's DDL commits
// implicitly, so each statement must be idempotent by itself (IF NOT EXISTS):
// a migration cut half-way runs again from the start.
func (db *DB) migrarMySQL(ctx context.Context, ms []migracion, sinNuevas bool) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrar: conexión: %w", err)
	}
	defer conn.Close()
	var base string
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&base); err != nil {
		return fmt.Errorf("migrar: base de datos actual: %w", err)
	}
	suma := sha1.Sum([]byte(base))
	cerrojo := "sagas-migraciones-" + hex.EncodeToString(suma[:]) // < 64 characters
	var ok sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", cerrojo).Scan(&ok); err != nil {
		return fmt.Errorf("migrar: GET_LOCK: %w", err)
	}
	if ok.Int64 != 1 {
		return fmt.Errorf("migrar: otra réplica retiene el cerrojo de migraciones de %s desde hace 60s", base)
	}
	defer func() {
		// A fresh context: the caller's may be done, and the lock must go.
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(c, "SELECT RELEASE_LOCK(?)", cerrojo)
	}()
	if _, err := conn.ExecContext(ctx, crearTablaMigraciones); err != nil {
		return fmt.Errorf("crear schema_migrations: %w", err)
	}
	aplicadas, err := db.versionesAplicadas(ctx, conn)
	if err != nil {
		return err
	}
	if err := db.esquemaAlDia(ms, aplicadas, false, sinNuevas); err != nil {
		return err
	}
	for _, m := range ms {
		aplicada, err := migracionAplicada(ctx, conn, m.version)
		if err != nil {
			return fmt.Errorf("migración %s: %w", m.nombre, err)
		}
		if aplicada {
			continue
		}
		if err := aplicarMigracion(ctx, conn, m); err != nil {
			return fmt.Errorf("migración %s: %w", m.nombre, err)
		}
	}
	return nil
}

func migracionAplicada(ctx context.Context, ex ejecutor, version int) (bool, error) {
	var n int
	err := ex.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", version).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("consultar schema_migrations: %w", err)
	}
	return n > 0, nil
}

func aplicarMigracion(ctx context.Context, ex ejecutor, m migracion) error {
	for _, s := range sentencias(m.sql) {
		if _, err := ex.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%.80q: %w", s, err)
		}
	}
	_, err := ex.ExecContext(ctx, "INSERT INTO schema_migrations (version, nombre, aplicada) VALUES (?, ?, ?)",
		m.version, m.nombre, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("registrar en schema_migrations: %w", err)
	}
	return nil
}
