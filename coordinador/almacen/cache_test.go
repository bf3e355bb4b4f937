package almacen_test

import (
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/integracion"
)

// mismoEstado fails unless the state db remembers of id is what reading it
// back gives.
func mismoEstado(t *testing.T, db *almacen.DB, id string) saga.Saga {
	t.Helper()
	leida := leer(t, db, id)
	enCache, ok := db.EnCache(id)
	if !ok {
		t.Fatalf("saga %s: not remembered", id)
	}
	if !reflect.DeepEqual(enCache, leida) {
		t.Fatalf("saga %s: remembered\n%+v\nread back\n%+v", id, enCache, leida)
	}
	return leida
}

// A saga this process wrote last takes one round trip per transition on
// MySQL, alone or in a batch (a saga with two transitions in the batch
// included), and what the store remembers is what reading it gives.
func TestTransicionDesdeLaCacheEnUnViaje(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "sagas_test_")
	n := integracion.ContarComandos(t, cfg)
	db := abrir(t, almacen.Config{Tipo: almacen.TipoMySQL, DSN: cfg.FormatDSN(), MaxConexiones: 1})
	inicio := time.Now() // nanoseconds: the store keeps microseconds
	for _, id := range []string{"a", "b", "c"} {
		s := sagaMinima(id, inicio)
		s.Datos = []byte(`{"nombre": "Verano", "presupuesto": 1000}`)
		crear(t, db, s, "")
		mismoEstado(t, db, id)
	}
	antes := n.Load()
	if err := db.Actualizar(t.Context(), "a", "", avanzar(nil)); err != nil {
		t.Fatal(err)
	}
	if got := n.Load() - antes; got != 1 {
		t.Errorf("a transition from the cache sent %d commands to MySQL, want 1", got)
	}
	if s := mismoEstado(t, db, "a"); s.Version != 1 || s.Pasos[0].Intento != 2 || s.Estado != saga.EnProgreso {
		t.Fatalf("after one transition: version %d, attempt %d, %s", s.Version, s.Pasos[0].Intento, s.Estado)
	}

	antes = n.Load()
	errs := db.ActualizarLote(t.Context(), []almacen.Entrada{
		{SagaID: "b", Fn: avanzar(nil)}, {SagaID: "a", Fn: avanzar(nil)}, {SagaID: "c", Fn: avanzar(nil)}, {SagaID: "b", Fn: avanzar(nil)},
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := n.Load() - antes; got != 1 {
		t.Errorf("a batch from the cache sent %d commands to MySQL, want 1", got)
	}
	for id, want := range map[string]int64{"a": 2, "b": 2, "c": 1} {
		if s := mismoEstado(t, db, id); s.Version != want || s.Pasos[0].Intento != 1+int(want) {
			t.Errorf("saga %s: version %d, attempt %d; want %d, %d", id, s.Version, s.Pasos[0].Intento, want, 1+want)
		}
	}
	if got := pendientes(t, db); got != 5 {
		t.Errorf("%d rows in the outbox, want 5 (one per transition)", got)
	}
	if aciertos, obsoletas := db.Cache(); aciertos != 4 || obsoletas != 0 {
		t.Errorf("cache: %d hits, %d stale; want 4 (a, then a, b, c), 0", aciertos, obsoletas)
	}
}

// When another writer (a replica, a timer, an operator) changed a saga
// after this process remembered it, the guarded write changes nothing and
// the transition runs again on the saga as stored: nothing of the stale
// attempt remains, alone or in a batch.
func TestCacheObsoletaSeLeeDeNuevo(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "sagas_test_")
	c := almacen.Config{Tipo: almacen.TipoMySQL, DSN: cfg.FormatDSN()}
	db, otra := abrir(t, c), abrir(t, c)
	for _, id := range []string{"a", "b", "c"} {
		crear(t, db, sagaMinima(id, t0), "")
	}
	// The other writer moves a and b on; db still remembers version 0.
	for _, id := range []string{"a", "b"} {
		if err := otra.Actualizar(t.Context(), id, "", avanzar(nil)); err != nil {
			t.Fatal(err)
		}
	}
	var vistas []int64
	registrar := func(s saga.Saga) (almacen.Cambio, error) {
		vistas = append(vistas, s.Version)
		return avanzar(nil)(s)
	}
	if err := db.Actualizar(t.Context(), "a", "", registrar); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(vistas, []int64{0, 1}) {
		t.Errorf("fn saw versions %v, want [0 1]: the remembered one, then the stored one", vistas)
	}
	errs := db.ActualizarLote(t.Context(), []almacen.Entrada{{SagaID: "b", Fn: avanzar(nil)}, {SagaID: "c", Fn: avanzar(nil)}})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int64{"a": 2, "b": 2, "c": 1} {
		if s := mismoEstado(t, db, id); s.Version != want || s.Pasos[0].Intento != 1+int(want) {
			t.Errorf("saga %s: version %d, attempt %d; want %d, %d", id, s.Version, s.Pasos[0].Intento, want, 1+want)
		}
	}
	if got := pendientes(t, db); got != 5 {
		t.Errorf("%d rows in the outbox, want 5 (one per committed transition)", got)
	}
	if _, obsoletas := db.Cache(); obsoletas != 2 {
		t.Errorf("%d stale states found, want 2 (a alone, the batch of b and c)", obsoletas)
	}
	// Remembered again: the next transition is from the cache.
	aciertos, _ := db.Cache()
	if err := db.Actualizar(t.Context(), "b", "", avanzar(nil)); err != nil {
		t.Fatal(err)
	}
	if despues, _ := db.Cache(); despues != aciertos+1 {
		t.Errorf("after the usual path, the next transition did not use the cache (%d hits, then %d)", aciertos, despues)
	}
}

// A saga removed behind the cache (purged by another replica) is not
// written back by the guarded upsert: the transition reports it missing.
func TestCacheNoReviveUnaSagaBorrada(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "sagas_test_")
	db := abrir(t, almacen.Config{Tipo: almacen.TipoMySQL, DSN: cfg.FormatDSN()})
	for _, id := range []string{"a", "b", "c"} {
		crear(t, db, sagaMinima(id, t0), "")
	}
	crudo, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer crudo.Close()
	for _, id := range []string{"a", "b"} {
		if _, err := crudo.ExecContext(t.Context(), "DELETE FROM sagas WHERE saga_id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Actualizar(t.Context(), "a", "", avanzar(nil)); !errors.Is(err, almacen.ErrNoEncontrada) {
		t.Fatalf("a saga deleted behind the cache: %v, want ErrNoEncontrada", err)
	}
	errs := db.ActualizarLote(t.Context(), []almacen.Entrada{{SagaID: "b", Fn: avanzar(nil)}, {SagaID: "c", Fn: avanzar(nil)}})
	if !errors.Is(errs[0], almacen.ErrNoEncontrada) || errs[1] != nil {
		t.Fatalf("a batch with a deleted saga: %v", errs)
	}
	var filas int
	if err := crudo.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM sagas WHERE saga_id IN ('a', 'b')").Scan(&filas); err != nil {
		t.Fatal(err)
	}
	if filas != 0 {
		t.Fatalf("%d deleted sagas written back", filas)
	}
	if s := mismoEstado(t, db, "c"); s.Version != 1 {
		t.Fatalf("saga c: version %d, want 1", s.Version)
	}
	if _, ok := db.EnCache("a"); ok {
		t.Error("a deleted saga is still remembered")
	}
	if got := pendientes(t, db); got != 1 {
		t.Errorf("%d rows in the outbox, want 1 (c's)", got)
	}
}

// A finished saga is forgotten: no reply can change it any more.
func TestCacheOlvidaLasSagasTerminadas(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "sagas_test_")
	db := abrir(t, almacen.Config{Tipo: almacen.TipoMySQL, DSN: cfg.FormatDSN()})
	crear(t, db, sagaMinima("a", t0), "")
	if err := db.Actualizar(t.Context(), "a", "", func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado, s.Fin = saga.Completada, t0.Add(time.Second)
		return almacen.Cambio{Saga: s, Guardar: true}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if s, ok := db.EnCache("a"); ok {
		t.Fatalf("a finished saga is remembered: %s", s.Estado)
	}
	if s := leer(t, db, "a"); s.Estado != saga.Completada {
		t.Fatalf("saga a: %s", s.Estado)
	}
}
