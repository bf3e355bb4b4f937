package almacen

import "github.com/alpespartner/sagas/coordinador/saga"

// EnCache returns the state the store remembers of id (cacheSagas).
func (db *DB) EnCache(id string) (saga.Saga, bool) { return db.cache.tomar(id) }

// Cache returns how many transitions committed from the remembered state
// and how many found it stale.
func (db *DB) Cache() (aciertos, obsoletas uint64) {
	return db.cache.aciertos.Load(), db.cache.obsoletas.Load()
}
