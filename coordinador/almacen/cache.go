package almacen

import (
	"sync"
	"sync/atomic"

	"github.com/alpespartner/sagas/coordinador/saga"
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

// maxEnCache bounds the sagas remembered; beyond it an arbitrary one is
// forgotten. Only sagas in flight are kept (a terminal one is forgotten),
// so a coordinator holds about its sagas in flight.
const maxEnCache = 8192

// maxPesoEnCache leaves out sagas whose input and step data weigh more: the
// cache bounds its memory by count, so each entry must stay small.
const maxPesoEnCache = 16 << 10

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

// cacheSagas is the state this process last committed of sagas in flight.
// Its values are never modified: a taker clones before changing one.
type cacheSagas struct {
	mu sync.Mutex
	m  map[string]saga.Saga
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
	if previo, ok := c.m[s.ID]; ok && previo.Version > v.Version {
		return
	}
	if c.m == nil {
		c.m = make(map[string]saga.Saga)
	}
	if _, ok := c.m[s.ID]; !ok && len(c.m) >= maxEnCache {
		for id := range c.m {
			delete(c.m, id)
			break
		}
	}
	c.m[s.ID] = v
}

// olvidar drops id's state: the next transition reads it.
func (c *cacheSagas) olvidar(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// pesoSaga is the size of a saga's variable data.
func pesoSaga(s *saga.Saga) int {
	n := len(s.Datos)
	for i := range s.Pasos {
		p := &s.Pasos[i]
		n += len(p.Entrada) + len(p.Salida) + len(p.SalidaCompensacion) + len(p.Error) + len(p.ErrorCompensacion)
	}
	return n + len(s.Error)
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
