// Package participantestest runs participants in tests against the real
// broker and stores: a fresh Pulsar namespace per test (so tests never see
// each other's messages), a store per test (a SQLite temp file or a MariaDB
// database dropped at the end), commands to publish and replies to collect.
//
// Tests that use it skip without the services, and fail under
// SAGAS_TEST_REQUIRED=1 (see package integracion).
package participantestest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/topologia"
	"github.com/alpespartner/sagas/participantes"
)

// Almacenes are the stores every store-dependent test runs on.
func Almacenes() []string { return []string{participantes.AlmacenSQLite, participantes.AlmacenMySQL} }

// Aleatorio returns n random bytes in hex.
func Aleatorio(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Entorno is one test's namespace on the broker and its client.
type Entorno struct {
	PulsarURL string
	AdminURL  string
	Topologia eventos.Topologia
	Cliente   pulsar.Client

	comandos   *eventos.Codec[eventos.Comando]
	respuestas *eventos.Codec[eventos.Respuesta]

	mu          sync.Mutex
	productores map[string]pulsar.Producer
}

// Nuevo creates namespace alpespartner/t<random> and a client, both removed
// when the test ends.
func Nuevo(t *testing.T) *Entorno {
	t.Helper()
	e := &Entorno{
		PulsarURL:   integracion.PulsarURL(t),
		AdminURL:    strings.TrimRight(integracion.PulsarAdminURL(t), "/"),
		Topologia:   eventos.Topologia{Tenant: eventos.TopologiaPorDefecto.Tenant, Namespace: "t" + Aleatorio(6)},
		productores: map[string]pulsar.Producer{},
	}
	var err error
	if e.comandos, err = eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga)); err != nil {
		t.Fatal(err)
	}
	if e.respuestas, err = eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := bus.NuevoAdmin(e.AdminURL).PrepararNamespace(ctx, e.Topologia.Tenant, e.Topologia.Namespace, bus.PoliticasPorDefecto); err != nil {
		t.Fatalf("preparar namespace %s: %v", e.Topologia.NS(), err)
	}
	if e.Cliente, err = bus.Conectar(e.PulsarURL, Logger(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.mu.Lock()
		for _, p := range e.productores {
			p.Close()
		}
		e.mu.Unlock()
		e.Cliente.Close()
		e.borrarNamespace(t)
	})
	return e
}

// borrarNamespace removes the test's topics and namespace (best effort: a
// failure is logged, never fails the test).
func (e *Entorno) borrarNamespace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hacer := func(metodo, ruta string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, metodo, e.AdminURL+ruta, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("%s %s: %s %s", metodo, ruta, resp.Status, b)
		}
		return b, nil
	}
	ns := e.Topologia.NS()
	b, err := hacer(http.MethodGet, "/admin/v2/namespaces/"+ns+"/topics")
	var topicos []string
	if err == nil {
		err = json.Unmarshal(b, &topicos)
	}
	for _, tp := range topicos {
		if _, derr := hacer(http.MethodDelete, "/admin/v2/persistent/"+ns+"/"+url.PathEscape(tp[strings.LastIndex(tp, "/")+1:])+"?force=true"); derr != nil && err == nil {
			err = derr
		}
	}
	if err == nil {
		_, err = hacer(http.MethodDelete, "/admin/v2/namespaces/"+ns)
	}
	if err != nil {
		t.Logf("borrar namespace %s (no afecta a la prueba): %v", ns, err)
	}
}

// Logger writes warnings and errors to the test's output.
func Logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Config is a participant configuration for servicio on this namespace with
// a fresh store of the given type. A MySQL database is dropped at the end; a
// test that needs MySQL is skipped without SAGAS_TEST_MYSQL_DSN.
func (e *Entorno) Config(t *testing.T, servicio, almacen string) participantes.Config {
	t.Helper()
	c := participantes.Config{
		Servicio:       servicio,
		PulsarURL:      e.PulsarURL,
		PulsarAdminURL: e.AdminURL,
		Topologia:      e.Topologia,
		Almacen:        almacen,
		DireccionHTTP:  "127.0.0.1:0",
		Trabajadores:   participantes.TrabajadoresPorDefecto,
		Fallos:         participantes.ConfigFallos{Semilla: 1},
	}
	switch almacen {
	case participantes.AlmacenSQLite:
		c.RutaSQLite = filepath.Join(t.TempDir(), "participante-"+servicio+".db")
	case participantes.AlmacenMySQL:
		dsn, err := mysql.ParseDSN(integracion.MySQLDSN(t))
		if err != nil {
			t.Fatalf("SAGAS_TEST_MYSQL_DSN: %v", err)
		}
		c.MySQL = participantes.ConfigMySQL{Servidor: basedatos.DesdeConfig(dsn), BaseDatos: "pt_" + servicio + "_" + Aleatorio(4)}
		t.Cleanup(func() {
			servidor := c.MySQL
			servidor.BaseDatos = ""
			db, err := abrir(participantes.Config{Almacen: participantes.AlmacenMySQL, MySQL: servidor})
			if err == nil {
				_, err = db.Exec("DROP DATABASE IF EXISTS `" + c.MySQL.BaseDatos + "`")
				db.Close()
			}
			if err != nil {
				t.Logf("borrar base de datos %s: %v", c.MySQL.BaseDatos, err)
			}
		})
	default:
		t.Fatalf("almacén %q desconocido", almacen)
	}
	return c
}

// AbrirBD opens the store of c directly, for assertions that do not go
// through the participant; it is closed at the end of the test.
func (e *Entorno) AbrirBD(t *testing.T, c participantes.Config) *sql.DB {
	t.Helper()
	db, err := abrir(c)
	if err != nil {
		t.Fatalf("abrir almacén: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func abrir(c participantes.Config) (*sql.DB, error) {
	if c.Almacen == participantes.AlmacenSQLite {
		return sql.Open("sqlite", c.RutaSQLite+"?_pragma=busy_timeout(10000)")
	}
	con, err := mysql.NewConnector(c.MySQL.Servidor.Config(c.MySQL.BaseDatos))
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(con), nil
}

// Preparar provisions the services' topics, schemas and permissions in the
// test's namespace, as the operator's step (coordinador -preparar) does.
func (e *Entorno) Preparar(t *testing.T, servicios ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	plan := topologia.Nuevo(topologia.Opciones{Topologia: e.Topologia, Servicios: servicios})
	if _, err := topologia.Preparar(ctx, bus.NuevoAdmin(e.AdminURL), plan, bus.PoliticasPorDefecto, nil); err != nil {
		t.Fatalf("preparar topología de %v: %v", servicios, err)
	}
}

// Arrancar provisions s's topology (Preparar), builds a participant of s
// with c and runs its consumer until the test ends; it returns once the
// consumer is subscribed. The consumer is
// stopped and the store closed at the end of the test.
func (e *Entorno) Arrancar(t *testing.T, c participantes.Config, s participantes.Servicio) *participantes.Participante {
	t.Helper()
	e.Preparar(t, s.Nombre)
	logger := Logger(t).With("servicio", s.Nombre)
	p, err := participantes.Nuevo(t.Context(), c, s, logger)
	if err != nil {
		t.Fatalf("nuevo participante %s: %v", s.Nombre, err)
	}
	consumidor, err := p.Consumidor(e.Cliente)
	if err != nil {
		p.Close()
		t.Fatalf("consumidor de %s: %v", s.Nombre, err)
	}
	ctx, detener := context.WithCancel(context.WithoutCancel(t.Context()))
	fin := make(chan error, 1)
	go func() { fin <- consumidor.Correr(ctx) }()
	t.Cleanup(func() {
		detener()
		select {
		case err := <-fin:
			if err != nil {
				t.Errorf("detener participante %s: %v", s.Nombre, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("el participante %s no se detuvo en 20s", s.Nombre)
		}
		if err := p.Close(); err != nil {
			t.Errorf("cerrar almacén de %s: %v", s.Nombre, err)
		}
	})
	select {
	case <-consumidor.Listo():
	case err := <-fin:
		fin <- nil // reported here; the cleanup still closes the store
		t.Fatalf("iniciar participante %s: %v", s.Nombre, err)
	}
	return p
}

func (e *Entorno) productor(t *testing.T, servicio string) pulsar.Producer {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.productores[servicio]; ok {
		return p
	}
	p, err := bus.NuevoProductor(e.Cliente, e.Topologia.Comandos(servicio), "", esquemas.MustAvro(esquemas.ComandoSaga), bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	e.productores[servicio] = p
	return p
}

// Codificar encodes a command as Avro, as the coordinator sends it.
func (e *Entorno) Codificar(t *testing.T, c eventos.Comando) []byte {
	t.Helper()
	b, err := e.comandos.Codificar(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Publicar sends commands to comandos-<servicio>, keyed by saga_id, all at
// once (asynchronously), and waits until the broker has them all.
func (e *Entorno) Publicar(t *testing.T, servicio string, cmds ...eventos.Comando) {
	t.Helper()
	mensajes := make([]*pulsar.ProducerMessage, len(cmds))
	for i, c := range cmds {
		mensajes[i] = &pulsar.ProducerMessage{Payload: e.Codificar(t, c), Key: c.SagaID, Properties: map[string]string{
			eventos.PropSagaID: c.SagaID, eventos.PropPaso: c.Paso, eventos.PropIntento: strconv.Itoa(c.Intento), eventos.PropTipo: c.Type,
		}}
	}
	e.PublicarMensajes(t, servicio, mensajes...)
}

// PublicarMensajes sends raw messages (poison ones, for example) to
// comandos-<servicio> and waits until the broker has them all.
func (e *Entorno) PublicarMensajes(t *testing.T, servicio string, mensajes ...*pulsar.ProducerMessage) {
	t.Helper()
	p := e.productor(t, servicio)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var primero error
	for _, m := range mensajes {
		wg.Add(1)
		p.SendAsync(t.Context(), m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if primero == nil {
					primero = err
				}
				mu.Unlock()
			}
		})
	}
	p.FlushWithCtx(t.Context())
	wg.Wait()
	if primero != nil {
		t.Fatalf("publicar en comandos-%s: %v", servicio, primero)
	}
}

// Recibida is a reply as it arrived: decoded, with its key and properties.
type Recibida struct {
	eventos.Respuesta
	Clave       string
	Propiedades map[string]string
}

// Escucha collects messages of one topic with a subscription of its own.
type Escucha struct {
	consumer pulsar.Consumer
	codec    *eventos.Codec[eventos.Respuesta]
}

// EscucharRespuestas subscribes to respuestas-saga from its beginning.
func (e *Entorno) EscucharRespuestas(t *testing.T) *Escucha {
	t.Helper()
	return e.Escuchar(t, e.Topologia.Respuestas())
}

// Escuchar subscribes to topico from its beginning, with an exclusive
// subscription of the test.
func (e *Entorno) Escuchar(t *testing.T, topico string) *Escucha {
	t.Helper()
	c, err := e.Cliente.Subscribe(pulsar.ConsumerOptions{
		Topic:                       topico,
		SubscriptionName:            "prueba-" + Aleatorio(4),
		Type:                        pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatalf("suscribir a %s: %v", topico, err)
	}
	t.Cleanup(c.Close)
	return &Escucha{consumer: c, codec: e.respuestas}
}

// Mensajes waits for n raw messages, failing the test after plazo.
func (es *Escucha) Mensajes(t *testing.T, n int, plazo time.Duration) []pulsar.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), plazo)
	defer cancel()
	var msgs []pulsar.Message
	for len(msgs) < n {
		m, err := es.consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("esperaba %d mensajes en %s, llegaron %d: %v", n, plazo, len(msgs), err)
		}
		es.consumer.Ack(m)
		msgs = append(msgs, m)
	}
	return msgs
}

// Esperar waits for n replies, failing the test after plazo.
func (es *Escucha) Esperar(t *testing.T, n int, plazo time.Duration) []Recibida {
	t.Helper()
	var rs []Recibida
	for _, m := range es.Mensajes(t, n, plazo) {
		r, err := es.codec.Decodificar(m.Payload())
		if err != nil {
			t.Fatalf("respuesta no decodificable: %v", err)
		}
		rs = append(rs, Recibida{Respuesta: r, Clave: m.Key(), Propiedades: m.Properties()})
	}
	return rs
}

// Una waits for one reply.
func (es *Escucha) Una(t *testing.T, plazo time.Duration) Recibida {
	t.Helper()
	return es.Esperar(t, 1, plazo)[0]
}

// Nada fails the test if a message arrives within plazo.
func (es *Escucha) Nada(t *testing.T, plazo time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), plazo)
	defer cancel()
	if m, err := es.consumer.Receive(ctx); err == nil {
		t.Fatalf("no se esperaban más mensajes y llegó uno con clave %q", m.Key())
	}
}

// Comando builds a command as the coordinator would: idempotency key
// saga:paso:accion, first attempt, datos {entrada, previos}.
func Comando(sagaID, tipoSaga, paso, nombre, accion string, entrada any, previos map[string]any) eventos.Comando {
	datos := map[string]any{"entrada": entrada, "previos": previos}
	if previos == nil {
		datos["previos"] = map[string]any{}
	}
	b, err := json.Marshal(datos)
	if err != nil {
		panic(fmt.Sprintf("datos de prueba no serializables: %v", err))
	}
	return eventos.Comando{
		ID: Aleatorio(8), Time: eventos.Millis(time.Now()), SpecVersion: eventos.SpecVersion, Type: eventos.Tipo(nombre),
		DataContentType: eventos.ContentTypeJSON, ServiceName: "coordinador", SagaID: sagaID, TipoSaga: tipoSaga,
		Paso: paso, Accion: accion, Intento: 1, ClaveIdempotencia: sagaID + ":" + paso + ":" + accion, Datos: string(b),
	}
}

// Pedir publishes one command to comandos-<servicio> and waits for its
// reply on es.
func (e *Entorno) Pedir(t *testing.T, es *Escucha, servicio string, c eventos.Comando) Recibida {
	t.Helper()
	e.Publicar(t, servicio, c)
	r := es.Una(t, 30*time.Second)
	if r.SagaID != c.SagaID || r.Paso != c.Paso || r.Accion != c.Accion || r.Intento != c.Intento {
		t.Fatalf("reply to another command: %+v (sent %s/%s/%s/%d)", r.Respuesta, c.SagaID, c.Paso, c.Accion, c.Intento)
	}
	return r
}

// Datos decodes a reply's data into v.
func Datos(t *testing.T, r Recibida, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Datos), v); err != nil {
		t.Fatalf("datos de la respuesta %q: %v", r.Datos, err)
	}
}

// Activos fails the test unless the participant has want effects in force
// for the saga, and returns all its effects.
func Activos(t *testing.T, p *participantes.Participante, sagaID string, want int) []participantes.Efecto {
	t.Helper()
	n, err := p.EfectosActivos(t.Context(), sagaID)
	if err != nil {
		t.Fatal(err)
	}
	efs, err := p.Efectos(t.Context(), sagaID)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("saga %s: %d efectos activos, se esperaban %d: %+v", sagaID, n, want, efs)
	}
	return efs
}
