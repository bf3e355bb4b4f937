package participantepython

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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	_ "modernc.org/sqlite"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/topologia"
)

const servicio = "marca"

// TestParticipantePythonCumpleLasReglasDeLaBandeja runs participante.py
// against the test broker in a namespace of its own, sends it commands as the
// coordinator does (Avro ComandoSaga, key saga_id, the same properties), and
// checks its replies and the effects in its SQLite file.
func TestParticipantePythonCumpleLasReglasDeLaBandeja(t *testing.T) {
	necesitaPython(t)
	pulsarURL, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancelar := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelar()

	topo := eventos.Topologia{Tenant: eventos.TopologiaPorDefecto.Tenant, Namespace: "py" + aleatorio()}
	prepararNamespace(ctx, t, adminURL, topo, 1)

	cliente, err := bus.Conectar(pulsarURL, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer cliente.Close()
	respuestas, err := cliente.Subscribe(pulsar.ConsumerOptions{
		Topic: topo.Respuestas(), SubscriptionName: "prueba", Type: pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer respuestas.Close()
	productor, err := bus.NuevoProductor(cliente, topo.Comandos(servicio), "coordinador-"+topo.Namespace, esquemas.MustAvro(esquemas.ComandoSaga), bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	defer productor.Close()

	db := filepath.Join(t.TempDir(), "participante-marca.db")
	iniciarPython(t, pulsarURL, topo, db)
	p := &prueba{t: t, ctx: ctx, productor: productor, respuestas: respuestas, db: abrir(t, db),
		comandos: codec[eventos.Comando](t, esquemas.ComandoSaga), replies: codec[eventos.Respuesta](t, esquemas.RespuestaSaga)}

	sagaA, sagaB, sagaC := uuid.NewString(), uuid.NewString(), uuid.NewString()
	entrada := map[string]any{"nombre": "Campaña Demo", "marca": map[string]string{"id_marca": "m-001", "nombre_marca": "Andes Outdoor"}}
	var primera eventos.Respuesta

	t.Run("una accion responde exito y deja su efecto", func(t *testing.T) {
		p.t = t
		cmd := comando(sagaA, "NotificarMarca", eventos.Ejecutar, 1, entrada)
		primera = p.enviar(cmd)
		if !primera.Exito || primera.Error != nil {
			t.Fatalf("respuesta = %+v, se esperaba exito", primera)
		}
		if want := eventos.Tipo("NotificarMarcaRespondido"); primera.Type != want {
			t.Errorf("type = %q, se esperaba %q", primera.Type, want)
		}
		if want := cmd.ClaveIdempotencia + ":1:ok"; primera.ID != want {
			t.Errorf("id = %q, se esperaba %q", primera.ID, want)
		}
		if primera.ServiceName != servicio || primera.Paso != "marca" || primera.Accion != eventos.Ejecutar || primera.Intento != 1 {
			t.Errorf("respuesta = %+v: service_name, paso, accion o intento no corresponden al comando", primera)
		}
		if !strings.Contains(primera.Datos, `"id_marca": "m-001"`) && !strings.Contains(primera.Datos, `"id_marca":"m-001"`) {
			t.Errorf("datos = %s, deben nombrar la marca notificada", primera.Datos)
		}
		p.efecto(sagaA, "ENVIADA")
	})

	t.Run("una reentrega recibe la respuesta guardada sin repetir el efecto", func(t *testing.T) {
		p.t = t
		cmd := comando(sagaA, "NotificarMarca", eventos.Ejecutar, 1, entrada)
		otra := p.enviar(cmd)
		if fmt.Sprintf("%+v", otra) != fmt.Sprintf("%+v", primera) {
			t.Errorf("reentrega:\n got %+v\nwant %+v (la misma respuesta)", otra, primera)
		}
		p.efecto(sagaA, "ENVIADA")
	})

	t.Run("la compensacion deshace el efecto", func(t *testing.T) {
		p.t = t
		r := p.enviar(comando(sagaA, "CompensarNotificacionMarca", eventos.Compensar, 1, entrada))
		if !r.Exito || r.Type != eventos.Tipo("CompensarNotificacionMarcaRespondido") {
			t.Fatalf("respuesta = %+v, se esperaba exito", r)
		}
		p.efecto(sagaA, "CANCELADA")
	})

	t.Run("una compensacion antes de su accion se responde hecha y la accion tardia se rechaza", func(t *testing.T) {
		p.t = t
		r := p.enviar(comando(sagaB, "CompensarNotificacionMarca", eventos.Compensar, 1, entrada))
		if !r.Exito || !strings.Contains(r.Datos, "deshecho") {
			t.Fatalf("compensación anticipada: %+v, se esperaba exito con deshecho=false", r)
		}
		tardia := p.enviar(comando(sagaB, "NotificarMarca", eventos.Ejecutar, 1, entrada))
		if tardia.Exito || tardia.Error == nil || !strings.Contains(*tardia.Error, "compensado") {
			t.Fatalf("acción tardía: %+v, se esperaba un rechazo", tardia)
		}
		p.efecto(sagaB, "")
	})

	t.Run("un fallo de negocio no deja efecto", func(t *testing.T) {
		p.t = t
		conFallo := map[string]any{"nombre": "Campaña Demo", "simular_fallo": "marca",
			"marca": map[string]string{"id_marca": "m-002", "nombre_marca": "Café Altura"}}
		r := p.enviar(comando(sagaC, "NotificarMarca", eventos.Ejecutar, 1, conFallo))
		if r.Exito || r.Error == nil || r.ID != sagaC+":marca:EJECUTAR:1:fallo" {
			t.Fatalf("respuesta = %+v, se esperaba un fallo", r)
		}
		p.efecto(sagaC, "")
		// Its compensation has nothing to undo, and says so.
		if c := p.enviar(comando(sagaC, "CompensarNotificacionMarca", eventos.Compensar, 1, conFallo)); !c.Exito {
			t.Fatalf("compensación de una acción fallida: %+v, se esperaba exito", c)
		}
	})
}

type prueba struct {
	t          *testing.T
	ctx        context.Context
	productor  pulsar.Producer
	respuestas pulsar.Consumer
	db         *sql.DB
	comandos   *eventos.Codec[eventos.Comando]
	replies    *eventos.Codec[eventos.Respuesta]
}

// enviar publishes cmd as the coordinator's relay does and returns the one
// reply it gets, after checking the reply message's key and properties.
func (p *prueba) enviar(cmd eventos.Comando) eventos.Respuesta {
	p.t.Helper()
	carga, err := p.comandos.Codificar(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	traceparent := "00-" + strings.Repeat("a", 32) + "-" + strings.Repeat("b", 16) + "-01"
	if _, err := p.productor.Send(p.ctx, &pulsar.ProducerMessage{Payload: carga, Key: cmd.SagaID, Properties: map[string]string{
		eventos.PropSagaID: cmd.SagaID, eventos.PropPaso: cmd.Paso, eventos.PropIntento: fmt.Sprint(cmd.Intento),
		eventos.PropTipo: cmd.Type, eventos.PropTraceparent: traceparent,
	}}); err != nil {
		p.t.Fatalf("enviar %s: %v", cmd.Type, err)
	}
	rctx, cancelar := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancelar()
	msg, err := p.respuestas.Receive(rctx)
	if err != nil {
		p.t.Fatalf("sin respuesta a %s de la saga %s: %v", cmd.Type, cmd.SagaID, err)
	}
	if err := p.respuestas.Ack(msg); err != nil {
		p.t.Fatal(err)
	}
	r, err := p.replies.Decodificar(msg.Payload())
	if err != nil {
		p.t.Fatalf("respuesta que el coordinador no decodificaría: %v", err)
	}
	if err := r.Validar(); err != nil {
		p.t.Fatal(err)
	}
	if r.SagaID != cmd.SagaID || r.Accion != cmd.Accion {
		p.t.Fatalf("respuesta de %s %s a un comando %s %s", r.SagaID, r.Accion, cmd.SagaID, cmd.Accion)
	}
	props := msg.Properties()
	want := map[string]string{
		"clave": cmd.SagaID, eventos.PropSagaID: cmd.SagaID, eventos.PropPaso: cmd.Paso,
		eventos.PropIntento: fmt.Sprint(cmd.Intento), eventos.PropTipo: r.Type, eventos.PropTraceparent: traceparent,
	}
	got := map[string]string{"clave": msg.Key()}
	for k := range want {
		if k != "clave" {
			got[k] = props[k]
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		p.t.Errorf("clave y propiedades de la respuesta = %v, se esperaba %v", got, want)
	}
	return r
}

// efecto checks the saga's effect rows: one in estado, or none for "".
func (p *prueba) efecto(sagaID, estado string) {
	p.t.Helper()
	filas, err := p.db.QueryContext(p.ctx, "SELECT estado FROM notificaciones_marca WHERE saga_id = ?", sagaID)
	if err != nil {
		p.t.Fatal(err)
	}
	defer filas.Close()
	var estados []string
	for filas.Next() {
		var e string
		if err := filas.Scan(&e); err != nil {
			p.t.Fatal(err)
		}
		estados = append(estados, e)
	}
	if err := filas.Err(); err != nil {
		p.t.Fatal(err)
	}
	want := []string{estado}
	if estado == "" {
		want = nil
	}
	if fmt.Sprint(estados) != fmt.Sprint(want) {
		p.t.Errorf("efectos de la saga %s = %v, se esperaba %v", sagaID, estados, want)
	}
}

// comando builds a command as the coordinator's engine does.
func comando(sagaID, nombre, accion string, intento int, entrada any) eventos.Comando {
	e, err := json.Marshal(entrada)
	if err != nil {
		panic(err)
	}
	datos, err := json.Marshal(eventos.DatosComando{Entrada: e, Previos: map[string]json.RawMessage{}})
	if err != nil {
		panic(err)
	}
	return eventos.Comando{
		ID: uuid.NewString(), Time: eventos.Millis(time.Now()), SpecVersion: eventos.SpecVersion,
		Type: eventos.Tipo(nombre), DataContentType: eventos.ContentTypeJSON, ServiceName: "coordinador",
		SagaID: sagaID, TipoSaga: "campana", Paso: "marca", Accion: accion, Intento: intento,
		ClaveIdempotencia: sagaID + ":marca:" + accion, Datos: string(datos),
	}
}

func codec[T any](t *testing.T, nombre string) *eventos.Codec[T] {
	t.Helper()
	c, err := eventos.NuevoCodec[T](esquemas.MustAvro(nombre))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// necesitaPython skips (fails under SAGAS_TEST_REQUIRED=1) when python3 with
// pulsar-client[avro] is missing.
func necesitaPython(t *testing.T) {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import fastavro, pulsar; from pulsar.schema import AvroSchema").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("the Python participant needs python3 with pip install 'pulsar-client[avro]': %v: %s", err, strings.TrimSpace(string(out)))
		if integracion.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// prepararNamespace creates the namespace with the coordinator's policies,
// schemas and partitions, and deletes it when the test ends.
func prepararNamespace(ctx context.Context, t *testing.T, adminURL string, topo eventos.Topologia, particiones int) {
	t.Helper()
	// The operator's provisioning step, as coordinador -preparar runs it.
	plan := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: []string{servicio}, Particiones: particiones})
	t.Cleanup(func() { borrarNamespace(t, adminURL, topo) })
	if _, err := topologia.Preparar(ctx, bus.NuevoAdmin(adminURL), plan, bus.PoliticasPorDefecto, nil); err != nil {
		t.Fatal(err)
	}
}

// borrarNamespace deletes the namespace's topics, partitioned or not, then
// the namespace (the broker refuses a forced namespace deletion).
func borrarNamespace(t *testing.T, adminURL string, topo eventos.Topologia) {
	hacer := func(metodo, ruta string) ([]byte, error) {
		req, err := http.NewRequest(metodo, adminURL+ruta, nil)
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
			return nil, fmt.Errorf("%s %s: %s: %s", metodo, ruta, resp.Status, b)
		}
		return b, nil
	}
	// Partitioned topics first (their partitions go with them), then the rest.
	b, err := hacer(http.MethodGet, "/admin/v2/persistent/"+topo.NS()+"/partitioned")
	var particionados []string
	if err == nil {
		err = json.Unmarshal(b, &particionados)
	}
	for _, topico := range particionados {
		if err != nil {
			break
		}
		_, err = hacer(http.MethodDelete, "/admin/v2/"+strings.Replace(topico, "://", "/", 1)+"/partitions?force=true")
	}
	if err == nil {
		b, err = hacer(http.MethodGet, "/admin/v2/namespaces/"+topo.NS()+"/topics")
	}
	var topicos []string
	if err == nil {
		err = json.Unmarshal(b, &topicos)
	}
	for _, topico := range topicos {
		if err != nil {
			break
		}
		_, err = hacer(http.MethodDelete, "/admin/v2/"+strings.Replace(topico, "://", "/", 1)+"?force=true")
	}
	if err == nil {
		_, err = hacer(http.MethodDelete, "/admin/v2/namespaces/"+topo.NS())
	}
	if err != nil {
		t.Errorf("borrar namespace %s: %v", topo.NS(), err)
	}
}

// iniciarPython starts participante.py, waits until it has subscribed, and
// stops it with SIGTERM when the test ends. Its log is shown when the test
// fails.
func iniciarPython(t *testing.T, pulsarURL string, topo eventos.Topologia, db string) {
	t.Helper()
	cmd := exec.Command("python3", "participante.py", "--db", db,
		"--pulsar-url", pulsarURL, "--tenant", topo.Tenant, "--namespace", topo.Namespace)
	salida := &salida{listo: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = salida.Stdout(), salida
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	terminado := make(chan error, 1)
	go func() { terminado <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-terminado:
			if err != nil {
				t.Errorf("participante.py: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("participante.py no terminó con SIGTERM")
		}
		if t.Failed() {
			t.Logf("salida de participante.py:\n%s", salida)
		}
	})
	select {
	case <-salida.listo:
	case err := <-terminado:
		terminado <- err
		t.Fatalf("participante.py terminó sin suscribirse: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("participante.py no se suscribió en 60 s")
	}
}

// salida collects the process's output, stderr (Write) and stdout
// (Stdout) together, and closes listo when the line "listo" appears on
// stdout. Looked for there alone: the client's log lines on stderr can land
// between "listo" and its newline.
type salida struct {
	mu     sync.Mutex
	b      strings.Builder
	stdout strings.Builder
	listo  chan struct{}
	visto  bool
}

func (s *salida) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	return len(p), nil
}

// Stdout is the writer for the process's standard output.
func (s *salida) Stdout() io.Writer { return salidaEstandar{s} }

type salidaEstandar struct{ s *salida }

func (e salidaEstandar) Write(p []byte) (int, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	s.stdout.Write(p)
	if !s.visto && strings.Contains("\n"+s.stdout.String(), "\nlisto\n") {
		s.visto = true
		close(s.listo)
	}
	return len(p), nil
}

func (s *salida) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func abrir(t *testing.T, ruta string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", ruta)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func aleatorio() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestParticipantePythonRespondeEnLaParticionDeGo runs participante.py on a
// deployment of 3-partition topics: every reply lands on the partition that
// a Go producer (Murmur3 of the saga id) would use, so one saga's replies
// stay on one partition whichever language answered.
func TestParticipantePythonRespondeEnLaParticionDeGo(t *testing.T) {
	necesitaPython(t)
	pulsarURL, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancelar := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelar()
	const particiones, sagas = 3, 30
	topo := eventos.Topologia{Tenant: eventos.TopologiaPorDefecto.Tenant, Namespace: "py" + aleatorio()}
	prepararNamespace(ctx, t, adminURL, topo, particiones)

	cliente, err := bus.Conectar(pulsarURL, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer cliente.Close()
	respuestas, err := cliente.Subscribe(pulsar.ConsumerOptions{
		Topic: topo.Respuestas(), SubscriptionName: "prueba", Type: pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer respuestas.Close()
	productor, err := bus.NuevoProductor(cliente, topo.Comandos(servicio), "", esquemas.MustAvro(esquemas.ComandoSaga), bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	defer productor.Close()
	iniciarPython(t, pulsarURL, topo, filepath.Join(t.TempDir(), "participante-marca.db"))

	comandos, replies := codec[eventos.Comando](t, esquemas.ComandoSaga), codec[eventos.Respuesta](t, esquemas.RespuestaSaga)
	entrada := map[string]any{"nombre": "Campaña Demo", "marca": map[string]string{"id_marca": "m-001", "nombre_marca": "Andes Outdoor"}}
	for range sagas {
		cmd := comando(uuid.NewString(), "NotificarMarca", eventos.Ejecutar, 1, entrada)
		carga, err := comandos.Codificar(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := productor.Send(ctx, &pulsar.ProducerMessage{Payload: carga, Key: cmd.SagaID, Properties: map[string]string{
			eventos.PropSagaID: cmd.SagaID, eventos.PropPaso: cmd.Paso, eventos.PropIntento: "1", eventos.PropTipo: cmd.Type,
		}}); err != nil {
			t.Fatal(err)
		}
	}
	porParticion := map[int]int{}
	for range sagas {
		rctx, fin := context.WithTimeout(ctx, 30*time.Second)
		msg, err := respuestas.Receive(rctx)
		fin()
		if err != nil {
			t.Fatalf("replies: %v after %v", err, porParticion)
		}
		respuestas.Ack(msg)
		r, err := replies.Decodificar(msg.Payload())
		if err != nil {
			t.Fatal(err)
		}
		i := strings.LastIndex(msg.Topic(), "-partition-")
		if i < 0 {
			t.Fatalf("reply from %s, not a partition", msg.Topic())
		}
		var got int
		fmt.Sscan(msg.Topic()[i+len("-partition-"):], &got)
		if want := bus.ParticionDe(r.SagaID, particiones); got != want || msg.Key() != r.SagaID {
			t.Errorf("reply of saga %s (key %q) on partition %d, a Go producer uses %d", r.SagaID, msg.Key(), got, want)
		}
		porParticion[got]++
	}
	if len(porParticion) != particiones {
		t.Errorf("replies per partition %v: want all %d used", porParticion, particiones)
	}
}
