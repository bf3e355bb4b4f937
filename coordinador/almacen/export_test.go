package almacen

import "github.com/alpespartner/sagas/coordinador/saga"

// EnCache returns the state the store remembers of id (cacheSagas).
func (db *DB) EnCache(id string) (saga.Saga, bool) { return db.cache.tomar(id) }
