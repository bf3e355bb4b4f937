package mensajeria

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/apache/pulsar-client-go/pulsar"
)

// outboxFalso is an Outbox held in a slice.
type outboxFalso struct {
	filas []almacen.Mensaje
}

func (o *outboxFalso) RegistrarRechazos(context.Context, []almacen.Rechazo, int) ([]almacen.Aparcado, error) {
	return nil, nil
}

func (o *outboxFalso) DrenarOutboxHasta(ctx context.Context, _ time.Time, limite int, publicar func(context.Context, []almacen.Mensaje) ([]int64, error)) (int, error) {
	return o.DrenarOutbox(ctx, limite, publicar)
}

func (o *outboxFalso) BorrarPublicados(_ context.Context, ids []int64) (int, error) {
	n := len(o.filas)
	o.filas = slices.DeleteFunc(o.filas, func(m almacen.Mensaje) bool { return slices.Contains(ids, m.ID) })
	return n - len(o.filas), nil
}

func (o *outboxFalso) DrenarOutbox(ctx context.Context, limite int, publicar func(context.Context, []almacen.Mensaje) ([]int64, error)) (int, error) {
	if len(o.filas) == 0 {
		return 0, nil
	}
	ok, err := publicar(ctx, o.filas)
	o.filas = slices.DeleteFunc(o.filas, func(m almacen.Mensaje) bool { return slices.Contains(ok, m.ID) })
	return len(ok), err
}

// TestRelayNoPierdeFilasQueElBrokerCreeDuplicadas reproduces a broker that
// remembers a higher sequence id for the relay's producer name than the ids
// the outbox hands out (a fresh database on an old broker). The broker
// answers those rows as duplicates; the relay must publish them anyway.
func TestRelayNoPierdeFilasQueElBrokerCreeDuplicadas(t *testing.T) {
	url := integracion.PulsarURL(t)
	client, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topico := fmt.Sprintf("persistent://public/default/relay-dup-%d", time.Now().UnixNano())
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topico, SubscriptionName: "prueba", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// scripts/pulsar.sh turns de-duplication on broker-wide; set it on the
	// topic too, so the test holds against any broker.
	if err := bus.NuevoAdmin(integracion.PulsarAdminURL(t)).ActivarDeduplicacion(context.Background(), topico); err != nil {
		t.Fatal(err)
	}

	// An earlier life of replica r1 sent sequence id 1000 under the same name.
	viejo, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topico, Name: "r1-" + topicoCorto(topico)})
	if err != nil {
		t.Fatal(err)
	}
	seq := int64(1000)
	if _, err := viejo.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("viejo"), SequenceID: &seq}); err != nil {
		t.Fatal(err)
	}
	viejo.Close()

	store := &outboxFalso{}
	for i := int64(1); i <= 5; i++ {
		store.filas = append(store.filas, almacen.Mensaje{ID: i, Topico: topico, Clave: "s", Carga: []byte(fmt.Sprint("fila-", i))})
	}
	r := NuevoRelay(OpcionesRelay{Store: store, Client: client, Replica: "r1", Esquema: func(string) string { return "" }})
	defer r.cerrarProductores()
	n, err := store.DrenarOutbox(context.Background(), 100, r.publicar)
	if err != nil || n != 5 || len(store.filas) != 0 {
		t.Fatalf("drained %d (err %v), %d rows left", n, err, len(store.filas))
	}
	var recibidos []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(recibidos) < 6 {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("received only %v: %v", recibidos, err)
		}
		recibidos = append(recibidos, string(m.Payload()))
		cons.Ack(m)
	}
	for i := 1; i <= 5; i++ {
		if !slices.Contains(recibidos, fmt.Sprint("fila-", i)) {
			t.Fatalf("row %d lost: received %v", i, recibidos)
		}
	}
}

// TestRelayPublicaDesdeMemoriaAlConfirmar: with the store's AlConfirmar
// wired to Confirmados, a committed row reaches the broker without any drain
// (the poll and the grace period are an hour here), under the named producer
// with its row id as sequence id, and leaves the outbox once acknowledged.
func TestRelayPublicaDesdeMemoriaAlConfirmar(t *testing.T) {
	client, topico, cons, db := entornoMemoria(t, "memoria")
	r := NuevoRelay(OpcionesRelay{Store: db, Client: client, Replica: "r1", Esquema: func(string) string { return "" },
		Sondeo: time.Hour, Gracia: time.Hour})
	db.AlConfirmar(r.Confirmados)
	ctx, cancel := context.WithCancel(t.Context())
	hecho := make(chan struct{})
	go func() { defer close(hecho); r.Correr(ctx) }()
	defer func() { cancel(); <-hecho }()
	// The relay's first drain (at start) runs before the row exists.
	time.Sleep(200 * time.Millisecond)

	s := saga.Saga{ID: "s-memoria", Tipo: "campana", VersionDefinicion: 1, Estado: saga.Iniciada, Inicio: time.Now(),
		Compensaciones: []string{}, Pasos: []saga.EstadoDePaso{{Nombre: "marca", Servicio: "marca", Estado: saga.PasoPendiente}}}
	msg := almacen.Mensaje{Topico: topico, Clave: s.ID, Tipo: "x", Carga: []byte("hola")}
	if _, _, err := db.CrearSaga(t.Context(), s, almacen.Idempotencia{}, []almacen.Mensaje{msg}); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer rcancel()
	m, err := cons.Receive(rctx)
	if err != nil {
		t.Fatalf("the committed row never reached the broker: %v", err)
	}
	if string(m.Payload()) != "hola" || m.Key() != s.ID || m.ProducerName() != "r1-"+topicoCorto(topico) {
		t.Errorf("received %q key %q from %q", m.Payload(), m.Key(), m.ProducerName())
	}
	for plazo := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, _, err := db.Outbox(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(plazo) {
			t.Fatalf("%d rows still in the outbox after the broker acknowledged them", n)
		}
	}
}

// outboxHastas records the bound of every drain.
type outboxHastas struct {
	outboxFalso
	hastas chan time.Time
}

func (o *outboxHastas) DrenarOutboxHasta(ctx context.Context, hasta time.Time, limite int, publicar func(context.Context, []almacen.Mensaje) ([]int64, error)) (int, error) {
	select {
	case o.hastas <- hasta:
	default:
	}
	return o.outboxFalso.DrenarOutboxHasta(ctx, hasta, limite, publicar)
}

// TestRelaySondeoMideLaGraciaConElRelojDeLaBase: the rows' creation times
// are on the database's clock (the engine writes them with it), so the poll
// must measure the grace period on that clock, not on the local one: the
// first drain takes every row, the next ones those older than Ahora-Gracia.
func TestRelaySondeoMideLaGraciaConElRelojDeLaBase(t *testing.T) {
	base := time.Now().Add(7 * time.Minute) // the database's clock, 7 minutes ahead
	store := &outboxHastas{hastas: make(chan time.Time, 1)}
	r := NuevoRelay(OpcionesRelay{Store: store, Replica: "r1", Esquema: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Sondeo: 5 * time.Millisecond, Gracia: 2 * time.Second,
		Ahora: func() time.Time { return base }})
	ctx, cancel := context.WithCancel(t.Context())
	hecho := make(chan struct{})
	go func() { defer close(hecho); r.Correr(ctx) }()
	defer func() { cancel(); <-hecho }()
	if h := <-store.hastas; !h.IsZero() {
		t.Errorf("first drain bounded at %v; want every row (zero)", h)
	}
	if h := <-store.hastas; !h.Equal(base.Add(-2 * time.Second)) {
		t.Errorf("poll bounded at %v; want the database's clock minus the grace, %v", h, base.Add(-2*time.Second))
	}
}

// borradosContados counts the store's DELETEs of acknowledged rows, and the
// rows drains published (a drain deletes its own).
type borradosContados struct {
	*almacen.DB
	mu       sync.Mutex
	llamadas int
	filas    int
	drenadas int
}

func (b *borradosContados) DrenarOutboxHasta(ctx context.Context, hasta time.Time, limite int, publicar func(context.Context, []almacen.Mensaje) ([]int64, error)) (int, error) {
	return b.DB.DrenarOutboxHasta(ctx, hasta, limite, func(ctx context.Context, msgs []almacen.Mensaje) ([]int64, error) {
		ids, err := publicar(ctx, msgs)
		b.mu.Lock()
		b.drenadas += len(ids)
		b.mu.Unlock()
		return ids, err
	})
}

func (b *borradosContados) BorrarPublicados(ctx context.Context, ids []int64) (int, error) {
	b.mu.Lock()
	b.llamadas++
	b.filas += len(ids)
	b.mu.Unlock()
	return b.DB.BorrarPublicados(ctx, ids)
}

// TestRelayBorraLosPublicadosJuntos: rows committed and published one after
// another are deleted together once acknowledged (one DELETE per DemoraBorrado, not one
// per row), and none is left in the outbox once the relay has stopped.
func TestRelayBorraLosPublicadosJuntos(t *testing.T) {
	client, topico, cons, db := entornoMemoria(t, "borrar")
	store := &borradosContados{DB: db}
	r := NuevoRelay(OpcionesRelay{Store: store, Client: client, Replica: "r1", Esquema: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Sondeo: time.Hour, Gracia: time.Hour})
	db.AlConfirmar(r.Confirmados)
	ctx, cancel := context.WithCancel(t.Context())
	hecho := make(chan struct{})
	go func() { defer close(hecho); r.Correr(ctx) }()
	defer func() { cancel(); <-hecho }()

	const n = 20
	for i := range n {
		s := saga.Saga{ID: fmt.Sprint("s-", i), Tipo: "campana", VersionDefinicion: 1, Estado: saga.Iniciada, Inicio: time.Now(),
			Compensaciones: []string{}, Pasos: []saga.EstadoDePaso{{Nombre: "marca", Servicio: "marca", Estado: saga.PasoPendiente}}}
		msg := almacen.Mensaje{Topico: topico, Clave: s.ID, Tipo: "x", Carga: []byte(s.ID)}
		if _, _, err := db.CrearSaga(t.Context(), s, almacen.Idempotencia{}, []almacen.Mensaje{msg}); err != nil {
			t.Fatal(err)
		}
		// One at a time, as the transitions of an idle system: each row is
		// published alone, and once (the start's drain may claim the first
		// row before its commit reaches Confirmados; its memory copy is
		// dropped).
		rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
		m, err := cons.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("row %d never reached the broker: %v", i, err)
		}
		if string(m.Payload()) != s.ID {
			t.Fatalf("received %q while waiting for %s: an earlier row was published again", m.Payload(), s.ID)
		}
	}
	cancel()
	<-hecho
	pendientes, _, err := db.Outbox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if pendientes != 0 || store.filas+store.drenadas != n {
		t.Errorf("%d rows left in the outbox, %d deleted after publishing from memory, %d drained; want 0 and %d in all",
			pendientes, store.filas, store.drenadas, n)
	}
	if store.llamadas >= n {
		t.Errorf("%d DELETEs for %d rows: acknowledged rows are not gathered", store.llamadas, n)
	}
	t.Logf("%d rows deleted in %d statements, %d drained", store.filas, store.llamadas, store.drenadas)
}

// entornoMemoria connects to the test broker, subscribes to a new topic
// relay-<nombre>-<n> from its start and opens a SQLite store: what the
// publish-from-memory tests share. All is closed when the test ends.
func entornoMemoria(t *testing.T, nombre string) (pulsar.Client, string, pulsar.Consumer, *almacen.DB) {
	t.Helper()
	client, err := bus.Conectar(integracion.PulsarURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	topico := fmt.Sprintf("persistent://public/default/relay-%s-%d", nombre, time.Now().UnixNano())
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topico, SubscriptionName: "prueba", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	db, err := almacen.Abrir(t.Context(), almacen.Config{Tipo: almacen.TipoSQLite, Ruta: filepath.Join(t.TempDir(), "sagas.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return client, topico, cons, db
}

// TestRelayColaAcotada: while nothing publishes (the broker away), the rows
// handed to Confirmados wait in memory only up to MaxCola; the rest stay
// for the poll, which finds them in the outbox.
func TestRelayColaAcotada(t *testing.T) {
	r := NuevoRelay(OpcionesRelay{Store: &outboxFalso{}, Replica: "r1", Esquema: func(string) string { return "" }})
	for i := range MaxCola + 500 {
		r.Confirmados([]almacen.Mensaje{{ID: int64(i + 1), Topico: "t", Clave: "s"}})
	}
	r.muCola.Lock()
	defer r.muCola.Unlock()
	if len(r.cola) != MaxCola || r.cola[0].ID != 1 || r.cola[len(r.cola)-1].ID != MaxCola {
		t.Fatalf("%d rows in memory (ids %d-%d); want the first %d", len(r.cola), r.cola[0].ID, r.cola[len(r.cola)-1].ID, MaxCola)
	}
}

// TestRelayDejaAlSondeoLasFilasViejas: a committed row older than half the
// grace period is not published from memory (another replica's poll may
// claim it once it is older than the grace period); it stays in the outbox.
func TestRelayDejaAlSondeoLasFilasViejas(t *testing.T) {
	client, topico, cons, db := entornoMemoria(t, "viejas")
	r := NuevoRelay(OpcionesRelay{Store: db, Client: client, Replica: "r1", Esquema: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Sondeo: time.Hour, Gracia: 2 * time.Second})
	db.AlConfirmar(r.Confirmados)
	ctx, cancel := context.WithCancel(t.Context())
	hecho := make(chan struct{})
	go func() { defer close(hecho); r.Correr(ctx) }()
	defer func() { cancel(); <-hecho }()

	crearCon := func(id string, creado time.Time) {
		t.Helper()
		s := saga.Saga{ID: id, Tipo: "campana", VersionDefinicion: 1, Estado: saga.Iniciada, Inicio: time.Now(),
			Compensaciones: []string{}, Pasos: []saga.EstadoDePaso{{Nombre: "marca", Servicio: "marca", Estado: saga.PasoPendiente}}}
		msg := almacen.Mensaje{Topico: topico, Clave: id, Tipo: "x", Carga: []byte(id), Creado: creado}
		if _, _, err := db.CrearSaga(t.Context(), s, almacen.Idempotencia{}, []almacen.Mensaje{msg}); err != nil {
			t.Fatal(err)
		}
	}
	recibir := func(espera time.Duration) (string, error) { return recibirCarga(t, cons, espera) }
	crearCon("fresca", time.Now())
	if got, err := recibir(20 * time.Second); err != nil || got != "fresca" {
		t.Fatalf("the fresh row: %q, %v", got, err)
	}
	time.Sleep(100 * time.Millisecond) // the start's drain is done
	crearCon("vieja", time.Now().Add(-1500*time.Millisecond))
	if got, err := recibir(700 * time.Millisecond); err == nil {
		t.Fatalf("a row older than half the grace period was published from memory: %q", got)
	}
	if n, _, err := db.Outbox(t.Context()); err != nil || n != 1 {
		t.Fatalf("outbox: %d rows (%v); want the old one", n, err)
	}
	crearCon("otra", time.Now())
	if got, err := recibir(20 * time.Second); err != nil || got != "otra" {
		t.Fatalf("a fresh row after the old one: %q, %v", got, err)
	}
}

// TestRelayNoRepiteLoQueUnDrenajePublico: a row committed just before a
// drain claims it reaches Confirmados after the drain published it (the
// first drain, an Avisar); its memory copy is not published a second time.
func TestRelayNoRepiteLoQueUnDrenajePublico(t *testing.T) {
	client, topico, cons, db := entornoMemoria(t, "drenados")
	r := NuevoRelay(OpcionesRelay{Store: db, Client: client, Replica: "r1", Esquema: func(string) string { return "" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Sondeo: time.Hour})
	// The commits' rows are held back here and handed over by the test.
	var confirmados []almacen.Mensaje
	db.AlConfirmar(func(msgs []almacen.Mensaje) { confirmados = append(confirmados, msgs...) })
	ctx, cancel := context.WithCancel(t.Context())
	hecho := make(chan struct{})
	go func() { defer close(hecho); r.Correr(ctx) }()
	defer func() { cancel(); <-hecho }()

	crear := func(id string) []almacen.Mensaje {
		t.Helper()
		confirmados = nil
		s := saga.Saga{ID: id, Tipo: "campana", VersionDefinicion: 1, Estado: saga.Iniciada, Inicio: time.Now(),
			Compensaciones: []string{}, Pasos: []saga.EstadoDePaso{{Nombre: "marca", Servicio: "marca", Estado: saga.PasoPendiente}}}
		msg := almacen.Mensaje{Topico: topico, Clave: id, Tipo: "x", Carga: []byte(id), Creado: time.Now()}
		if _, _, err := db.CrearSaga(t.Context(), s, almacen.Idempotencia{}, []almacen.Mensaje{msg}); err != nil {
			t.Fatal(err)
		}
		if len(confirmados) != 1 || confirmados[0].ID <= 0 {
			t.Fatalf("the commit handed over %+v; want its one row with its id", confirmados)
		}
		return confirmados
	}
	recibir := func(espera time.Duration) (string, error) { return recibirCarga(t, cons, espera) }
	uno := crear("uno")
	r.Avisar()
	if got, err := recibir(20 * time.Second); err != nil || got != "uno" {
		t.Fatalf("the drained row: %q, %v", got, err)
	}
	r.Confirmados(uno) // late: the drain already published it
	r.Confirmados(crear("dos"))
	if got, err := recibir(20 * time.Second); err != nil || got != "dos" {
		t.Fatalf("after the late copy of a drained row: %q, %v; want the next row", got, err)
	}
	if got, err := recibir(500 * time.Millisecond); err == nil {
		t.Fatalf("a row was published again: %q", got)
	}
}

// recibirCarga waits up to espera for cons's next message and returns its
// payload.
func recibirCarga(t *testing.T, cons pulsar.Consumer, espera time.Duration) (string, error) {
	rctx, rcancel := context.WithTimeout(t.Context(), espera)
	defer rcancel()
	m, err := cons.Receive(rctx)
	if err != nil {
		return "", err
	}
	return string(m.Payload()), nil
}
