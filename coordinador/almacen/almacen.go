// Package almacen persists sagas for the coordinator, in MySQL/MariaDB
// (production, several replicas) or SQLite (embedded default, one replica).
//
// Tables: sagas and pasos_saga (the seeds' columns plus version, deadline and
// idempotency key), outbox (messages not yet acknowledged by the broker) and
// inbox (de-duplication of replies and legacy events). Migrations are
// embedded and run by Abrir, or by Migrar when the runtime user may not
// change the schema (Config.SoloComprobar).
//
// Every saga transition and the messages it causes are written in one
// transaction: a crash can never separate "state saved" from "command sent".
// The package knows nothing of the broker: outbox rows are bytes plus a topic,
// and the relay that publishes them lives in package mensajeria.
package almacen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
)

// Errors of the store.
var (
	// ErrNoEncontrada: no saga with that id.
	ErrNoEncontrada = errors.New("saga no encontrada")
	// ErrDuplicado: the inbox already holds that key (a redelivered reply or
	// legacy event), or the idempotency key already created a saga.
	ErrDuplicado = errors.New("mensaje duplicado")
	// ErrConflicto: the saga changed between read and write more often than
	// the retry budget allows.
	ErrConflicto = errors.New("conflicto de versión")
	// ErrClaveReutilizada: the idempotency key already created a saga for a
	// request with another fingerprint (ClaveReutilizadaError says which).
	ErrClaveReutilizada = errors.New("clave de idempotencia ya usada con otra solicitud")
	// ErrInvalido: a value the store refuses before writing it (an id or
	// key longer than its column, a saga without id, invalid raw JSON). It
	// is permanent: the same input fails again, so a consumer dead-letters
	// the message that carried it instead of retrying it.
	ErrInvalido = errors.New("valor que el almacén no admite")
	// ErrAparcadoNoEncontrado: no parked outbox row with that id (it was
	// never parked, was sent again or was deleted).
	ErrAparcadoNoEncontrado = errors.New("mensaje aparcado no encontrado")
)

// Idempotencia de-duplicates the creation of a saga. Clave (optional) names
// the request: a second creation with the same Clave creates nothing.
// Huella (optional, at most 64 characters, e.g. a hex SHA-256) fingerprints
// the request's content: when both creations carry one and they differ, the
// second is refused with ErrClaveReutilizada instead of answering the first
// saga. A saga stored without a Huella (rows older than migration 0003)
// matches any Huella, as before.
type Idempotencia struct {
	Clave  string
	Huella string
}

// ClaveReutilizadaError is ErrClaveReutilizada with the key and the saga it
// created.
type ClaveReutilizadaError struct {
	Clave  string
	SagaID string
}

func (e *ClaveReutilizadaError) Error() string {
	return fmt.Sprintf("clave de idempotencia %q ya creó la saga %s con otra solicitud", e.Clave, e.SagaID)
}

// Unwrap makes errors.Is(err, ErrClaveReutilizada) hold.
func (e *ClaveReutilizadaError) Unwrap() error { return ErrClaveReutilizada }

// Mensaje is an outbox row: a message to publish after the transaction that
// caused it commits. The relay uses ID as the broker sequence id.
type Mensaje struct {
	ID          int64
	Topico      string
	Clave       string // message key: the saga_id
	Tipo        string // versioned type name, also set as property "type"
	Carga       []byte // encoded payload (Avro)
	Propiedades map[string]string
	Creado      time.Time
	// Intentos counts the times the broker refused the row (RegistrarRechazos).
	Intentos int
}

// Cambio is what a transition function returns to Actualizar.
type Cambio struct {
	Saga     saga.Saga
	Mensajes []Mensaje
	// Guardar is false when the input changed nothing: only the inbox entry
	// (if any) is written, and Mensajes are ignored.
	Guardar bool
}

// Filtro selects sagas for listings. Zero fields do not filter.
type Filtro struct {
	Estados    []saga.Estado
	Tipo       string
	CampaniaID string
	SagaID     string    // prefix match
	Desde      time.Time // timestamp_inicio >= Desde
	Hasta      time.Time // timestamp_inicio < Hasta
	Limite     int       // default 100, at most 1000
	// ConPasos loads each saga's steps too (costs one more query).
	ConPasos bool
}

// Config says which database to open.
type Config struct {
	Tipo string // "sqlite" or "mysql"
	// Ruta is the SQLite file (":memory:" is not supported: use a temp file).
	Ruta string
	// DSN is the go-sql-driver/mysql DSN; parseTime is forced on.
	DSN string
	// MaxConexiones bounds the pool (MySQL); default 32.
	MaxConexiones int
	// SoloComprobar makes Abrir run no DDL (MySQL, whose runtime user may
	// have data privileges only): it checks that the schema is at the
	// binary's version instead, and Migrar is the step that changes it.
	// False: Abrir migrates (SQLite always does).
	SoloComprobar bool
}

// Resumen counts sagas by estado (for /api/v1/sagas counts and metrics).
type Resumen map[saga.Estado]int

// Store is what the coordinator needs from persistence. *DB implements it;
// the interface documents the contract and lets the engine's unit tests use a
// fake.
type Store interface {
	// CrearSaga inserts a new saga with its steps and its first messages in
	// one transaction. When idem.Clave is not empty and a saga was already
	// created with it, nothing is written and the existing saga's id is
	// returned with creada == false (and no error), unless both creations
	// carry a Huella and they differ: then the error is a
	// *ClaveReutilizadaError (ErrClaveReutilizada) naming that saga. When a
	// saga with s.ID already exists (a legacy command that names its saga
	// id) and the key is not taken, its id is returned with creada == false.
	CrearSaga(ctx context.Context, s saga.Saga, idem Idempotencia, msgs []Mensaje) (id string, creada bool, err error)

	// Actualizar runs one transition in one transaction: it records dedup in
	// the inbox (if not empty; ErrDuplicado if present, fn not called), reads
	// the saga, calls fn, and when Cambio.Guardar writes the saga (only the
	// steps that changed) with an optimistic check on version (version+1),
	// plus Cambio.Mensajes into the outbox. On a version conflict the whole
	// transaction is retried with a fresh read (bounded; then ErrConflicto).
	// fn must be pure: it may run more than once. When fn returns an error,
	// nothing is written (not even the inbox entry, so a redelivery is
	// processed again) and that error is returned wrapped. A missing saga is
	// ErrNoEncontrada (and the inbox entry is not kept either).
	Actualizar(ctx context.Context, sagaID, dedup string, fn func(saga.Saga) (Cambio, error)) error

	// ActualizarLote is Actualizar for several entries at once, applied in
	// order (an entry sees what earlier ones did to its saga), with one error
	// per entry meaning what Actualizar's would. It commits them together
	// when it can (group commit) and otherwise runs them one by one, so the
	// outcome never depends on which happened; fn may run more than once.
	ActualizarLote(ctx context.Context, es []Entrada) []error

	// ProcesarVencidas claims up to limite non-terminal sagas whose plazo is
	// <= ahora (MySQL: SELECT ... FOR UPDATE SKIP LOCKED, so replicas split
	// them and a crashed replica's timers are taken over) and applies fn to
	// each, like Actualizar, in one transaction. It returns how many sagas
	// were changed. A saga for which fn fails is left as it was while the
	// others are saved; those errors come back joined, with the count.
	ProcesarVencidas(ctx context.Context, ahora time.Time, limite int, fn func(saga.Saga) (Cambio, error)) (int, error)

	// DrenarOutbox claims up to limite outbox rows in id order (MySQL: FOR
	// UPDATE SKIP LOCKED, held while publicar runs, so two replicas never
	// publish the same row concurrently), calls publicar, and deletes the
	// rows whose ids publicar returns as acknowledged by the broker. Rows not
	// returned stay for the next call. It returns the number deleted (also
	// when publicar fails: the ids it returned are still deleted). SQLite
	// publishes outside any transaction, so its write lock is not held while
	// the broker answers.
	DrenarOutbox(ctx context.Context, limite int, publicar func(context.Context, []Mensaje) ([]int64, error)) (int, error)
	// RegistrarRechazos counts an attempt of each row the broker refused,
	// keeps its error, makes it wait Espera before DrenarOutbox claims it
	// again, and parks the rows that reached maxIntentos attempts: they are
	// kept but never claimed again. It returns the rows parked now.
	RegistrarRechazos(ctx context.Context, rs []Rechazo, maxIntentos int) ([]Aparcado, error)
	// Aparcados lists up to limite parked outbox rows, oldest first.
	Aparcados(ctx context.Context, limite int) ([]Aparcado, error)

	// RegistrarInbox records key in the inbox outside any saga transition.
	// ErrDuplicado if it is there.
	RegistrarInbox(ctx context.Context, clave string) error

	// Saga returns one saga with its steps; ErrNoEncontrada if there is none.
	Saga(ctx context.Context, id string) (saga.Saga, error)
	// Listar returns the sagas f selects, newest first (timestamp_inicio,
	// then saga_id, descending), at most f.Limite.
	Listar(ctx context.Context, f Filtro) ([]saga.Saga, error)
	// Contar counts the sagas f selects by estado; f.Limite and f.ConPasos do
	// not apply.
	Contar(ctx context.Context, f Filtro) (Resumen, error)
	// EnCursoPorVersion counts, by tipo and definition version, the sagas
	// that still need their definition (see saga.EnCurso).
	EnCursoPorVersion(ctx context.Context) ([]saga.EnCurso, error)
	// Outbox returns the number of unsent rows, parked ones excluded, and the
	// creation time of the oldest (zero when empty), for the backlog and lag
	// metrics.
	Outbox(ctx context.Context) (pendientes int, masAntiguo time.Time, err error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error
}
