package almacen

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/mysqltx"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// On MySQL, a transition of a saga that this process wrote last needs no
// locking read: the process remembers the state it committed (cacheSagas),
// applies the transition to it, and sends the writes, each saga's row
// guarded by its version, with a check that fails the statement text before
// its COMMIT when a guard did not hold (another replica, a timer or an
// operator changed the saga, or it was purged). The transaction is then
// rolled back and the transition runs again the usual way, reading the saga
// FOR UPDATE. A transition is one round trip instead of two, and the
// database runs no SELECT for it. SQLite, in process, reads for free and
// keeps the usual path.

// Bounds of the cache. Only sagas in flight are kept (a terminal one is
// forgotten), so a coordinator holds about its sagas in flight; beyond
// either bound arbitrary ones are forgotten.
const (
	// maxEnCache bounds the sagas remembered.
	maxEnCache = 8192
	// maxBytesCache bounds their approximate size (pesoSaga).
	maxBytesCache = 32 << 20
	// maxPesoEnCache leaves out a saga heavier than this.
	maxPesoEnCache = 64 << 10
)

// erSubconsultaFilas is MySQL's error 1242, "Subquery returns more than 1
// row": what verificarFilas raises on purpose.
const erSubconsultaFilas = 1242

// verificarFilas is a statement that fails with erSubconsultaFilas unless
// the statement before it changed exactly n rows (ROW_COUNT()), so that the
// statements after it in the same text, the COMMIT included, never run.
// MySQL and MariaDB stop a multi-statement text at its first error.
func verificarFilas(n int) sentencia {
	return sentencia{"SELECT (SELECT 1 FROM (SELECT 1 UNION ALL SELECT 2) AS dos WHERE ROW_COUNT() <> ?)", []any{n}}
}

// esVerificacionFallida reports whether err is verificarFilas's failure.
func esVerificacionFallida(err error) bool {
	return sqldialecto.NumeroMySQL(err) == erSubconsultaFilas
}

// escribirDesdeCache runs ss and the outbox rows of msgs in one
// transaction (one round trip on MySQL) and, once it commits, remembers
// sagas as written and hands the rows to the relay. On any error nothing was
// written: it forgets sagas, counts a failed check as a stale state, and
// returns false.
func (db *DB) escribirDesdeCache(ctx context.Context, ss []sentencia, msgs []Mensaje, sagas []*saga.Saga) bool {
	mensajes, err := db.sentenciasMensajes(msgs)
	if err != nil {
		return false
	}
	var escritos []Mensaje
	err = db.transaccion(ctx, func(tx *sql.Tx) error {
		creado := time.Now()
		res, err := db.ejecutarJuntas(mysqltx.ConCommit(ctx), tx, append(ss, mensajes...))
		if err == nil && len(msgs) > 0 {
			escritos = db.conIDs(res, msgs, creado)
		}
		return err
	})
	if err != nil {
		if esVerificacionFallida(err) {
			db.cache.obsoletas.Add(1)
		}
		for _, s := range sagas {
			db.cache.olvidar(s.ID)
		}
		return false
	}
	db.cache.aciertos.Add(uint64(len(sagas)))
	for _, s := range sagas {
		db.cache.recordar(s)
	}
	db.confirmados(escritos)
	return true
}

// cacheSagas is the state this process last committed of sagas in flight.
// Its values are never modified: a taker clones before changing one.
type cacheSagas struct {
	mu    sync.Mutex
	m     map[string]saga.Saga
	bytes int // the sum of pesoSaga over m
	// aciertos counts transitions that committed from the cache, obsoletas
	// those whose guard failed and ran again the usual way.
	aciertos, obsoletas atomic.Uint64
}

// tomar returns the remembered state of id.
func (c *cacheSagas) tomar(id string) (saga.Saga, bool) {
	c.mu.Lock()
	s, ok := c.m[id]
	c.mu.Unlock()
	return s, ok
}

// recordar remembers s, committed by this process, as the saga's state
// (unless a newer version is remembered already). A terminal saga, or one
// too heavy to keep, is forgotten instead.
func (c *cacheSagas) recordar(s *saga.Saga) {
	if s.Estado.Terminal() || pesoSaga(s) > maxPesoEnCache {
		c.olvidar(s.ID)
		return
	}
	v := normalizada(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	if previo, ok := c.m[s.ID]; ok {
		if previo.Version > v.Version {
			return
		}
		c.quitar(s.ID, &previo)
	}
	if c.m == nil {
		c.m = make(map[string]saga.Saga)
	}
	peso := pesoSaga(&v)
	for id, otra := range c.m {
		if len(c.m) < maxEnCache && c.bytes+peso <= maxBytesCache {
			break
		}
		c.quitar(id, &otra)
	}
	c.m[s.ID] = v
	c.bytes += peso
}

// olvidar drops id's state: the next transition reads it.
func (c *cacheSagas) olvidar(id string) {
	c.mu.Lock()
	if s, ok := c.m[id]; ok {
		c.quitar(id, &s)
	}
	c.mu.Unlock()
}

// quitar removes id, whose state is s; c.mu is held.
func (c *cacheSagas) quitar(id string, s *saga.Saga) {
	delete(c.m, id)
	c.bytes -= pesoSaga(s)
}

// pesoSaga approximates the memory a remembered saga takes: its variable
// data and a fixed share per saga and per step.
func pesoSaga(s *saga.Saga) int {
	n := 512 + len(s.ID) + len(s.Datos) + len(s.Error) + len(s.Traceparent)
	for i := range s.Pasos {
		p := &s.Pasos[i]
		n += 256 + len(p.Entrada) + len(p.Salida) + len(p.SalidaCompensacion) + len(p.Error) + len(p.ErrorCompensacion)
	}
	return n
}

// normalizada is a deep copy of s as reading it back would give it: times
// in UTC with the columns' microsecond precision.
func normalizada(s *saga.Saga) saga.Saga {
	v := s.Clone()
	v.Plazo, v.Inicio, v.Fin, v.Cancelacion = normalizar(v.Plazo), normalizar(v.Inicio), normalizar(v.Fin), normalizar(v.Cancelacion)
	for i := range v.Pasos {
		p := &v.Pasos[i]
		p.Inicio, p.Fin, p.Plazo = normalizar(p.Inicio), normalizar(p.Fin), normalizar(p.Plazo)
		p.InicioCompensacion, p.FinCompensacion = normalizar(p.InicioCompensacion), normalizar(p.FinCompensacion)
	}
	return v
}

// Cache reports how many transitions committed from the remembered state
// (aciertos) and how many found it stale and ran again the usual way
// (obsoletas), since the store was opened. A low share of hits on MySQL
// says replies reach a replica other than the one that wrote their saga.
func (db *DB) Cache() (aciertos, obsoletas uint64) {
	return db.cache.aciertos.Load(), db.cache.obsoletas.Load()
}
