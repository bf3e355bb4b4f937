package almacen_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/integracion"
)

// nuevaConfig prepares an empty database for one test and returns the
// configuration that opens it.
type nuevaConfig func(t testing.TB) almacen.Config

func configSQLite(t testing.TB) almacen.Config {
	return almacen.Config{Tipo: almacen.TipoSQLite, Ruta: filepath.Join(t.TempDir(), "sagas.db")}
}

// configMySQL creates a fresh database sagas_test_<random> on the test
// server and drops it when the test ends.
func configMySQL(t testing.TB) almacen.Config {
	return almacen.Config{Tipo: almacen.TipoMySQL, DSN: integracion.BaseMySQL(t, "sagas_test_").FormatDSN()}
}

func TestStoreSQLite(t *testing.T) { probarStore(t, configSQLite) }

func TestStoreMySQL(t *testing.T) {
	integracion.MySQLDSN(t)
	probarStore(t, configMySQL)
}

func abrir(t testing.TB, c almacen.Config) *almacen.DB {
	t.Helper()
	db, err := almacen.Abrir(context.Background(), c)
	if err != nil {
		t.Fatalf("Abrir: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// crudo opens the same database without the store, to look at the rows.
func crudo(t testing.TB, c almacen.Config) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if c.Tipo == almacen.TipoSQLite {
		db, err = sql.Open("sqlite", c.Ruta+"?_pragma=busy_timeout(10000)")
	} else {
		db, err = sql.Open("mysql", c.DSN)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// probarStore is the suite every Store implementation must pass.
func probarStore(t *testing.T, nueva nuevaConfig) {
	pruebas := []struct {
		nombre string
		f      func(t *testing.T, c almacen.Config)
	}{
		{"MigracionesIdempotentes", probarMigracionesIdempotentes},
		{"IdaYVueltaExacta", probarIdaYVueltaExacta},
		{"ColumnasDeLasFilas", probarColumnasDeLasFilas},
		{"CrearSagaIdempotentePorClaveYPorID", probarCrearSagaIdempotente},
		{"CrearSagaConcurrenteConLaMismaClaveCreaUna", probarCrearSagaConcurrente},
		{"CrearSagaConLaMismaClaveYOtraHuellaSeRechaza", probarCrearSagaHuella},
		{"CrearSagaConcurrenteConLaMismaClaveYHuellasDistintas", probarCrearSagaHuellaConcurrente},
		{"ActualizarDescartaDuplicadosSinLlamarFn", probarActualizarDuplicado},
		{"GuardarFalseSoloEscribeInbox", probarGuardarFalse},
		{"ErrorDeFnDeshaceTodoInclusoInbox", probarErrorDeFn},
		{"VersionSubeUnoPorTransicion", probarVersion},
		{"SoloSeEscribenLosPasosCambiados", probarSoloPasosCambiados},
		{"ActualizarGuardaCualquierCampo", probarActualizarCualquierCampo},
		{"LasEntradasSinCambiosNoSeReescriben", probarEntradasSinReescribir},
		{"ActualizarConcurrenteNoPierdeCambios", probarActualizarConcurrente},
		{"SagaInexistente", probarNoEncontrada},
		{"PoolLlenoDeTransaccionesNoSeBloquea", probarPoolLleno},
		{"CrearSagaEnGrupoComoUnaAUna", probarCrearEnGrupo},
		{"ActualizarLoteComoUnaAUna", probarLote},
		{"ActualizarLoteConSagaInexistente", probarLoteInexistente},
		{"ActualizarLoteConcurrenteNoPierdeCambios", probarLoteConcurrente},
		{"ProcesarVencidasSoloVencidasNoTerminales", probarVencidas},
		{"ProcesarVencidasConcurrenteProcesaCadaSagaUnaVez", probarVencidasConcurrente},
		{"DrenarOutboxEnOrdenYDejaLasNoConfirmadas", probarDrenar},
		{"DrenarOutboxConcurrenteEntregaCadaFilaUnaVez", probarDrenarConcurrente},
		{"DrenarOutboxMientrasOtroPublicaNoVeSusFilas", probarDrenarBloqueado},
		{"FilaRechazadaEsperaYTrasElMaximoSeAparcaSinRetenerNada", probarRechazos},
		{"AlConfirmarEntregaLasFilasConSusIDs", probarAlConfirmar},
		{"ListarYContarConFiltros", probarListar},
		{"FlujoCompletoConLaMaquina", probarFlujoConLaMaquina},
		{"FlujoParaleloConLaMaquina", probarFlujoParaleloConLaMaquina},
		{"CancelarConLaMaquinaTerminaCancelada", probarCancelarConLaMaquina},
		{"PurgarInbox", probarPurgarInbox},
		{"EnCursoPorVersionCuentaLasQueNecesitanSuDefinicion", probarEnCursoPorVersion},
	}
	for _, p := range pruebas {
		t.Run(p.nombre, func(t *testing.T) { p.f(t, nueva(t)) })
	}
}

var (
	// t0 has nanoseconds and a zone on purpose: the store keeps microseconds
	// in UTC.
	zona = time.FixedZone("UTC-5", -5*3600)
	t0   = time.Date(2025, 3, 14, 9, 26, 53, 589793238, zona)
)

// normal is what the store is expected to give back for s: times in UTC at
// microsecond precision.
func normal(s saga.Saga) saga.Saga {
	s = s.Clone()
	n := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.Truncate(time.Microsecond).UTC()
	}
	s.Plazo, s.Inicio, s.Fin, s.Cancelacion = n(s.Plazo), n(s.Inicio), n(s.Fin), n(s.Cancelacion)
	for i := range s.Pasos {
		p := &s.Pasos[i]
		p.Inicio, p.Fin, p.InicioCompensacion, p.FinCompensacion = n(p.Inicio), n(p.Fin), n(p.InicioCompensacion), n(p.FinCompensacion)
		p.Plazo = n(p.Plazo)
	}
	return s
}

func igual(t *testing.T, que string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("%s:\n got  %s\n want %s\n(%#v\n vs %#v)", que, g, w, got, want)
	}
}

// sagaCompleta has every field set, odd JSON spacing included.
func sagaCompleta(id string) saga.Saga {
	return saga.Saga{
		ID: id, Tipo: "campana", VersionDefinicion: 3, Estado: saga.Compensando,
		CampaniaID: "camp-7", UsuarioID: "usuario-ñ",
		Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Datos:       json.RawMessage(`{"nombre":  "Verano",  "presupuesto": 1.50, "tags":["a","ü"]}`),
		Pasos: []saga.EstadoDePaso{
			{
				Nombre: "influencer", Servicio: "influencer", Estado: saga.PasoCompensado, Intento: 2,
				Inicio: t0, Fin: t0.Add(1500 * time.Millisecond),
				Entrada: json.RawMessage(`{"entrada":{}}`), Salida: json.RawMessage(`{"ok": true}`),
				IntentoCompensacion: 1, InicioCompensacion: t0.Add(3 * time.Second), FinCompensacion: t0.Add(4 * time.Second),
				SalidaCompensacion: json.RawMessage(`{"deshecho":1}`),
			},
			{
				Nombre: "marca", Servicio: "marca", Estado: saga.PasoCompensando, Intento: 3,
				Inicio: t0.Add(2 * time.Second), Fin: t0.Add(2500 * time.Millisecond),
				Entrada: json.RawMessage(`[1, 2 ,3]`), Error: "la marca dijo que no",
				IntentoCompensacion: 2, InicioCompensacion: t0.Add(5 * time.Second),
				ErrorCompensacion: "sin respuesta a la compensación (timeout)", Plazo: t0.Add(time.Minute + 123*time.Nanosecond),
			},
			{Nombre: "tracking", Servicio: "tracking", Estado: saga.PasoPendiente},
		},
		Actual: 1, Plazo: t0.Add(time.Minute + 123*time.Nanosecond), EnEspera: true,
		PasoFallido: "marca", Compensaciones: []string{"influencer", "marca"},
		Error: "paso marca falló", Inicio: t0, Fin: time.Time{}, Version: 7,
	}
}

// sagaMinima leaves every optional field zero.
func sagaMinima(id string, inicio time.Time) saga.Saga {
	return saga.Saga{
		ID: id, Tipo: "campana", VersionDefinicion: 1, Estado: saga.Iniciada, Inicio: inicio,
		Compensaciones: []string{},
		Pasos: []saga.EstadoDePaso{
			{Nombre: "influencer", Servicio: "influencer", Estado: saga.PasoEjecutando, Intento: 1, Inicio: inicio},
			{Nombre: "marca", Servicio: "marca", Estado: saga.PasoPendiente},
		},
	}
}

func crear(t *testing.T, db *almacen.DB, s saga.Saga, clave string, msgs ...almacen.Mensaje) {
	t.Helper()
	id, creada, err := db.CrearSaga(t.Context(), s, almacen.Idempotencia{Clave: clave}, msgs)
	if err != nil || !creada || id != s.ID {
		t.Fatalf("CrearSaga(%s) = %q, %v, %v", s.ID, id, creada, err)
	}
}

func leer(t *testing.T, db *almacen.DB, id string) saga.Saga {
	t.Helper()
	s, err := db.Saga(t.Context(), id)
	if err != nil {
		t.Fatalf("Saga(%s): %v", id, err)
	}
	return s
}

func mensaje(clave, tipo string) almacen.Mensaje {
	return almacen.Mensaje{
		Topico: "comandos-marca", Clave: clave, Tipo: tipo, Carga: []byte{0, 1, 2, 0xff, 'x'},
		Propiedades: map[string]string{"type": tipo, "saga_id": clave, "traceparent": "00-abc-def-01"},
	}
}

func pendientes(t *testing.T, db *almacen.DB) int {
	t.Helper()
	n, _, err := db.Outbox(t.Context())
	if err != nil {
		t.Fatalf("Outbox: %v", err)
	}
	return n
}

func drenarTodo(t *testing.T, db *almacen.DB) []almacen.Mensaje {
	t.Helper()
	var out []almacen.Mensaje
	_, err := db.DrenarOutbox(t.Context(), 1000, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		out = append(out, ms...)
		var ids []int64
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return ids, nil
	})
	if err != nil {
		t.Fatalf("DrenarOutbox: %v", err)
	}
	return out
}

func probarMigracionesIdempotentes(t *testing.T, c almacen.Config) {
	// Two replicas starting at once, then a restart.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			db, err := almacen.Abrir(t.Context(), c)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("Abrir concurrente: %v", err)
		}
	}
	db := abrir(t, c)
	crear(t, db, sagaMinima("s1", t0), "")
	db.Close()
	db = abrir(t, c)
	leer(t, db, "s1")

	var n, distintas int
	if err := crudo(t, c).QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&n, &distintas); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != distintas {
		t.Fatalf("schema_migrations: %d filas, %d versiones distintas", n, distintas)
	}
}

func probarIdaYVueltaExacta(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	for _, s := range []saga.Saga{
		sagaCompleta("completa"),
		sagaMinima("minima", t0),
		func() saga.Saga { s := sagaMinima("nil-comp", t0.In(time.Local)); s.Compensaciones = nil; return s }(),
		func() saga.Saga { s := sagaMinima("sin-pasos", t0); s.Pasos = nil; return s }(),
		func() saga.Saga {
			s := sagaCompleta("terminada")
			s.Estado, s.Fin, s.Plazo, s.EnEspera = saga.CompensacionFallida, t0.Add(time.Hour), time.Time{}, false
			return s
		}(),
		func() saga.Saga {
			s := sagaCompleta("cancelada")
			s.Estado, s.PasoFallido, s.Cancelacion = saga.Compensando, "", t0.Add(1234567*time.Nanosecond)
			return s
		}(),
	} {
		crear(t, db, s, "")
		igual(t, "saga "+s.ID, leer(t, db, s.ID), normal(s))
	}
	// Listing with steps reads the same values through another query.
	lista, err := db.Listar(t.Context(), almacen.Filtro{SagaID: "completa", ConPasos: true})
	if err != nil || len(lista) != 1 {
		t.Fatalf("Listar = %d, %v", len(lista), err)
	}
	igual(t, "Listar ConPasos", lista[0], normal(sagaCompleta("completa")))
}

func probarColumnasDeLasFilas(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	s := sagaMinima("s1", t0)
	crear(t, db, s, "")
	crear(t, db, sagaCompleta("s2"), "clave-2")
	raw := crudo(t, c)
	var plazoNulo, claveNula, finNulo bool
	err := raw.QueryRow(`SELECT plazo IS NULL, clave_idempotencia IS NULL, timestamp_fin IS NULL FROM sagas WHERE saga_id = 's1'`).
		Scan(&plazoNulo, &claveNula, &finNulo)
	if err != nil || !plazoNulo || !claveNula || !finNulo {
		t.Fatalf("s1: plazo NULL %v, clave NULL %v, fin NULL %v, err %v", plazoNulo, claveNula, finNulo, err)
	}
	var clave, metadatos, comp string
	if err := raw.QueryRow(`SELECT clave_idempotencia, metadatos, compensaciones FROM sagas WHERE saga_id = 's2'`).Scan(&clave, &metadatos, &comp); err != nil {
		t.Fatal(err)
	}
	if clave != "clave-2" || metadatos != string(sagaCompleta("").Datos) || comp != `["influencer","marca"]` {
		t.Fatalf("s2: clave %q metadatos %q compensaciones %q", clave, metadatos, comp)
	}
	rows, err := raw.Query(`SELECT paso_id, orden, microservicio, descripcion, duracion_segundos FROM pasos_saga WHERE saga_id = 's2' ORDER BY orden`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, servicio, desc string
		var orden int
		var dur sql.NullFloat64
		if err := rows.Scan(&id, &orden, &servicio, &desc, &dur); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%d|%s|%q|%v", id, orden, servicio, desc, dur))
	}
	want := []string{
		`s2:1|1|influencer|""|{1.5 true}`,
		`s2:2|2|marca|""|{0.5 true}`,
		`s2:3|3|tracking|""|{0 false}`,
	}
	igual(t, "pasos_saga", got, want)
}

func probarCrearSagaIdempotente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	crear(t, db, sagaMinima("s1", t0), "clave-A", mensaje("s1", "A"))

	// Same idempotency key, another id: nothing written, the first id back.
	id, creada, err := db.CrearSaga(ctx, sagaMinima("s2", t0), almacen.Idempotencia{Clave: "clave-A"}, []almacen.Mensaje{mensaje("s2", "B")})
	if err != nil || creada || id != "s1" {
		t.Fatalf("misma clave: %q, %v, %v; quiero s1, false, nil", id, creada, err)
	}
	if _, err := db.Saga(ctx, "s2"); !errors.Is(err, almacen.ErrNoEncontrada) {
		t.Fatalf("s2 no debía crearse: %v", err)
	}
	// Same id (a legacy command naming its saga), with or without a key.
	for _, clave := range []string{"", "clave-B"} {
		otra := sagaMinima("s1", t0.Add(time.Hour))
		otra.Tipo = "otro"
		id, creada, err = db.CrearSaga(ctx, otra, almacen.Idempotencia{Clave: clave}, []almacen.Mensaje{mensaje("s1", "C")})
		if err != nil || creada || id != "s1" {
			t.Fatalf("mismo id, clave %q: %q, %v, %v; quiero s1, false, nil", clave, id, creada, err)
		}
	}
	igual(t, "s1 intacta", leer(t, db, "s1"), normal(sagaMinima("s1", t0)))
	if n := pendientes(t, db); n != 1 {
		t.Fatalf("outbox con %d mensajes, quiero 1 (solo el de la creación)", n)
	}
	// The key clave-B was not taken by the failed attempt.
	crear(t, db, sagaMinima("s3", t0), "clave-B")
}

func probarCrearSagaHuella(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	if _, _, err := db.CrearSaga(ctx, sagaMinima("s1", t0), almacen.Idempotencia{Clave: "k", Huella: "h1"},
		[]almacen.Mensaje{mensaje("s1", "A")}); err != nil {
		t.Fatal(err)
	}
	// A saga stored without a fingerprint (a row older than the column).
	crear(t, db, sagaMinima("vieja", t0), "sin-huella")

	casos := []struct {
		nombre string
		idem   almacen.Idempotencia
		quiero string // saga id answered; "" when refused
	}{
		{"misma huella devuelve la primera saga", almacen.Idempotencia{Clave: "k", Huella: "h1"}, "s1"},
		{"sin huella devuelve la primera saga", almacen.Idempotencia{Clave: "k"}, "s1"},
		{"otra huella se rechaza", almacen.Idempotencia{Clave: "k", Huella: "h2"}, ""},
		{"fila sin huella acepta cualquier huella", almacen.Idempotencia{Clave: "sin-huella", Huella: "h3"}, "vieja"},
	}
	for i, cs := range casos {
		t.Run(cs.nombre, func(t *testing.T) {
			nueva := fmt.Sprintf("n%d", i)
			id, creada, err := db.CrearSaga(ctx, sagaMinima(nueva, t0), cs.idem, []almacen.Mensaje{mensaje(nueva, "B")})
			if cs.quiero == "" {
				var r *almacen.ClaveReutilizadaError
				if !errors.As(err, &r) || !errors.Is(err, almacen.ErrClaveReutilizada) || r.SagaID != "s1" || r.Clave != "k" || creada {
					t.Fatalf("= %q, %v, %v; quiero ClaveReutilizadaError{k, s1}", id, creada, err)
				}
			} else if err != nil || creada || id != cs.quiero {
				t.Fatalf("= %q, %v, %v; quiero %s, false, nil", id, creada, err, cs.quiero)
			}
			if _, err := db.Saga(ctx, nueva); !errors.Is(err, almacen.ErrNoEncontrada) {
				t.Fatalf("%s no debía crearse: %v", nueva, err)
			}
		})
	}
	if n := pendientes(t, db); n != 1 {
		t.Fatalf("outbox con %d mensajes, quiero 1 (solo el de la creación de s1)", n)
	}
}

// probarCrearSagaHuellaConcurrente races creations with one key and two
// fingerprints (through the group commit): one saga is created, the same
// fingerprint gets it back, the other is refused naming it.
func probarCrearSagaHuellaConcurrente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	const n = 12
	ids := make([]string, n)
	creadas := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idem := almacen.Idempotencia{Clave: "misma", Huella: []string{"a", "b"}[i%2]}
			ids[i], creadas[i], errs[i] = db.CrearSaga(t.Context(), sagaMinima(fmt.Sprintf("s%d", i), t0), idem, nil)
		}()
	}
	wg.Wait()
	ganadora := -1
	for i := range n {
		if creadas[i] {
			if ganadora >= 0 {
				t.Fatalf("creadas s%d y s%d con la misma clave", ganadora, i)
			}
			ganadora = i
		}
	}
	if ganadora < 0 {
		t.Fatalf("ninguna creada: %v", errs)
	}
	quiero := fmt.Sprintf("s%d", ganadora)
	for i := range n {
		var r *almacen.ClaveReutilizadaError
		switch {
		case i%2 == ganadora%2:
			if errs[i] != nil || ids[i] != quiero {
				t.Errorf("s%d (misma huella): %q, %v; quiero %s", i, ids[i], errs[i], quiero)
			}
		case !errors.As(errs[i], &r) || r.SagaID != quiero:
			t.Errorf("s%d (otra huella): %q, %v; quiero ClaveReutilizadaError de %s", i, ids[i], errs[i], quiero)
		}
	}
}

func probarCrearSagaConcurrente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	const n = 8
	ids := make([]string, n)
	creadas := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			ids[i], creadas[i], err = db.CrearSaga(t.Context(), sagaMinima(fmt.Sprintf("s%d", i), t0), almacen.Idempotencia{Clave: "misma"}, []almacen.Mensaje{mensaje("x", "y")})
			if err != nil {
				t.Errorf("CrearSaga %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	ganadora := ""
	for i := range n {
		if creadas[i] {
			if ganadora != "" {
				t.Fatalf("dos sagas creadas con la misma clave: %s y %s", ganadora, ids[i])
			}
			ganadora = ids[i]
		}
	}
	for i := range n {
		if ids[i] != ganadora {
			t.Fatalf("llamada %d devolvió %q, la creada es %q", i, ids[i], ganadora)
		}
	}
	r, err := db.Contar(t.Context(), almacen.Filtro{})
	if err != nil || r[saga.Iniciada] != 1 {
		t.Fatalf("Contar = %v, %v; quiero una saga", r, err)
	}
	if p := pendientes(t, db); p != 1 {
		t.Fatalf("outbox con %d mensajes, quiero 1", p)
	}
}

// avanzar is a transition that bumps the first step's attempt and sends one
// message.
func avanzar(llamadas *atomic.Int32) func(saga.Saga) (almacen.Cambio, error) {
	return func(s saga.Saga) (almacen.Cambio, error) {
		if llamadas != nil {
			llamadas.Add(1)
		}
		s.Pasos[0].Intento++
		s.Estado = saga.EnProgreso
		return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje(s.ID, "avanzar")}}, nil
	}
}

func probarActualizarDuplicado(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	crear(t, db, sagaMinima("s1", t0), "")
	var llamadas atomic.Int32
	if err := db.Actualizar(ctx, "s1", "resp-1", avanzar(&llamadas)); err != nil {
		t.Fatal(err)
	}
	err := db.Actualizar(ctx, "s1", "resp-1", avanzar(&llamadas))
	if !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("segunda entrega: %v; quiero ErrDuplicado", err)
	}
	if n := llamadas.Load(); n != 1 {
		t.Fatalf("fn llamada %d veces, quiero 1", n)
	}
	if s := leer(t, db, "s1"); s.Version != 1 || s.Pasos[0].Intento != 2 {
		t.Fatalf("versión %d intento %d; quiero 1 y 2", s.Version, s.Pasos[0].Intento)
	}
	if n := pendientes(t, db); n != 1 {
		t.Fatalf("outbox %d, quiero 1", n)
	}
	// The inbox is shared with RegistrarInbox.
	if err := db.RegistrarInbox(ctx, "resp-1"); !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("RegistrarInbox(resp-1): %v; quiero ErrDuplicado", err)
	}
	if err := db.RegistrarInbox(ctx, "evento-9"); err != nil {
		t.Fatal(err)
	}
	if err := db.RegistrarInbox(ctx, "evento-9"); !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("RegistrarInbox repetido: %v; quiero ErrDuplicado", err)
	}
	if err := db.Actualizar(ctx, "s1", "evento-9", avanzar(&llamadas)); !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("Actualizar con clave de RegistrarInbox: %v; quiero ErrDuplicado", err)
	}
	// An empty dedup key does not de-duplicate.
	for range 2 {
		if err := db.Actualizar(ctx, "s1", "", avanzar(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if s := leer(t, db, "s1"); s.Version != 3 {
		t.Fatalf("versión %d, quiero 3", s.Version)
	}
}

func probarGuardarFalse(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	antes := sagaMinima("s1", t0)
	crear(t, db, antes, "")
	err := db.Actualizar(ctx, "s1", "tardia", func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado = saga.Completada
		return almacen.Cambio{Saga: s, Guardar: false, Mensajes: []almacen.Mensaje{mensaje("s1", "x")}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	igual(t, "saga sin cambios", leer(t, db, "s1"), normal(antes))
	if n := pendientes(t, db); n != 0 {
		t.Fatalf("outbox %d, quiero 0", n)
	}
	if err := db.Actualizar(ctx, "s1", "tardia", avanzar(nil)); !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("la clave del inbox debía quedar: %v", err)
	}
}

func probarErrorDeFn(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	antes := sagaMinima("s1", t0)
	crear(t, db, antes, "")
	boom := errors.New("definición desconocida")
	err := db.Actualizar(ctx, "s1", "resp-1", func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado = saga.Completada
		return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje("s1", "x")}}, boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "s1") {
		t.Fatalf("error %v; quiero %v envuelto con el id", err, boom)
	}
	igual(t, "saga sin cambios", leer(t, db, "s1"), normal(antes))
	if n := pendientes(t, db); n != 0 {
		t.Fatalf("outbox %d, quiero 0", n)
	}
	// The inbox entry was rolled back too: the redelivery is processed.
	if err := db.Actualizar(ctx, "s1", "resp-1", avanzar(nil)); err != nil {
		t.Fatalf("reentrega tras error: %v", err)
	}
	// Invalid raw JSON from fn is refused, nothing written.
	err = db.Actualizar(ctx, "s1", "resp-2", func(s saga.Saga) (almacen.Cambio, error) {
		s.Pasos[1].Salida = json.RawMessage(`{no es json`)
		return almacen.Cambio{Saga: s, Guardar: true}, nil
	})
	if err == nil {
		t.Fatal("JSON no válido aceptado")
	}
	if s := leer(t, db, "s1"); s.Version != 1 {
		t.Fatalf("versión %d, quiero 1", s.Version)
	}
}

func probarVersion(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	crear(t, db, sagaMinima("s1", t0), "")
	for i := range 5 {
		err := db.Actualizar(ctx, "s1", fmt.Sprintf("r%d", i), func(s saga.Saga) (almacen.Cambio, error) {
			if s.Version != int64(i) {
				t.Errorf("transición %d ve la versión %d", i, s.Version)
			}
			s.Version = 99 // ignored: the store owns the version
			s.Actual = i
			return almacen.Cambio{Saga: s, Guardar: true}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := leer(t, db, "s1"); s.Version != 5 || s.Actual != 4 {
		t.Fatalf("versión %d actual %d; quiero 5 y 4", s.Version, s.Actual)
	}
	// Guardar false does not count.
	_ = db.Actualizar(ctx, "s1", "", func(s saga.Saga) (almacen.Cambio, error) { return almacen.Cambio{Saga: s}, nil })
	if s := leer(t, db, "s1"); s.Version != 5 {
		t.Fatalf("versión %d tras Guardar false, quiero 5", s.Version)
	}
}

func probarActualizarCualquierCampo(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	crear(t, db, sagaMinima("s1", t0), "")
	nueva := sagaCompleta("s1")
	nueva.Pasos = append(nueva.Pasos, saga.EstadoDePaso{Nombre: "extra", Servicio: "extra", Estado: saga.PasoPendiente})
	for _, cambio := range []saga.Saga{nueva, sagaMinima("s1", t0.Add(time.Hour))} {
		err := db.Actualizar(t.Context(), "s1", "", func(s saga.Saga) (almacen.Cambio, error) {
			return almacen.Cambio{Saga: cambio, Guardar: true}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := normal(cambio)
		want.Version = leer(t, db, "s1").Version
		igual(t, "saga reescrita", leer(t, db, "s1"), want)
	}
}

// probarEntradasSinReescribir: a transition leaves the saga's input and
// an unchanged step input as stored (markers written behind the store's
// back survive), writes a changed or new one, clears an emptied one, and
// rewrites the saga's input when it changes; on every path (one saga or a
// batch, read locked or from the cache).
func probarEntradasSinReescribir(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	raw := crudo(t, c)
	ctx := t.Context()
	texto := func(q string, args ...any) []string {
		t.Helper()
		rows, err := raw.Query(q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v sql.NullString
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, cmp.Or(v.String, "NULL"))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for i, v := range []struct {
		nombre string
		lote   bool
		clave  string
	}{
		{"Actualizar", false, ""}, {"Actualizar con clave", false, "k"},
		{"ActualizarLote", true, ""}, {"ActualizarLote con clave", true, "k"},
	} {
		t.Run(v.nombre, func(t *testing.T) {
			id, otra := fmt.Sprintf("e%d", i), fmt.Sprintf("o%d", i)
			s := sagaCompleta(id)
			s.Pasos = append(s.Pasos, saga.EstadoDePaso{Nombre: "vaciar", Servicio: "vaciar", Estado: saga.PasoCompletado, Entrada: json.RawMessage(`{"vaciar":1}`)})
			crear(t, db, s, "")
			crear(t, db, sagaMinima(otra, t0), "")
			if _, err := raw.Exec(`UPDATE sagas SET metadatos = '{"marca":"saga"}' WHERE saga_id = ?`, id); err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(`UPDATE pasos_saga SET datos_entrada = '{"marca":"paso"}' WHERE saga_id = ? AND orden = 1`, id); err != nil {
				t.Fatal(err)
			}
			transicion := func(n int, fn func(*saga.Saga)) {
				t.Helper()
				f := func(s saga.Saga) (almacen.Cambio, error) {
					fn(&s)
					return almacen.Cambio{Saga: s, Guardar: true}, nil
				}
				clave := func(id string) string {
					if v.clave == "" {
						return ""
					}
					return fmt.Sprintf("%s-%s-%d", v.clave, id, n)
				}
				if !v.lote {
					if err := db.Actualizar(ctx, id, clave(id), f); err != nil {
						t.Fatal(err)
					}
					return
				}
				es := []almacen.Entrada{{SagaID: id, Dedup: clave(id), Fn: f}, {SagaID: otra, Dedup: clave(otra), Fn: avanzar(nil)}}
				for j, err := range db.ActualizarLote(ctx, es) {
					if err != nil {
						t.Fatalf("entrada %d: %v", j, err)
					}
				}
			}
			transicion(1, func(s *saga.Saga) {
				s.Pasos[0].Intento++
				s.Pasos[1].Entrada = json.RawMessage(`{"nueva":true}`)
				s.Pasos[2].Estado = saga.PasoEjecutando
				s.Pasos[3].Entrada = nil
				s.Pasos = append(s.Pasos,
					saga.EstadoDePaso{Nombre: "quinto", Servicio: "quinto", Estado: saga.PasoEjecutando, Entrada: json.RawMessage(`{"quinto":5}`)},
					saga.EstadoDePaso{Nombre: "sexto", Servicio: "sexto", Estado: saga.PasoPendiente})
			})
			igual(t, "entradas de los pasos", texto(`SELECT datos_entrada FROM pasos_saga WHERE saga_id = ? ORDER BY orden`, id),
				[]string{`{"marca":"paso"}`, `{"nueva":true}`, "NULL", "NULL", `{"quinto":5}`, "NULL"})
			igual(t, "entrada de la saga", texto(`SELECT metadatos FROM sagas WHERE saga_id = ?`, id), []string{`{"marca":"saga"}`})
			if got := leer(t, db, id).Pasos[0].Intento; got != 3 {
				t.Fatalf("intento del paso 1: %d, quiero 3", got)
			}

			transicion(2, func(s *saga.Saga) { s.Datos = json.RawMessage(`{"otra":1}`) })
			igual(t, "entrada de la saga cambiada", texto(`SELECT metadatos FROM sagas WHERE saga_id = ?`, id), []string{`{"otra":1}`})
			if want := map[bool]int64{false: 0, true: 2}[v.lote]; leer(t, db, otra).Version != want {
				t.Fatalf("versión de %s: %d, quiero %d", otra, leer(t, db, otra).Version, want)
			}
		})
	}
}

func probarSoloPasosCambiados(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	s := sagaCompleta("s1")
	crear(t, db, s, "")
	raw := crudo(t, c)
	// Mark a derived column the store never reads: a rewrite of the row
	// would reset it.
	if _, err := raw.Exec(`UPDATE pasos_saga SET duracion_segundos = 999 WHERE saga_id = 's1'`); err != nil {
		t.Fatal(err)
	}
	err := db.Actualizar(t.Context(), "s1", "", func(s saga.Saga) (almacen.Cambio, error) {
		s.Pasos[0].Error = "cambiado"
		return almacen.Cambio{Saga: s, Guardar: true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := raw.Query(`SELECT orden, duracion_segundos FROM pasos_saga WHERE saga_id = 's1' ORDER BY orden`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var orden int
		var d float64
		if err := rows.Scan(&orden, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%g", orden, d))
	}
	igual(t, "duraciones (solo el paso 1 reescrito)", got, []string{"1:1.5", "2:999", "3:999"})
	want := normal(s)
	want.Pasos[0].Error, want.Version = "cambiado", s.Version+1
	igual(t, "saga", leer(t, db, "s1"), want)
}

func probarActualizarConcurrente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	crear(t, db, sagaMinima("s1", t0), "")
	const n = 8
	var llamadas atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := db.Actualizar(t.Context(), "s1", fmt.Sprintf("g%d", i), func(s saga.Saga) (almacen.Cambio, error) {
				llamadas.Add(1)
				s.Compensaciones = append(s.Compensaciones, fmt.Sprintf("g%d", i))
				s.Pasos[0].Intento++
				return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje("s1", fmt.Sprintf("g%d", i))}}, nil
			})
			if err != nil {
				t.Errorf("Actualizar g%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	s := leer(t, db, "s1")
	got := slices.Clone(s.Compensaciones)
	slices.Sort(got)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("g%d", i))
	}
	igual(t, "cada incremento exactamente una vez", got, want)
	if s.Version != n || s.Pasos[0].Intento != 1+n {
		t.Fatalf("versión %d intento %d; quiero %d y %d", s.Version, s.Pasos[0].Intento, n, 1+n)
	}
	if p := pendientes(t, db); p != n {
		t.Fatalf("outbox %d, quiero %d", p, n)
	}
	t.Logf("%d transiciones, fn llamada %d veces", n, llamadas.Load())
}

func probarNoEncontrada(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	if _, err := db.Saga(ctx, "nada"); !errors.Is(err, almacen.ErrNoEncontrada) || !strings.Contains(err.Error(), "nada") {
		t.Fatalf("Saga: %v; quiero ErrNoEncontrada con el id", err)
	}
	llamada := false
	err := db.Actualizar(ctx, "nada", "d1", func(s saga.Saga) (almacen.Cambio, error) {
		llamada = true
		return almacen.Cambio{}, nil
	})
	if !errors.Is(err, almacen.ErrNoEncontrada) || llamada {
		t.Fatalf("Actualizar: %v (fn llamada %v); quiero ErrNoEncontrada sin llamar a fn", err, llamada)
	}
	if err := db.RegistrarInbox(ctx, "d1"); err != nil {
		t.Fatalf("la clave no debía quedar en el inbox: %v", err)
	}
}

// probarPoolLleno: more concurrent transactions than pooled connections,
// each using statements never seen before (a cold start), all finish. When a
// caller inside a transaction prepared statements itself, it waited for a
// second connection while holding one, and a full pool deadlocked.
func probarPoolLleno(t *testing.T, c almacen.Config) {
	c.MaxConexiones = 2
	db := abrir(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			// i+1 outbox rows: a statement shape per goroutine.
			var msgs []almacen.Mensaje
			for range i + 1 {
				msgs = append(msgs, mensaje(fmt.Sprintf("p%d", i), "x"))
			}
			id := fmt.Sprintf("p%d", i)
			if _, _, err := db.CrearSaga(ctx, sagaMinima(id, t0), almacen.Idempotencia{}, msgs); err != nil {
				t.Errorf("CrearSaga %s: %v", id, err)
				return
			}
			if err := db.Actualizar(ctx, id, "d-"+id, avanzar(nil)); err != nil {
				t.Errorf("Actualizar %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if p := pendientes(t, db); p != 16*17/2+16 {
		t.Fatalf("outbox %d, quiero %d", p, 16*17/2+16)
	}
}

// probarCrearEnGrupo: concurrent creations, committed in groups, give what
// one-by-one creation gives: one saga per idempotency key (repeats get the
// first one's id and creada false), each with its steps and messages.
func probarCrearEnGrupo(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	const n = 60
	type resultado struct {
		id     string
		creada bool
	}
	res := make([]resultado, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Every fourth call repeats the key of the call before it.
			clave := fmt.Sprintf("k%d", i-i%4/3)
			id, creada, err := db.CrearSaga(t.Context(), sagaMinima(fmt.Sprintf("g%d", i), t0), almacen.Idempotencia{Clave: clave},
				[]almacen.Mensaje{mensaje(fmt.Sprintf("g%d", i), "a"), mensaje(fmt.Sprintf("g%d", i), "b")})
			if err != nil {
				t.Errorf("CrearSaga g%d: %v", i, err)
			}
			res[i] = resultado{id, creada}
		})
	}
	wg.Wait()
	porClave := map[string]string{}
	creadas := 0
	for i, r := range res {
		clave := fmt.Sprintf("k%d", i-i%4/3)
		if r.creada {
			creadas++
			if r.id != fmt.Sprintf("g%d", i) {
				t.Errorf("g%d creada con id %s", i, r.id)
			}
		}
		if prev, ok := porClave[clave]; ok && prev != r.id {
			t.Errorf("clave %s: ids %s y %s", clave, prev, r.id)
		}
		porClave[clave] = r.id
	}
	if creadas != len(porClave) {
		t.Fatalf("%d creadas para %d claves", creadas, len(porClave))
	}
	for _, id := range porClave {
		igual(t, "saga "+id, leer(t, db, id), normal(sagaMinima(id, t0)))
	}
	// Each saga's two messages, in order.
	vistos := map[string][]string{}
	for _, m := range drenarTodo(t, db) {
		vistos[m.Clave] = append(vistos[m.Clave], m.Tipo)
	}
	for _, id := range porClave {
		igual(t, "mensajes de "+id, vistos[id], []string{"a", "b"})
	}
	if len(vistos) != len(porClave) {
		t.Fatalf("mensajes de %d sagas, quiero %d", len(vistos), len(porClave))
	}
}

// probarLote checks that a batch gives, entry by entry, what Actualizar gives
// one at a time: later entries see earlier ones, duplicates (in the inbox or
// repeated in the batch) are refused without calling fn, fn's error rolls
// back only its entry (inbox included), Guardar false keeps only the key.
func probarLote(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	for _, id := range []string{"s1", "s2", "s3", "u1", "u2"} {
		crear(t, db, sagaMinima(id, t0), "")
	}
	if err := db.RegistrarInbox(ctx, "evento-9"); err != nil {
		t.Fatal(err)
	}
	var llamadas atomic.Int32
	boom := errors.New("boom")
	fallar := func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado = saga.Completada
		return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje(s.ID, "x")}}, boom
	}
	noGuardar := func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado = saga.Completada
		return almacen.Cambio{Saga: s, Guardar: false, Mensajes: []almacen.Mensaje{mensaje(s.ID, "y")}}, nil
	}
	es := []almacen.Entrada{
		{SagaID: "s1", Dedup: "r-a", Fn: avanzar(&llamadas)},
		{SagaID: "s2", Dedup: "r-b", Fn: avanzar(&llamadas)},
		{SagaID: "s1", Dedup: "r-c", Fn: avanzar(&llamadas)},
		{SagaID: "s2", Dedup: "r-b", Fn: avanzar(&llamadas)},
		{SagaID: "s3", Dedup: "r-x", Fn: fallar},
		{SagaID: "s1", Dedup: "tardia", Fn: noGuardar},
		{SagaID: "s2", Dedup: "evento-9", Fn: avanzar(&llamadas)},
		{SagaID: "s2", Dedup: "", Fn: avanzar(&llamadas)},
	}
	errs := db.ActualizarLote(ctx, es)
	if len(errs) != len(es) {
		t.Fatalf("%d errores para %d entradas", len(errs), len(es))
	}
	for i, want := range []error{nil, nil, nil, almacen.ErrDuplicado, boom, nil, almacen.ErrDuplicado, nil} {
		if want == nil && errs[i] != nil || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("entrada %d (%s %s): %v; quiero %v", i, es[i].SagaID, es[i].Dedup, errs[i], want)
		}
	}
	if n := llamadas.Load(); n != 4 {
		t.Errorf("avanzar llamada %d veces, quiero 4 (ni duplicados ni repeticiones)", n)
	}
	// The same inputs one by one on twin sagas give the same rows.
	for _, e := range []struct{ id, dedup string }{{"u1", "v-a"}, {"u2", "v-b"}, {"u1", "v-c"}, {"u2", ""}} {
		if err := db.Actualizar(ctx, e.id, e.dedup, avanzar(nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, par := range [][2]string{{"s1", "u1"}, {"s2", "u2"}} {
		a, b := leer(t, db, par[0]), leer(t, db, par[1])
		a.ID, b.ID = "", ""
		igual(t, par[0]+" en lote frente a "+par[1]+" una a una", a, b)
	}
	if s := leer(t, db, "s1"); s.Version != 2 || s.Pasos[0].Intento != 3 {
		t.Errorf("s1: versión %d intento %d; quiero 2 y 3", s.Version, s.Pasos[0].Intento)
	}
	igual(t, "s3 sin cambios", leer(t, db, "s3"), normal(sagaMinima("s3", t0)))
	// Outbox: the batch's messages in entry order, then the twins'.
	var orden []string
	for _, m := range drenarTodo(t, db) {
		orden = append(orden, m.Clave)
	}
	igual(t, "outbox", orden, []string{"s1", "s2", "s1", "s2", "u1", "u2", "u1", "u2"})
	// Keys kept: the applied entries' and the Guardar-false one; not the
	// failed entry's.
	for _, k := range []string{"r-a", "r-b", "r-c", "tardia"} {
		if err := db.RegistrarInbox(ctx, k); !errors.Is(err, almacen.ErrDuplicado) {
			t.Errorf("clave %s: %v; quiero ErrDuplicado", k, err)
		}
	}
	if err := db.RegistrarInbox(ctx, "r-x"); err != nil {
		t.Errorf("la clave de la entrada fallida no debía quedar: %v", err)
	}
}

// probarLoteInexistente: a batch naming a missing saga still applies the
// others and reports ErrNoEncontrada for that entry, keeping no key.
func probarLoteInexistente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	crear(t, db, sagaMinima("s1", t0), "")
	errs := db.ActualizarLote(ctx, []almacen.Entrada{
		{SagaID: "s1", Dedup: "a", Fn: avanzar(nil)},
		{SagaID: "nada", Dedup: "b", Fn: avanzar(nil)},
		{SagaID: "s1", Dedup: "c", Fn: avanzar(nil)},
	})
	if errs[0] != nil || !errors.Is(errs[1], almacen.ErrNoEncontrada) || errs[2] != nil {
		t.Fatalf("errores %v; quiero nil, ErrNoEncontrada, nil", errs)
	}
	if s := leer(t, db, "s1"); s.Version != 2 {
		t.Fatalf("s1 versión %d, quiero 2", s.Version)
	}
	if err := db.RegistrarInbox(ctx, "b"); err != nil {
		t.Fatalf("la clave de la saga inexistente no debía quedar: %v", err)
	}
}

// probarLoteConcurrente: batches over the same sagas in opposite orders and
// single transitions, all at once, lose and repeat nothing.
func probarLoteConcurrente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		crear(t, db, sagaMinima(id, t0), "")
	}
	sumar := func(etiqueta string) func(saga.Saga) (almacen.Cambio, error) {
		return func(s saga.Saga) (almacen.Cambio, error) {
			s.Compensaciones = append(s.Compensaciones, etiqueta)
			s.Pasos[0].Intento++
			return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje(s.ID, etiqueta)}}, nil
		}
	}
	const rondas = 10
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for r := range rondas {
				var es []almacen.Entrada
				for j := range ids {
					id := ids[j]
					if g%2 == 1 {
						id = ids[len(ids)-1-j]
					}
					k := fmt.Sprintf("g%d-r%d-%s", g, r, id)
					es = append(es, almacen.Entrada{SagaID: id, Dedup: k, Fn: sumar(k)})
				}
				for i, err := range db.ActualizarLote(t.Context(), es) {
					if err != nil {
						t.Errorf("lote %d/%d entrada %d: %v", g, r, i, err)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for r := range rondas {
			k := fmt.Sprintf("suelta-%d", r)
			if err := db.Actualizar(t.Context(), "b", k, sumar(k)); err != nil {
				t.Errorf("Actualizar %s: %v", k, err)
			}
		}
	})
	wg.Wait()
	total := 0
	for _, id := range ids {
		s := leer(t, db, id)
		want := 4 * rondas
		if id == "b" {
			want += rondas
		}
		vistas := map[string]bool{}
		for _, e := range s.Compensaciones {
			if vistas[e] {
				t.Errorf("%s: %s aplicada dos veces", id, e)
			}
			vistas[e] = true
		}
		if len(s.Compensaciones) != want || s.Version != int64(want) || s.Pasos[0].Intento != 1+want {
			t.Logf("%s: %v", id, s.Compensaciones)
			t.Errorf("%s: %d cambios, versión %d, intento %d; quiero %d, %d, %d",
				id, len(s.Compensaciones), s.Version, s.Pasos[0].Intento, want, want, 1+want)
		}
		total += want
	}
	if p := pendientes(t, db); p != total {
		t.Fatalf("outbox %d, quiero %d", p, total)
	}
}

// vencida is a saga in estado e whose deadline is plazo.
func vencida(id string, e saga.Estado, plazo time.Time) saga.Saga {
	s := sagaMinima(id, t0)
	s.Estado, s.Plazo = e, plazo
	return s
}

// limpiarPlazo is a timer transition: it clears the deadline and sends one
// message, recording the call.
func limpiarPlazo(mu *sync.Mutex, vistas map[string]int, espera time.Duration) func(saga.Saga) (almacen.Cambio, error) {
	return func(s saga.Saga) (almacen.Cambio, error) {
		mu.Lock()
		vistas[s.ID]++
		mu.Unlock()
		time.Sleep(espera)
		s.Plazo = time.Time{}
		s.Pasos[0].Intento++
		return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje(s.ID, "timeout")}}, nil
	}
}

// publicarTodo plays the relay: every outbox row is acknowledged. It
// returns the rows, in order.
func publicarTodo(t *testing.T, db *almacen.DB) []almacen.Mensaje {
	t.Helper()
	var out []almacen.Mensaje
	if _, err := db.DrenarOutbox(t.Context(), 1000, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		ids := make([]int64, 0, len(ms))
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		out = append(out, ms...)
		return ids, nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func probarVencidas(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	ahora := t0.Add(time.Hour)
	for _, s := range []saga.Saga{
		vencida("a-vencida", saga.EnProgreso, ahora.Add(-time.Minute)),
		vencida("b-terminal", saga.Completada, ahora.Add(-time.Hour)),
		vencida("c-futura", saga.EnProgreso, ahora.Add(time.Microsecond)),
		vencida("d-sin-plazo", saga.EnProgreso, time.Time{}),
		vencida("e-fallida", saga.CompensacionFallida, ahora.Add(-time.Hour)),
		vencida("f-compensando", saga.Compensando, ahora.Add(-2*time.Minute)),
		vencida("g-justo", saga.Iniciada, ahora),
		vencida("h-compensada", saga.Compensada, ahora.Add(-time.Hour)),
	} {
		crear(t, db, s, "")
	}
	var mu sync.Mutex
	vistas := map[string]int{}
	var orden []string
	fn := limpiarPlazo(&mu, vistas, 0)
	n, err := db.ProcesarVencidas(ctx, ahora, 100, func(s saga.Saga) (almacen.Cambio, error) {
		orden = append(orden, s.ID)
		if len(s.Pasos) != 2 {
			t.Errorf("%s llega con %d pasos", s.ID, len(s.Pasos))
		}
		return fn(s)
	})
	if err != nil || n != 3 {
		t.Fatalf("ProcesarVencidas = %d, %v; quiero 3", n, err)
	}
	igual(t, "sagas procesadas, por plazo", orden, []string{"f-compensando", "a-vencida", "g-justo"})
	s := leer(t, db, "a-vencida")
	if !s.Plazo.IsZero() || s.Version != 1 || s.Pasos[0].Intento != 2 {
		t.Fatalf("a-vencida tras procesar: plazo %v versión %d intento %d", s.Plazo, s.Version, s.Pasos[0].Intento)
	}
	if p := pendientes(t, db); p != 3 {
		t.Fatalf("outbox %d, quiero 3", p)
	}
	if n, err := db.ProcesarVencidas(ctx, ahora, 100, fn); n != 0 || err != nil {
		t.Fatalf("segunda pasada = %d, %v; quiero 0", n, err)
	}

	// A due saga whose command still waits in the outbox is not due yet.
	crear(t, db, vencida("m-en-outbox", saga.EnProgreso, ahora.Add(-time.Hour)), "", mensaje("m-en-outbox", "comando"))
	if n, err := db.ProcesarVencidas(ctx, ahora, 100, fn); n != 0 || err != nil || vistas["m-en-outbox"] != 0 {
		t.Fatalf("saga with a pending outbox row processed: %d, %v", n, err)
	}
	publicarTodo(t, db)
	if n, err := db.ProcesarVencidas(ctx, ahora, 100, fn); n != 1 || err != nil || vistas["m-en-outbox"] != 1 {
		t.Fatalf("once published, the saga is due: %d, %v", n, err)
	}

	// The limit takes the earliest deadlines; fn errors and Guardar false
	// leave their saga alone without stopping the others.
	for i := range 5 {
		crear(t, db, vencida(fmt.Sprintf("l%d", i), saga.EnProgreso, ahora.Add(-time.Duration(10-i)*time.Second)), "")
	}
	boom := errors.New("boom")
	orden = nil
	n, err = db.ProcesarVencidas(ctx, ahora, 3, func(s saga.Saga) (almacen.Cambio, error) {
		orden = append(orden, s.ID)
		switch s.ID {
		case "l0":
			return almacen.Cambio{}, boom
		case "l1":
			return almacen.Cambio{Saga: s, Guardar: false}, nil
		}
		return fn(s)
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "l0") || n != 1 {
		t.Fatalf("ProcesarVencidas = %d, %v; quiero 1 y boom de l0", n, err)
	}
	igual(t, "límite 3 por plazo", orden, []string{"l0", "l1", "l2"})
	if s := leer(t, db, "l0"); s.Version != 0 || s.Plazo.IsZero() {
		t.Fatalf("l0 no debía cambiar: %+v", s)
	}
	if s := leer(t, db, "l2"); s.Version != 1 || !s.Plazo.IsZero() {
		t.Fatalf("l2 debía procesarse: %+v", s)
	}
}

func probarVencidasConcurrente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ahora := t0.Add(time.Hour)
	const n = 40
	for i := range n {
		crear(t, db, vencida(fmt.Sprintf("s%02d", i), saga.EnProgreso, ahora.Add(-time.Duration(i)*time.Second)), "")
	}
	var mu sync.Mutex
	vistas := map[string]int{}
	fn := limpiarPlazo(&mu, vistas, time.Millisecond)
	var total atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, err := db.ProcesarVencidas(t.Context(), ahora, 3, fn)
				if err != nil {
					t.Errorf("ProcesarVencidas: %v", err)
					return
				}
				if k == 0 {
					return
				}
				total.Add(int32(k))
			}
		})
	}
	wg.Wait()
	if total.Load() != n || len(vistas) != n {
		t.Fatalf("procesadas %d, distintas %d; quiero %d", total.Load(), len(vistas), n)
	}
	for id, k := range vistas {
		if k != 1 {
			t.Errorf("saga %s procesada %d veces", id, k)
		}
	}
	if p := pendientes(t, db); p != n {
		t.Fatalf("outbox %d, quiero %d", p, n)
	}
}

func probarDrenar(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	if n, viejo, err := db.Outbox(ctx); n != 0 || !viejo.IsZero() || err != nil {
		t.Fatalf("Outbox vacío = %d, %v, %v", n, viejo, err)
	}
	creado := t0.Add(-time.Hour)
	m1 := mensaje("s1", "Uno.v1")
	m1.Creado = creado
	m2 := almacen.Mensaje{Topico: "eventos-saga", Clave: "s1", Tipo: "Dos.v1", Carga: []byte(`{"x":1}`)} // no properties
	m3 := mensaje("s1", "Tres.v1")
	m3.Propiedades = map[string]string{}
	antes := time.Now()
	crear(t, db, sagaMinima("s1", t0), "", m1, m2, m3)
	err := db.Actualizar(ctx, "s1", "", func(s saga.Saga) (almacen.Cambio, error) {
		m4, m5 := mensaje("s1", "Cuatro.v1"), mensaje("s1", "Cinco.v1")
		return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{m4, m5}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n, viejo, err := db.Outbox(ctx)
	if err != nil || n != 5 || !viejo.Equal(creado.Truncate(time.Microsecond)) {
		t.Fatalf("Outbox = %d, %v, %v; quiero 5, %v", n, viejo, err, creado)
	}

	var vistos []almacen.Mensaje
	borrados, err := db.DrenarOutbox(ctx, 10, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		vistos = ms
		// Acknowledge 1st, 3rd and 5th, plus an id that was not claimed.
		return []int64{ms[0].ID, ms[2].ID, ms[4].ID, 1 << 40}, nil
	})
	if err != nil || borrados != 3 {
		t.Fatalf("DrenarOutbox = %d, %v; quiero 3", borrados, err)
	}
	if len(vistos) != 5 {
		t.Fatalf("%d mensajes vistos, quiero 5", len(vistos))
	}
	tipos := []string{"Uno.v1", "Dos.v1", "Tres.v1", "Cuatro.v1", "Cinco.v1"}
	for i, m := range vistos {
		if i > 0 && m.ID <= vistos[i-1].ID {
			t.Fatalf("ids fuera de orden: %d después de %d", m.ID, vistos[i-1].ID)
		}
		if m.Tipo != tipos[i] {
			t.Fatalf("mensaje %d de tipo %s, quiero %s", i, m.Tipo, tipos[i])
		}
		if i != 0 && (m.Creado.Before(antes.Add(-time.Second)) || m.Creado.Location() != time.UTC) {
			t.Fatalf("mensaje %d creado %v, quiero ahora en UTC", i, m.Creado)
		}
	}
	for _, par := range []struct {
		got  almacen.Mensaje
		want almacen.Mensaje
	}{{vistos[0], m1}, {vistos[1], m2}, {vistos[2], m3}} {
		want := par.want
		want.ID = par.got.ID
		if !want.Creado.IsZero() {
			want.Creado = want.Creado.Truncate(time.Microsecond).UTC()
		} else {
			want.Creado = par.got.Creado
		}
		igual(t, "mensaje "+want.Tipo, par.got, want)
	}

	// The unacknowledged rows stay, in order; a publish error still deletes
	// what was acknowledged.
	boom := errors.New("broker caído")
	vistos = nil
	borrados, err = db.DrenarOutbox(ctx, 10, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		vistos = ms
		return []int64{ms[0].ID}, boom
	})
	if !errors.Is(err, boom) || borrados != 1 {
		t.Fatalf("DrenarOutbox con error = %d, %v; quiero 1, boom", borrados, err)
	}
	if len(vistos) != 2 || vistos[0].Tipo != "Dos.v1" || vistos[1].Tipo != "Cuatro.v1" {
		t.Fatalf("quedaban %v", vistos)
	}
	n, viejo, _ = db.Outbox(ctx)
	if n != 1 || !viejo.Equal(vistos[1].Creado) {
		t.Fatalf("Outbox = %d, %v; quiero 1, %v", n, viejo, vistos[1].Creado)
	}
	if resto := drenarTodo(t, db); len(resto) != 1 || resto[0].Tipo != "Cuatro.v1" {
		t.Fatalf("resto %v", resto)
	}
	if n, viejo, _ := db.Outbox(ctx); n != 0 || !viejo.IsZero() {
		t.Fatalf("Outbox tras vaciar = %d, %v", n, viejo)
	}
	// Ids keep growing after the table empties (they are broker sequence ids).
	crear(t, db, sagaMinima("s2", t0), "", mensaje("s2", "Seis.v1"))
	if ms := drenarTodo(t, db); len(ms) != 1 || ms[0].ID <= vistos[1].ID {
		t.Fatalf("id tras vaciar: %v (el último era %d)", ms, vistos[1].ID)
	}
	// Nothing to drain: publicar is not called.
	_, err = db.DrenarOutbox(ctx, 10, func(context.Context, []almacen.Mensaje) ([]int64, error) {
		t.Error("publicar llamado con el outbox vacío")
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func probarDrenarConcurrente(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	const n = 60
	for i := range n / 3 {
		id := fmt.Sprintf("s%d", i)
		crear(t, db, sagaMinima(id, t0), "", mensaje(id, "a"), mensaje(id, "b"), mensaje(id, "c"))
	}
	var mu sync.Mutex
	vistos := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				llamado := false
				_, err := db.DrenarOutbox(t.Context(), 7, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
					llamado = true
					var ids []int64
					mu.Lock()
					for _, m := range ms {
						vistos[m.ID]++
						ids = append(ids, m.ID)
					}
					mu.Unlock()
					time.Sleep(time.Millisecond)
					return ids, nil
				})
				if err != nil {
					t.Errorf("DrenarOutbox: %v", err)
					return
				}
				if !llamado {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(vistos) != n {
		t.Fatalf("%d filas distintas publicadas, quiero %d", len(vistos), n)
	}
	for id, k := range vistos {
		if k != 1 {
			t.Errorf("fila %d publicada %d veces", id, k)
		}
	}
	if p := pendientes(t, db); p != 0 {
		t.Fatalf("outbox %d, quiero 0", p)
	}
}

// probarDrenarBloqueado checks MySQL's claim: while one drain is publishing,
// another sees only the rows it does not hold.
func probarDrenarBloqueado(t *testing.T, c almacen.Config) {
	if c.Tipo != almacen.TipoMySQL {
		t.Skip("SQLite has one replica: its drains are serialised instead")
	}
	db := abrir(t, c)
	for i := range 10 {
		id := fmt.Sprintf("s%d", i)
		crear(t, db, sagaMinima(id, t0), "", mensaje(id, "a"), mensaje(id, "b"))
	}
	reclamados := make(chan []int64)
	soltar := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := db.DrenarOutbox(t.Context(), 8, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
			var ids []int64
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			reclamados <- ids
			<-soltar
			return ids, nil
		})
		if err != nil {
			t.Errorf("primer drenaje: %v", err)
		}
	})
	primeros := <-reclamados
	var segundos []int64
	n, err := db.DrenarOutbox(t.Context(), 100, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		for _, m := range ms {
			segundos = append(segundos, m.ID)
		}
		return segundos, nil
	})
	close(soltar)
	wg.Wait()
	if err != nil || n != 12 || len(primeros) != 8 {
		t.Fatalf("segundo drenaje = %d, %v (primero %d filas); quiero 12 y 8", n, err, len(primeros))
	}
	for _, id := range segundos {
		if slices.Contains(primeros, id) {
			t.Fatalf("fila %d vista por los dos drenajes", id)
		}
	}
	if !slices.IsSorted(segundos) || segundos[0] < primeros[len(primeros)-1] {
		t.Fatalf("el primero toma las filas más antiguas: %v, luego %v", primeros, segundos)
	}
	if p := pendientes(t, db); p != 0 {
		t.Fatalf("outbox %d, quiero 0", p)
	}
}

func probarListar(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	type alta struct {
		id, tipo, campania string
		estado             saga.Estado
		min                int // minutes after t0
	}
	altas := []alta{
		{"pre_1", "campana", "c1", saga.Completada, 1},
		{"preX2", "campana", "c1", saga.EnProgreso, 2},
		{"pre%3", "lanzar-campania-completa", "c2", saga.Compensada, 3},
		{"PRE_4", "campana", "c2", saga.EnProgreso, 4},
		{"otra*5", "lanzar-campania-completa", "", saga.Iniciada, 5},
		{"pre_6", "campana", "c1", saga.EnProgreso, 6},
	}
	sagas := map[string]saga.Saga{}
	for _, a := range altas {
		s := sagaMinima(a.id, t0.Add(time.Duration(a.min)*time.Minute))
		s.Tipo, s.CampaniaID, s.Estado = a.tipo, a.campania, a.estado
		crear(t, db, s, "")
		sagas[a.id] = normal(s)
	}
	ids := func(f almacen.Filtro) []string {
		t.Helper()
		l, err := db.Listar(ctx, f)
		if err != nil {
			t.Fatalf("Listar(%+v): %v", f, err)
		}
		out := []string{}
		for _, s := range l {
			if f.ConPasos {
				igual(t, "saga listada", s, sagas[s.ID])
			} else if s.Pasos != nil {
				t.Fatalf("Listar sin ConPasos devolvió pasos")
			}
			out = append(out, s.ID)
		}
		return out
	}
	casos := []struct {
		nombre string
		f      almacen.Filtro
		want   []string
	}{
		{"todas, recientes primero", almacen.Filtro{}, []string{"pre_6", "otra*5", "PRE_4", "pre%3", "preX2", "pre_1"}},
		{"con pasos", almacen.Filtro{ConPasos: true}, []string{"pre_6", "otra*5", "PRE_4", "pre%3", "preX2", "pre_1"}},
		{"límite", almacen.Filtro{Limite: 2, ConPasos: true}, []string{"pre_6", "otra*5"}},
		{"estados", almacen.Filtro{Estados: []saga.Estado{saga.EnProgreso, saga.Iniciada}}, []string{"pre_6", "otra*5", "PRE_4", "preX2"}},
		{"tipo", almacen.Filtro{Tipo: "lanzar-campania-completa"}, []string{"otra*5", "pre%3"}},
		{"campaña", almacen.Filtro{CampaniaID: "c1"}, []string{"pre_6", "preX2", "pre_1"}},
		{"prefijo con _ literal y mayúsculas", almacen.Filtro{SagaID: "pre_"}, []string{"pre_6", "pre_1"}},
		{"prefijo con %", almacen.Filtro{SagaID: "pre%"}, []string{"pre%3"}},
		{"prefijo con *", almacen.Filtro{SagaID: "otra*"}, []string{"otra*5"}},
		{"prefijo id entero", almacen.Filtro{SagaID: "preX2"}, []string{"preX2"}},
		{"prefijo sin coincidencias", almacen.Filtro{SagaID: "p["}, []string{}},
		{"rango de tiempo", almacen.Filtro{Desde: t0.Add(2 * time.Minute), Hasta: t0.Add(5 * time.Minute)}, []string{"PRE_4", "pre%3", "preX2"}},
		{"combinado", almacen.Filtro{Estados: []saga.Estado{saga.EnProgreso}, Tipo: "campana", CampaniaID: "c1", SagaID: "pre", Desde: t0, ConPasos: true}, []string{"pre_6", "preX2"}},
	}
	for _, k := range casos {
		igual(t, k.nombre, ids(k.f), k.want)
	}
	r, err := db.Contar(ctx, almacen.Filtro{Limite: 1, ConPasos: true})
	if err != nil {
		t.Fatal(err)
	}
	igual(t, "Contar todas", r, almacen.Resumen{saga.Completada: 1, saga.EnProgreso: 3, saga.Compensada: 1, saga.Iniciada: 1})
	r, err = db.Contar(ctx, almacen.Filtro{CampaniaID: "c1", Estados: []saga.Estado{saga.EnProgreso, saga.Completada}})
	if err != nil {
		t.Fatal(err)
	}
	igual(t, "Contar c1", r, almacen.Resumen{saga.Completada: 1, saga.EnProgreso: 2})
}

// comandos turns the machine's commands into outbox rows, as the engine does.
func comandos(t *testing.T, cs []saga.Comando) []almacen.Mensaje {
	var ms []almacen.Mensaje
	for _, c := range cs {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, almacen.Mensaje{Topico: "comandos-" + c.Servicio, Clave: c.SagaID, Tipo: c.Nombre + ".v1", Carga: b})
	}
	return ms
}

// probarFlujoParaleloConLaMaquina drives a saga of lanzar-campania-completa
// version 2 through the store: three members in flight at once, each with
// its own deadline and attempts, answering out of order; the one that never
// answers is retried alone, fails, and the group is compensated.
func probarFlujoParaleloConLaMaquina(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	d := saga.LanzarCampaniaCompleta()
	ahora := t0
	var esperado saga.Saga
	const id = "paralela"
	aplicar := func(r saga.Respuesta, cmds int) {
		t.Helper()
		ahora = ahora.Add(1234567 * time.Nanosecond)
		var enviados int
		err := db.Actualizar(ctx, id, saga.Clave(id, r.Paso, r.Accion)+fmt.Sprint(r.Intento), func(s saga.Saga) (almacen.Cambio, error) {
			tr := saga.Aplicar(d, s, r, ahora)
			esperado, enviados = tr.Saga, len(tr.Comandos)
			return almacen.Cambio{Saga: tr.Saga, Guardar: tr.Cambio, Mensajes: comandos(t, tr.Comandos)}, nil
		})
		if err != nil || enviados != cmds {
			t.Fatalf("%s %s: %v, %d commands, want %d", r.Paso, r.Accion, err, enviados, cmds)
		}
		esperado.Version++
		igual(t, "tras "+r.Paso+" "+string(r.Accion), leer(t, db, id), normal(esperado))
	}
	exito := func(paso string, a saga.Accion) saga.Respuesta {
		return saga.Respuesta{Paso: paso, Accion: a, Intento: 1, Exito: true, Datos: json.RawMessage(`{"de":"` + paso + `"}`)}
	}
	tr := saga.Nueva(d, id, json.RawMessage(`{"nombre":"Verano"}`), ahora)
	crear(t, db, tr.Saga, "http-"+id, comandos(t, tr.Comandos)...)
	aplicar(exito(d.Pasos[0].Nombre, saga.Ejecutar), 3) // the group starts: three commands in one transaction
	if n := len(publicarTodo(t, db)); n != 4 {
		t.Fatalf("outbox had %d messages, want 4", n)
	}
	aplicar(exito(d.Pasos[3].Nombre, saga.Ejecutar), 0)
	aplicar(exito(d.Pasos[1].Nombre, saga.Ejecutar), 0)
	s := leer(t, db, id)
	if s.Estado != saga.EnProgreso || s.Pasos[2].Plazo.IsZero() || !s.Pasos[1].Plazo.IsZero() || !s.Plazo.Equal(s.Pasos[2].Plazo) {
		t.Fatalf("one member out: %s, plazos %v / %v / saga %v", s.Estado, s.Pasos[1].Plazo, s.Pasos[2].Plazo, s.Plazo)
	}
	// The silent member is retried alone, then fails: the compensations
	// start with the highest member that answered.
	silencioso := d.Pasos[2]
	for i := range silencioso.Intentos {
		publicarTodo(t, db)
		ahora = ahora.Add(time.Duration(silencioso.Plazo) + time.Second)
		n, err := db.ProcesarVencidas(ctx, ahora, 10, func(s saga.Saga) (almacen.Cambio, error) {
			tr := saga.Vencer(d, s, ahora)
			want := saga.Clave(id, silencioso.Nombre, saga.Ejecutar)
			if i == silencioso.Intentos-1 {
				want = saga.Clave(id, d.Pasos[3].Nombre, saga.Compensar)
			}
			if len(tr.Comandos) != 1 || tr.Comandos[0].Clave != want {
				t.Errorf("vencer %d: commands %v, want %s", i, tr.Comandos, want)
			}
			return almacen.Cambio{Saga: tr.Saga, Guardar: tr.Cambio, Mensajes: comandos(t, tr.Comandos)}, nil
		})
		if err != nil || n != 1 {
			t.Fatalf("ProcesarVencidas = %d, %v; quiero 1", n, err)
		}
	}
	s = leer(t, db, id)
	if s.Estado != saga.Compensando || s.PasoFallido != silencioso.Nombre || s.Pasos[1].Intento != 1 || s.Pasos[2].Intento != silencioso.Intentos {
		t.Fatalf("tras el timeout: %s, paso fallido %q, intentos %d/%d", s.Estado, s.PasoFallido, s.Pasos[1].Intento, s.Pasos[2].Intento)
	}
	for _, p := range []string{d.Pasos[3].Nombre, d.Pasos[2].Nombre, d.Pasos[1].Nombre} {
		aplicar(exito(p, saga.Compensar), 1)
	}
	aplicar(exito(d.Pasos[0].Nombre, saga.Compensar), 0)
	s = leer(t, db, id)
	want := []string{d.Pasos[3].Nombre, d.Pasos[2].Nombre, d.Pasos[1].Nombre, d.Pasos[0].Nombre}
	if s.Estado != saga.Compensada || !reflect.DeepEqual(s.Compensaciones, want) || !s.Plazo.IsZero() {
		t.Fatalf("%s, compensaciones %v, plazo %v", s.Estado, s.Compensaciones, s.Plazo)
	}
}

// probarFlujoConLaMaquina drives real sagas of the campana flow through the
// store: one that completes and one whose last step times out and is
// compensated.
func probarFlujoConLaMaquina(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	d := saga.Campana()
	ahora := t0
	var esperado saga.Saga
	aplicar := func(id string, r saga.Respuesta) {
		t.Helper()
		ahora = ahora.Add(1234567 * time.Nanosecond)
		err := db.Actualizar(ctx, id, saga.Clave(id, r.Paso, r.Accion)+fmt.Sprint(r.Intento), func(s saga.Saga) (almacen.Cambio, error) {
			tr := saga.Aplicar(d, s, r, ahora)
			esperado = tr.Saga
			return almacen.Cambio{Saga: tr.Saga, Guardar: tr.Cambio, Mensajes: comandos(t, tr.Comandos)}, nil
		})
		if err != nil {
			t.Fatalf("%s %s: %v", r.Paso, r.Accion, err)
		}
		esperado.Version++
		igual(t, "tras "+r.Paso+" "+string(r.Accion), leer(t, db, id), normal(esperado))
	}
	for _, id := range []string{"ok", "falla"} {
		tr := saga.Nueva(d, id, json.RawMessage(`{"nombre":"Verano","presupuesto":1000}`), ahora)
		crear(t, db, tr.Saga, "http-"+id, comandos(t, tr.Comandos)...)
	}
	for _, p := range d.Pasos {
		aplicar("ok", saga.Respuesta{Paso: p.Nombre, Accion: saga.Ejecutar, Intento: 1, Exito: true, Datos: json.RawMessage(`{"de":"` + p.Nombre + `"}`)})
	}
	if s := leer(t, db, "ok"); s.Estado != saga.Completada || !s.Plazo.IsZero() || s.Fin.IsZero() {
		t.Fatalf("saga ok: %s plazo %v fin %v", s.Estado, s.Plazo, s.Fin)
	}
	for _, p := range d.Pasos[:len(d.Pasos)-1] {
		aplicar("falla", saga.Respuesta{Paso: p.Nombre, Accion: saga.Ejecutar, Intento: 1, Exito: true})
	}
	// The last step never answers: the timer retries it, then fails it.
	ultimo := d.Pasos[len(d.Pasos)-1]
	var publicados []almacen.Mensaje
	for range ultimo.Intentos {
		// The relay published the commands: only then does a deadline run.
		publicados = append(publicados, publicarTodo(t, db)...)
		ahora = ahora.Add(time.Duration(ultimo.Plazo) + time.Second)
		n, err := db.ProcesarVencidas(ctx, ahora, 10, func(s saga.Saga) (almacen.Cambio, error) {
			tr := saga.Vencer(d, s, ahora)
			return almacen.Cambio{Saga: tr.Saga, Guardar: tr.Cambio, Mensajes: comandos(t, tr.Comandos)}, nil
		})
		if err != nil || n != 1 {
			t.Fatalf("ProcesarVencidas = %d, %v; quiero 1", n, err)
		}
	}
	s := leer(t, db, "falla")
	if s.Estado != saga.Compensando || s.PasoFallido != ultimo.Nombre {
		t.Fatalf("tras el timeout: %s, paso fallido %q", s.Estado, s.PasoFallido)
	}
	for i := len(d.Pasos) - 1; i >= 0; i-- {
		aplicar("falla", saga.Respuesta{Paso: d.Pasos[i].Nombre, Accion: saga.Compensar, Intento: 1, Exito: true})
	}
	s = leer(t, db, "falla")
	want := []string{"tracking", "marca", "influencer"}
	if s.Estado != saga.Compensada || !reflect.DeepEqual(s.Compensaciones, want) {
		t.Fatalf("saga falla: %s, compensaciones %v; quiero COMPENSADA y %v", s.Estado, s.Compensaciones, want)
	}
	// A late duplicate of a reply is dropped by the inbox.
	err := db.Actualizar(ctx, "ok", saga.Clave("ok", d.Pasos[0].Nombre, saga.Ejecutar)+"1", func(s saga.Saga) (almacen.Cambio, error) {
		t.Error("fn llamada con una respuesta duplicada")
		return almacen.Cambio{}, nil
	})
	if !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("respuesta duplicada: %v", err)
	}
	// Every command was written to the outbox, in order per saga.
	porSaga := map[string][]string{}
	for _, m := range append(publicados, drenarTodo(t, db)...) {
		porSaga[m.Clave] = append(porSaga[m.Clave], m.Tipo)
	}
	igual(t, "comandos de ok", porSaga["ok"], []string{"NotificarInfluencer.v1", "NotificarMarca.v1", "InicializarTracking.v1"})
	if k := len(porSaga["falla"]); k != 3+ultimo.Intentos-1+3 {
		t.Fatalf("saga falla: %d comandos %v", k, porSaga["falla"])
	}
}

func probarPurgarInbox(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		if err := db.RegistrarInbox(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.PurgarInbox(ctx, time.Now().Add(-time.Hour)); n != 0 || err != nil {
		t.Fatalf("PurgarInbox antiguas = %d, %v; quiero 0", n, err)
	}
	if n, err := db.PurgarInbox(ctx, time.Now().Add(time.Second)); n != 2 || err != nil {
		t.Fatalf("PurgarInbox = %d, %v; quiero 2", n, err)
	}
	if err := db.RegistrarInbox(ctx, "a"); err != nil {
		t.Fatalf("tras purgar: %v", err)
	}
}

func TestConfigNombraElCampo(t *testing.T) {
	casos := []struct {
		c     almacen.Config
		campo []string
	}{
		{almacen.Config{}, []string{"Config.Tipo"}},
		{almacen.Config{Tipo: "postgres"}, []string{"Config.Tipo"}},
		{almacen.Config{Tipo: "sqlite", MaxConexiones: -1}, []string{"Config.Ruta", "Config.MaxConexiones"}},
		{almacen.Config{Tipo: "sqlite", Ruta: ":memory:"}, []string{"Config.Ruta"}},
		{almacen.Config{Tipo: "sqlite", Ruta: "x.db?_pragma=foo"}, []string{"Config.Ruta"}},
		{almacen.Config{Tipo: "mysql"}, []string{"Config.DSN"}},
		{almacen.Config{Tipo: "mysql", DSN: "sin arroba ni barra"}, []string{"Config.DSN"}},
		{almacen.Config{Tipo: "mysql", DSN: "u:p@tcp(127.0.0.1:3306)/"}, []string{"Config.DSN"}},
	}
	for _, k := range casos {
		_, err := almacen.Abrir(t.Context(), k.c)
		if err == nil {
			t.Errorf("Abrir(%+v) sin error", k.c)
			continue
		}
		for _, campo := range k.campo {
			if !strings.Contains(err.Error(), campo) {
				t.Errorf("Abrir(%+v) = %q; no nombra %s", k.c, err, campo)
			}
		}
	}
}

// TestValoresQueNoCabenSonErrInvalido: what the columns cannot hold is
// refused before any write on both stores, with an error wrapping
// ErrInvalido, so a consumer dead-letters the message instead of retrying
// it forever (a legacy launch id or a reply id longer than the column).
func TestValoresQueNoCabenSonErrInvalido(t *testing.T) {
	for _, st := range []struct {
		nombre string
		config nuevaConfig
	}{{"sqlite", configSQLite}, {"mysql", configMySQL}} {
		t.Run(st.nombre, func(t *testing.T) {
			db := abrir(t, st.config(t))
			larga := strings.Repeat("ñ", 256)
			if _, _, err := db.CrearSaga(t.Context(), sagaMinima("s1", t0), almacen.Idempotencia{}, nil); err != nil {
				t.Fatal(err)
			}
			s := sagaMinima("s2", t0)
			s.Datos = json.RawMessage(`{"a":`)
			nada := func(saga.Saga) (almacen.Cambio, error) { return almacen.Cambio{}, nil }
			for _, c := range []struct {
				nombre string
				err    error
			}{
				{"clave de inbox de 256 caracteres", db.RegistrarInbox(t.Context(), larga)},
				{"id de respuesta de 256 caracteres", db.Actualizar(t.Context(), "s1", larga, nada)},
				{"id de respuesta de 256 caracteres en un lote", db.ActualizarLote(t.Context(), []almacen.Entrada{
					{SagaID: "s1", Dedup: "r-corta", Fn: nada}, {SagaID: "s1", Dedup: larga, Fn: nada}})[1]},
				{"clave de idempotencia (id de lanzamiento) de 256 caracteres", errDe(db.CrearSaga(t.Context(), sagaMinima("s3", t0), almacen.Idempotencia{Clave: larga}, nil))},
				{"huella de 65 caracteres", errDe(db.CrearSaga(t.Context(), sagaMinima("s4", t0), almacen.Idempotencia{Clave: "k", Huella: strings.Repeat("a", 65)}, nil))},
				{"datos que no son JSON", errDe(db.CrearSaga(t.Context(), s, almacen.Idempotencia{}, nil))},
				{"id de saga de 192 caracteres", errDe(db.CrearSaga(t.Context(), sagaMinima(strings.Repeat("x", 192), t0), almacen.Idempotencia{}, nil))},
			} {
				if !errors.Is(c.err, almacen.ErrInvalido) {
					t.Errorf("%s: %v, want an error wrapping almacen.ErrInvalido", c.nombre, c.err)
				}
			}
			if _, err := db.Saga(t.Context(), "s3"); !errors.Is(err, almacen.ErrNoEncontrada) {
				t.Errorf("a refused saga was written: %v", err)
			}
		})
	}
}

func errDe(_ string, _ bool, err error) error { return err }

// BenchmarkTransicion measures Actualizar as the engine uses it: inbox dedup,
// read, two steps changed, one command into the outbox, commit. "serie" is
// one saga updated by one goroutine (latency bound); "paralelo" is one saga
// per goroutine (throughput, group commit).
func BenchmarkTransicion(b *testing.B) {
	for _, k := range []struct {
		nombre string
		nueva  nuevaConfig
	}{{"sqlite", configSQLite}, {"mysql", configMySQL}} {
		b.Run(k.nombre, func(b *testing.B) {
			c := k.nueva(b)
			db := abrir(b, c)
			var n atomic.Int64
			transicion := func(s saga.Saga) (almacen.Cambio, error) {
				i := s.Actual
				s.Pasos[i].Estado, s.Pasos[i].Fin = saga.PasoCompletado, time.Now()
				s.Actual = (i + 1) % len(s.Pasos)
				p := &s.Pasos[s.Actual]
				p.Estado, p.Inicio, p.Intento = saga.PasoEjecutando, time.Now(), p.Intento+1
				s.Plazo = time.Now().Add(30 * time.Second)
				m := mensaje(s.ID, "NotificarMarca.v1")
				m.Carga = make([]byte, 300)
				return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{m}}, nil
			}
			nuevaSaga := func(b *testing.B) string {
				id := fmt.Sprintf("bench-%d", n.Add(1))
				s := sagaMinima(id, time.Now())
				s.Datos = json.RawMessage(`{"nombre":"Verano","presupuesto":1000,"marca":{"id_marca":"m1"}}`)
				s.Pasos = append(s.Pasos, saga.EstadoDePaso{Nombre: "tracking", Servicio: "tracking", Estado: saga.PasoPendiente})
				if _, _, err := db.CrearSaga(context.Background(), s, almacen.Idempotencia{}, nil); err != nil {
					b.Fatal(err)
				}
				return id
			}
			b.Run("serie", func(b *testing.B) {
				id := nuevaSaga(b)
				for b.Loop() {
					if err := db.Actualizar(context.Background(), id, fmt.Sprintf("r-%d", n.Add(1)), transicion); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transiciones/s")
			})
			b.Run("paralelo", func(b *testing.B) {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					id := nuevaSaga(b)
					for pb.Next() {
						if err := db.Actualizar(context.Background(), id, fmt.Sprintf("r-%d", n.Add(1)), transicion); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transiciones/s")
			})
		})
	}
}

// BenchmarkCommit is the database's own bound for comparison: one
// single-row autocommit INSERT (RegistrarInbox) per operation.
func BenchmarkCommit(b *testing.B) {
	for _, k := range []struct {
		nombre string
		nueva  nuevaConfig
	}{{"sqlite", configSQLite}, {"mysql", configMySQL}} {
		b.Run(k.nombre, func(b *testing.B) {
			db := abrir(b, k.nueva(b))
			var n atomic.Int64
			b.Run("serie", func(b *testing.B) {
				for b.Loop() {
					if err := db.RegistrarInbox(context.Background(), fmt.Sprintf("k-%d", n.Add(1))); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			})
			b.Run("paralelo", func(b *testing.B) {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := db.RegistrarInbox(context.Background(), fmt.Sprintf("k-%d", n.Add(1))); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			})
		})
	}
}

// probarRechazos: a row the broker refuses waits before it is claimed again
// and, while it waits, holds its saga's deadline as any unsent row does;
// after maxIntentos refusals it is parked: never claimed again, not counted
// as backlog, listed by Aparcados, and its saga's deadline runs again.
func probarRechazos(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	refusado := mensaje("s1", "Uno.v1")
	refusado.Topico = "comandos-rechazo"
	crear(t, db, vencida("s1", saga.EnProgreso, t0), "", refusado, mensaje("s1", "Dos.v1"))
	drenar := func(confirmar bool) []almacen.Mensaje {
		t.Helper()
		var vistos []almacen.Mensaje
		_, err := db.DrenarOutbox(ctx, 10, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
			vistos = ms
			var ok []int64
			for _, m := range ms {
				if confirmar && m.Topico != "comandos-rechazo" {
					ok = append(ok, m.ID)
				}
			}
			return ok, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return vistos
	}
	vencidas := func() int { // sagas handed to the deadline function
		t.Helper()
		var n int
		_, err := db.ProcesarVencidas(ctx, t0.Add(time.Hour), 10, func(s saga.Saga) (almacen.Cambio, error) {
			n++
			return almacen.Cambio{Saga: s}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	vistos := drenar(true)
	if len(vistos) != 2 || vistos[0].Intentos != 0 {
		t.Fatalf("first drain saw %+v", vistos)
	}
	id := vistos[0].ID
	aparcados, err := db.RegistrarRechazos(ctx, []almacen.Rechazo{{ID: id, Error: "IncompatibleSchema", Espera: time.Hour}}, 2)
	if err != nil || len(aparcados) != 0 {
		t.Fatalf("first refusal: parked %v, %v; want none", aparcados, err)
	}
	if vistos := drenar(false); len(vistos) != 0 {
		t.Errorf("a refused row claimed again before its wait ended: %+v", vistos)
	}
	if n := vencidas(); n != 0 {
		t.Errorf("%d sagas due while their refused row still waits to be sent, want 0", n)
	}
	if n, _, err := db.Outbox(ctx); n != 1 || err != nil {
		t.Errorf("Outbox = %d, %v; want the waiting row", n, err)
	}
	aparcados, err = db.RegistrarRechazos(ctx, []almacen.Rechazo{{ID: id, Error: strings.Repeat("x", 3000)}}, 2)
	if err != nil || len(aparcados) != 1 || aparcados[0].ID != id || aparcados[0].Intentos != 2 ||
		aparcados[0].Topico != "comandos-rechazo" || aparcados[0].Clave != "s1" || len(aparcados[0].UltimoError) != 2000 || aparcados[0].Aparcado.IsZero() {
		t.Fatalf("second refusal: parked %+v, %v; want the row, 2 attempts, its error cut at 2000", aparcados, err)
	}
	if vistos := drenar(false); len(vistos) != 0 {
		t.Errorf("a parked row claimed: %+v", vistos)
	}
	if n, viejo, err := db.Outbox(ctx); n != 0 || !viejo.IsZero() || err != nil {
		t.Errorf("Outbox = %d, %v, %v; a parked row is no backlog", n, viejo, err)
	}
	lista, err := db.Aparcados(ctx, 10)
	if err != nil || len(lista) != 1 || lista[0].ID != id || string(lista[0].Carga) != string(refusado.Carga) || lista[0].Propiedades["type"] != "Uno.v1" {
		t.Errorf("Aparcados = %+v, %v", lista, err)
	}
	if n := vencidas(); n != 1 {
		t.Errorf("%d sagas due once their row was parked, want 1", n)
	}
	if n, err := db.ContarAparcados(ctx); n != 1 || err != nil {
		t.Errorf("ContarAparcados = %d, %v; want 1", n, err)
	}
	// The operator sends it again: unparked with its attempts reset, it is
	// claimed by the next drain and no longer listed.
	if _, err := db.Reenviar(ctx, id+1000); !errors.Is(err, almacen.ErrAparcadoNoEncontrado) {
		t.Errorf("Reenviar of an unknown row: %v, want ErrAparcadoNoEncontrado", err)
	}
	reenviado, err := db.Reenviar(ctx, id)
	if err != nil || reenviado.ID != id || reenviado.Clave != "s1" || reenviado.Intentos != 2 {
		t.Fatalf("Reenviar = %+v, %v; want the parked row as it was", reenviado, err)
	}
	if _, err := db.Reenviar(ctx, id); !errors.Is(err, almacen.ErrAparcadoNoEncontrado) {
		t.Errorf("Reenviar twice: %v, want ErrAparcadoNoEncontrado", err)
	}
	if n, err := db.ContarAparcados(ctx); n != 0 || err != nil {
		t.Errorf("ContarAparcados after Reenviar = %d, %v; want 0", n, err)
	}
	if vistos := drenar(false); len(vistos) != 1 || vistos[0].ID != id || vistos[0].Intentos != 0 {
		t.Errorf("drain after Reenviar saw %+v; want the row again with 0 attempts", vistos)
	}
}

func probarEnCursoPorVersion(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	if en, err := db.EnCursoPorVersion(t.Context()); err != nil || len(en) != 0 {
		t.Fatalf("empty store: %v %v", en, err)
	}
	n := 0
	poner := func(tipo string, version int, e saga.Estado) {
		n++
		s := sagaMinima(fmt.Sprintf("v-%d", n), t0)
		s.Tipo, s.VersionDefinicion, s.Estado = tipo, version, e
		if e.Terminal() {
			s.Fin = t0.Add(time.Second)
		}
		crear(t, db, s, "")
	}
	poner("campana", 2, saga.Iniciada)
	poner("campana", 2, saga.EnProgreso)
	poner("campana", 2, saga.Compensando)
	poner("campana", 2, saga.CompensacionFallida)
	poner("campana", 2, saga.Completada)
	poner("campana", 3, saga.Iniciada)
	poner("campana", 1, saga.Compensada)
	poner("otro", 1, saga.Completada)
	poner("otro", 7, saga.EnProgreso)
	en, err := db.EnCursoPorVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(en, func(i, j int) bool {
		return en[i].Tipo+strconv.Itoa(en[i].Version) < en[j].Tipo+strconv.Itoa(en[j].Version)
	})
	igual(t, "en curso por versión", en, []saga.EnCurso{{Tipo: "campana", Version: 2, Sagas: 4}, {Tipo: "campana", Version: 3, Sagas: 1}, {Tipo: "otro", Version: 7, Sagas: 1}})
}

// probarCancelarConLaMaquina: the cancel is one more transition through
// Actualizar; it survives every later one (on whichever replica reads the
// saga) until the saga ends CANCELADA.
func probarCancelarConLaMaquina(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	d := saga.Campana()
	ahora := t0
	tr := saga.Nueva(d, "c", json.RawMessage(`{"nombre":"Verano"}`), ahora)
	crear(t, db, tr.Saga, "", comandos(t, tr.Comandos)...)
	transicion := func(dedup string, f func(saga.Saga) (saga.Transicion, error)) {
		t.Helper()
		ahora = ahora.Add(time.Second)
		err := db.Actualizar(ctx, "c", dedup, func(s saga.Saga) (almacen.Cambio, error) {
			tr, err := f(s)
			return almacen.Cambio{Saga: tr.Saga, Guardar: tr.Cambio, Mensajes: comandos(t, tr.Comandos)}, err
		})
		if err != nil {
			t.Fatalf("%s: %v", dedup, err)
		}
	}
	responder := func(paso string, a saga.Accion) {
		transicion(paso+string(a), func(s saga.Saga) (saga.Transicion, error) {
			return saga.Aplicar(d, s, saga.Respuesta{Paso: paso, Accion: a, Intento: 1, Exito: true}, ahora), nil
		})
	}
	responder("influencer", saga.Ejecutar)
	transicion("", func(s saga.Saga) (saga.Transicion, error) { return saga.Cancelar(d, s, ahora) })
	cancelada := ahora
	if s := leer(t, db, "c"); s.Estado != saga.Compensando || !s.Cancelacion.Equal(cancelada.Truncate(time.Microsecond)) {
		t.Fatalf("tras cancelar: %s, cancelacion %v; quiero COMPENSANDO y %v", s.Estado, s.Cancelacion, cancelada)
	}
	responder("marca", saga.Ejecutar) // in flight at the cancel: compensated, not continued
	responder("marca", saga.Compensar)
	responder("influencer", saga.Compensar)
	s := leer(t, db, "c")
	if s.Estado != saga.Cancelada || !reflect.DeepEqual(s.Compensaciones, []string{"marca", "influencer"}) || s.Pasos[2].Estado != saga.PasoPendiente {
		t.Fatalf("saga c: %s, compensaciones %v, tracking %s; quiero CANCELADA, [marca influencer], PENDIENTE", s.Estado, s.Compensaciones, s.Pasos[2].Estado)
	}
	err := db.Actualizar(ctx, "c", "", func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado, s.Cancelacion = saga.Completada, time.Time{} // as if it had completed instead
		tr, err := saga.Cancelar(d, s, ahora)
		return almacen.Cambio{Saga: tr.Saga, Guardar: tr.Cambio}, err
	})
	var nc *saga.NoCancelableError
	if !errors.As(err, &nc) || nc.Estado != saga.Completada {
		t.Fatalf("cancelar una saga terminada: %v; quiero *saga.NoCancelableError a través del almacén", err)
	}
}

// probarAlConfirmar: every transaction that writes outbox rows hands them,
// once committed, to the AlConfirmar hook with the ids the outbox holds them
// under (creation alone and in a group, a transition, a batch, the timers);
// BorrarPublicados deletes them by those ids, and a drain bounded by
// creation time leaves younger rows alone.
func probarAlConfirmar(t *testing.T, c almacen.Config) {
	db := abrir(t, c)
	ctx := t.Context()
	var mu sync.Mutex
	var confirmados [][]almacen.Mensaje
	db.AlConfirmar(func(ms []almacen.Mensaje) {
		mu.Lock()
		defer mu.Unlock()
		confirmados = append(confirmados, ms)
	})
	antes := time.Now().Add(-time.Second)
	crear(t, db, sagaMinima("a", t0), "", mensaje("a", "crear"))
	var wg sync.WaitGroup
	for i := range 12 { // concurrent: some are committed together
		wg.Go(func() {
			id := fmt.Sprintf("g%02d", i)
			if _, _, err := db.CrearSaga(ctx, sagaMinima(id, t0), almacen.Idempotencia{}, []almacen.Mensaje{mensaje(id, "uno"), mensaje(id, "dos")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := db.Actualizar(ctx, "a", "r-1", avanzar(nil)); err != nil {
		t.Fatal(err)
	}
	errs := db.ActualizarLote(ctx, []almacen.Entrada{
		{SagaID: "g00", Dedup: "r-2", Fn: avanzar(nil)}, {SagaID: "g01", Dedup: "r-3", Fn: avanzar(nil)},
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	crear(t, db, vencida("v1", saga.EnProgreso, t0), "")
	crear(t, db, vencida("v2", saga.EnProgreso, t0), "")
	var vmu sync.Mutex
	if n, err := db.ProcesarVencidas(ctx, t0.Add(time.Hour), 10, limpiarPlazo(&vmu, map[string]int{}, 0)); err != nil || n != 2 {
		t.Fatalf("ProcesarVencidas = %d, %v; quiero 2", n, err)
	}

	mu.Lock()
	lotes := slices.Clone(confirmados)
	mu.Unlock()
	porID := map[int64]almacen.Mensaje{}
	total := 0
	for _, lote := range lotes {
		for _, m := range lote {
			total++
			if m.ID == 0 {
				if len(lote) == 1 {
					t.Errorf("fila %s/%s sola en su transacción y sin id", m.Clave, m.Tipo)
				}
				continue // a multi-row INSERT under innodb_autoinc_lock_mode=2
			}
			if _, ok := porID[m.ID]; ok {
				t.Errorf("id %d entregado dos veces", m.ID)
			}
			porID[m.ID] = m
			if m.Creado.IsZero() {
				t.Errorf("fila %d sin Creado", m.ID)
			}
		}
	}
	// 1 + 24 + 1 + 2 + 2 rows written; the outbox holds each under the id
	// the hook gave.
	if total != 30 {
		t.Errorf("%d filas entregadas; quiero 30", total)
	}
	if n, err := db.DrenarOutboxHasta(ctx, antes, 1000, func(context.Context, []almacen.Mensaje) ([]int64, error) {
		t.Error("un drenaje hasta antes de crearlas reclamó filas")
		return nil, nil
	}); err != nil || n != 0 {
		t.Fatalf("DrenarOutboxHasta(antes) = %d, %v", n, err)
	}
	var ids []int64
	var leidas []almacen.Mensaje
	if _, err := db.DrenarOutbox(ctx, 1000, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		leidas = ms
		return nil, nil // nothing acknowledged: every row stays
	}); err != nil {
		t.Fatal(err)
	}
	if len(leidas) != 30 {
		t.Fatalf("el outbox tiene %d filas; quiero 30", len(leidas))
	}
	for _, f := range leidas {
		m, ok := porID[f.ID]
		if !ok {
			continue
		}
		if m.Clave != f.Clave || m.Tipo != f.Tipo || string(m.Carga) != string(f.Carga) {
			t.Errorf("id %d: el hook dio %s/%s, el outbox tiene %s/%s", f.ID, m.Clave, m.Tipo, f.Clave, f.Tipo)
		}
		ids = append(ids, f.ID)
	}
	if len(ids) < 6 {
		t.Fatalf("solo %d filas con id", len(ids))
	}
	n, err := db.BorrarPublicados(ctx, append(ids, ids[0])) // a repeated id counts once
	if err != nil || n != len(ids) {
		t.Fatalf("BorrarPublicados = %d, %v; quiero %d", n, err, len(ids))
	}
	if p := pendientes(t, db); p != 30-len(ids) {
		t.Errorf("%d pendientes; quiero %d", p, 30-len(ids))
	}
}

// With auto_increment_increment above 1 (Galera, multi-primary
// replication) a multi-row INSERT's ids are spaced, not consecutive: the
// hook must not hand out ids the outbox does not hold them under, or the
// relay would delete rows it never published.
func TestAlConfirmarMySQLConIncrementoMayorQueUno(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "sagas_test_")
	cfg.Params = map[string]string{"auto_increment_increment": "2"}
	db := abrir(t, almacen.Config{Tipo: almacen.TipoMySQL, DSN: cfg.FormatDSN()})
	var confirmados []almacen.Mensaje
	db.AlConfirmar(func(ms []almacen.Mensaje) { confirmados = append(confirmados, ms...) })
	crear(t, db, sagaMinima("a", t0), "", mensaje("a", "uno"))
	crear(t, db, sagaMinima("b", t0), "", mensaje("b", "uno"), mensaje("b", "dos"), mensaje("b", "tres"))

	enOutbox := map[int64]almacen.Mensaje{}
	if _, err := db.DrenarOutbox(t.Context(), 100, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		for _, m := range ms {
			enOutbox[m.ID] = m
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(enOutbox) != 4 || len(confirmados) != 4 {
		t.Fatalf("outbox %d filas, hook %d; quiero 4 y 4", len(enOutbox), len(confirmados))
	}
	conID := 0
	for _, m := range confirmados {
		if m.ID == 0 {
			continue
		}
		conID++
		f, ok := enOutbox[m.ID]
		if !ok || f.Clave != m.Clave || f.Tipo != m.Tipo {
			t.Errorf("el hook dio el id %d a %s/%s; el outbox tiene ahí %s/%s (existe: %v)", m.ID, m.Clave, m.Tipo, f.Clave, f.Tipo, ok)
		}
	}
	if conID == 0 {
		t.Error("ni la fila sola en su transacción recibió id")
	}
}

// A reply's transition on MySQL costs two round trips: the inbox key with the
// locking read of the saga, then the saga's update, its changed steps, the
// outbox row and COMMIT. (It cost four before: the read and the update each
// had their own.) A duplicate still stops at the first one and writes
// nothing.
func TestTransicionMySQLEnDosViajes(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "sagas_test_")
	n := integracion.ContarComandos(t, cfg)
	db := abrir(t, almacen.Config{Tipo: almacen.TipoMySQL, DSN: cfg.FormatDSN(), MaxConexiones: 1})
	crear(t, db, sagaMinima("a", t0), "")
	transicion := func(s saga.Saga) (almacen.Cambio, error) {
		s.Estado = saga.EnProgreso
		s.Pasos[0].Estado = saga.PasoCompletado
		s.Pasos[1].Estado = saga.PasoEjecutando
		s.Actual = 1
		return almacen.Cambio{Saga: s, Guardar: true, Mensajes: []almacen.Mensaje{mensaje("a", "NotificarMarca")}}, nil
	}
	antes := n.Load()
	if err := db.Actualizar(t.Context(), "a", "r1", transicion); err != nil {
		t.Fatal(err)
	}
	if got := n.Load() - antes; got != 2 {
		t.Errorf("a transition sent %d commands to MySQL, want 2", got)
	}
	s := leer(t, db, "a")
	if s.Version != 1 || s.Estado != saga.EnProgreso || s.Pasos[1].Estado != saga.PasoEjecutando || pendientes(t, db) != 1 {
		t.Fatalf("after the transition: version %d, %s, step 2 %s, %d in the outbox; want 1, EN_PROGRESO, EJECUTANDO, 1",
			s.Version, s.Estado, s.Pasos[1].Estado, pendientes(t, db))
	}
	antes = n.Load()
	if err := db.Actualizar(t.Context(), "a", "r1", transicion); !errors.Is(err, almacen.ErrDuplicado) {
		t.Fatalf("the same key again: %v, want ErrDuplicado", err)
	}
	if got := n.Load() - antes; got > 2 {
		t.Errorf("a duplicate sent %d commands, want at most 2 (the query that failed, the ROLLBACK)", got)
	}
	if s := leer(t, db, "a"); s.Version != 1 || pendientes(t, db) != 1 {
		t.Fatalf("a duplicate changed the saga: version %d, %d in the outbox", s.Version, pendientes(t, db))
	}
}
