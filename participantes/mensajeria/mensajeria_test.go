package mensajeria

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/participantes/almacen"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/fallos"
	"github.com/alpespartner/sagas/participantes/internal/prueba"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// productorFalso fails the first fallos sends, then keeps what it is sent.
type productorFalso struct {
	pulsar.Producer
	mu       sync.Mutex
	fallos   int
	enviados []*pulsar.ProducerMessage
}

func (f *productorFalso) Send(_ context.Context, m *pulsar.ProducerMessage) (pulsar.MessageID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fallos > 0 {
		f.fallos--
		return nil, errors.New("broker no disponible")
	}
	f.enviados = append(f.enviados, m)
	return nil, nil
}

func (f *productorFalso) SendAsync(ctx context.Context, m *pulsar.ProducerMessage, cb func(pulsar.MessageID, *pulsar.ProducerMessage, error)) {
	_, err := f.Send(ctx, m)
	cb(nil, m, err)
}

func (f *productorFalso) FlushWithCtx(context.Context) error { return nil }

// mensajeFalso is a received message with only what manejar reads.
type mensajeFalso struct {
	pulsar.Message
	carga []byte
}

func (m mensajeFalso) Payload() []byte               { return m.carga }
func (m mensajeFalso) Properties() map[string]string { return map[string]string{} }
func (m mensajeFalso) RedeliveryCount() uint32       { return 0 }

// sinBroker is a consumer on a SQLite store in a temp file whose replies go
// to a fake producer: the runtime's decisions without a broker. The store's
// clock reads *reloj.
type sinBroker struct {
	*Consumidor
	alm   *almacen.Almacen
	reloj *time.Time
}

func consumidorSinBroker(t *testing.T, prod *productorFalso) *sinBroker {
	t.Helper()
	s := prueba.Servicio()
	reloj := time.UnixMilli(1_800_000_000_000)
	alm, err := almacen.Abrir(t.Context(), almacen.Opciones{
		Tipo: almacen.SQLite, RutaSQLite: filepath.Join(t.TempDir(), "p.db"),
		Reloj: func() time.Time { return reloj },
	}, &s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alm.Close() })
	reg := prometheus.NewRegistry()
	c, err := Nuevo(nil, alm, s, Opciones{
		Topologia: eventos.TopologiaPorDefecto, Trabajadores: 1,
		Inyector: fallos.NuevoInyector(s.Nombre, 0, "", 1),
		Metricas: NuevasMetricas(reg, &s), MetricasBus: bus.NuevasMetricas(reg),
		Logger: slog.New(slog.NewJSONHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.productor = prod
	return &sinBroker{Consumidor: c, alm: alm, reloj: &reloj}
}

// EfectosActivos counts the test service's effects in force for a saga.
func (p *sinBroker) EfectosActivos(ctx context.Context, sagaID string) (int, error) {
	efs, err := p.alm.Efectos(ctx, sagaID)
	return servicio.Activos(efs), err
}

func codificar(t *testing.T, c eventos.Comando) mensajeFalso {
	t.Helper()
	codec, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.Codificar(c)
	if err != nil {
		t.Fatal(err)
	}
	return mensajeFalso{carga: b}
}

func comandoPrueba(saga, nombre, accion string) eventos.Comando {
	return eventos.Comando{
		ID: "m-" + saga, Time: 1, SpecVersion: eventos.SpecVersion, Type: eventos.Tipo(nombre), DataContentType: eventos.ContentTypeJSON,
		ServiceName: "coordinador", SagaID: saga, TipoSaga: "prueba", Paso: "paso1", Accion: accion, Intento: 1,
		ClaveIdempotencia: saga + ":paso1:" + accion, Datos: `{"entrada":{},"previos":{}}`,
	}
}

func TestRespuestaNoPublicadaSeReintentaYLaReentregaReenviaLaGuardada(t *testing.T) {
	prod := &productorFalso{fallos: 1}
	p := consumidorSinBroker(t, prod)
	msg := codificar(t, comandoPrueba("s1", "Hacer", eventos.Ejecutar))

	err := p.manejar(t.Context(), msg)
	if err == nil || errors.Is(err, bus.ErrPermanente) {
		t.Fatalf("a failed publish must be a retryable error (nack), got %v", err)
	}
	// The effect committed before the publish: it stays, once.
	if n, err := p.EfectosActivos(t.Context(), "s1"); err != nil || n != 1 {
		t.Fatalf("efectos activos = %d, %v; want 1", n, err)
	}
	// The redelivery changes nothing and sends the stored reply.
	*p.reloj = time.UnixMilli(1_900_000_000_000)
	if err := p.manejar(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if len(prod.enviados) != 1 {
		t.Fatalf("%d replies sent, want 1", len(prod.enviados))
	}
	r := decodificarRespuesta(t, prod.enviados[0].Payload)
	if !r.Exito || r.ID != "s1:paso1:EJECUTAR:1:ok" || r.Time != 1_800_000_000_000 || prod.enviados[0].Key != "s1" {
		t.Fatalf("stored reply not re-sent as it was: %+v key %q", r, prod.enviados[0].Key)
	}
	if n, _ := p.EfectosActivos(t.Context(), "s1"); n != 1 {
		t.Fatalf("efectos activos = %d after the redelivery, want 1", n)
	}
	// A new attempt (the coordinator's retry after a timeout) gets the
	// stored outcome under a new reply id, so the coordinator does not drop it.
	otro := comandoPrueba("s1", "Hacer", eventos.Ejecutar)
	otro.Intento = 2
	if err := p.manejar(t.Context(), codificar(t, otro)); err != nil {
		t.Fatal(err)
	}
	r2 := decodificarRespuesta(t, prod.enviados[1].Payload)
	if r2.ID != "s1:paso1:EJECUTAR:2:ok" || r2.Intento != 2 || r2.Datos != r.Datos || r2.Time != r.Time {
		t.Fatalf("reply to attempt 2: %+v", r2)
	}
	if n, _ := p.EfectosActivos(t.Context(), "s1"); n != 1 {
		t.Fatalf("efectos activos = %d after attempt 2, want 1", n)
	}
	exito := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoExito))
	duplicado := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoDuplicado))
	if exito != 1 || duplicado != 2 {
		t.Errorf("exito = %v, duplicado = %v; want 1 and 2", exito, duplicado)
	}
}

func decodificarRespuesta(t *testing.T, b []byte) eventos.Respuesta {
	t.Helper()
	codec, err := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
	if err != nil {
		t.Fatal(err)
	}
	r, err := codec.Decodificar(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMensajesNoProcesablesSonPermanentes(t *testing.T) {
	p := consumidorSinBroker(t, &productorFalso{})
	sinSaga := comandoPrueba("", "Hacer", eventos.Ejecutar)
	desconocido := comandoPrueba("s2", "Bailar", eventos.Ejecutar)
	cruzado := comandoPrueba("s3", "Deshacer", eventos.Ejecutar)
	for nombre, msg := range map[string]mensajeFalso{
		"bytes al azar":       {carga: []byte{0xde, 0xad, 0xbe, 0xef, 0x01}},
		"json en vez de avro": {carga: []byte(`{"saga_id":"s"}`)},
		"sin saga_id":         codificar(t, sinSaga),
		"comando desconocido": codificar(t, desconocido),
		"accion que no casa":  codificar(t, cruzado),
	} {
		if err := p.manejar(t.Context(), msg); !errors.Is(err, bus.ErrPermanente) {
			t.Errorf("%s: %v, want an error wrapping bus.ErrPermanente", nombre, err)
		}
	}
	total := 0.0
	for _, motivo := range []string{"malformado", "invalido", "desconocido"} {
		total += valor(t, p.o.Metricas.invalidos.WithLabelValues("prueba", motivo))
	}
	if total != 5 {
		t.Errorf("%v poison messages counted, want 5", total)
	}
}

func TestDatosNoValidosSonUnFalloDeNegocioDefinitivo(t *testing.T) {
	prod := &productorFalso{}
	p := consumidorSinBroker(t, prod)
	c := comandoPrueba("s4", "Hacer", eventos.Ejecutar)
	c.Datos = "no es json"
	for range 2 {
		if err := p.manejar(t.Context(), codificar(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := decodificarRespuesta(t, prod.enviados[0].Payload), decodificarRespuesta(t, prod.enviados[1].Payload)
	if a.Exito || a.Error == nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("want the same failure twice: %+v / %+v", a, b)
	}
	var datos map[string]any
	if err := json.Unmarshal([]byte(a.Datos), &datos); err != nil {
		t.Fatalf("datos %q: %v", a.Datos, err)
	}
}

// valor reads a counter.
func valor(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func conEntrada(c eventos.Comando, entrada string) eventos.Comando {
	c.Datos = `{"entrada":` + entrada + `,"previos":{}}`
	return c
}

// A batch gives each command what manejar gives it alone: replies in
// command order, a duplicate in the same batch answered with the stored
// reply, a business failure without effect, poison dead-lettered.
func TestLoteComoUnoAUno(t *testing.T) {
	prod := &productorFalso{}
	p := consumidorSinBroker(t, prod)
	s1 := codificar(t, comandoPrueba("s1", "Hacer", eventos.Ejecutar))
	s2 := conEntrada(comandoPrueba("s2", "Hacer", eventos.Ejecutar), `{"rechazar":true}`)
	des2 := comandoPrueba("s2", "Deshacer", eventos.Compensar)
	des2.ID = "m-s2-c"
	s3 := comandoPrueba("s3", "Hacer", eventos.Ejecutar)
	lote := []pulsar.Message{s1, codificar(t, s2), s1, codificar(t, des2), mensajeFalso{carga: []byte{0xde, 0xad}}, codificar(t, s3)}
	errs := p.manejarLote(t.Context(), lote)
	for i, err := range errs {
		if permanente := errors.Is(err, bus.ErrPermanente); (i == 4) != permanente || i != 4 && err != nil {
			t.Errorf("mensaje %d: %v", i, err)
		}
	}
	var ids []string
	for _, m := range prod.enviados {
		ids = append(ids, decodificarRespuesta(t, m.Payload).ID)
	}
	want := []string{"s1:paso1:EJECUTAR:1:ok", "s2:paso1:EJECUTAR:1:fallo", "s1:paso1:EJECUTAR:1:ok", "s2:paso1:COMPENSAR:1:ok", "s3:paso1:EJECUTAR:1:ok"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("replies %v, want %v", ids, want)
	}
	if !reflect.DeepEqual(prod.enviados[0].Payload, prod.enviados[2].Payload) {
		t.Error("the duplicate in the batch did not get the stored reply byte for byte")
	}
	for saga, n := range map[string]int{"s1": 1, "s2": 0, "s3": 1} {
		if got, err := p.EfectosActivos(t.Context(), saga); err != nil || got != n {
			t.Errorf("%s: efectos activos = %d, %v; want %d", saga, got, err, n)
		}
	}
	if n := valor(t, p.o.Metricas.lotes.WithLabelValues("prueba", "uno_a_uno")); n != 1 {
		t.Errorf("%v batches run one by one, want 1 (the business failure)", n)
	}
	exito := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoExito))
	fallo := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoFallo))
	duplicado := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoDuplicado))
	if exito != 2 || fallo != 1 || duplicado != 1 {
		t.Errorf("exito %v fallo %v duplicado %v; want 2, 1, 1", exito, fallo, duplicado)
	}
}

// A command that breaks the batch's transaction costs the others nothing:
// they run again one by one and are applied once; it alone is retried.
func TestLoteRotoSeProcesaUnoAUno(t *testing.T) {
	prod := &productorFalso{}
	p := consumidorSinBroker(t, prod)
	roto := conEntrada(comandoPrueba("r1", "Hacer", eventos.Ejecutar), `{"romper":true}`)
	lote := []pulsar.Message{
		codificar(t, comandoPrueba("a1", "Hacer", eventos.Ejecutar)),
		codificar(t, roto),
		codificar(t, comandoPrueba("a2", "Hacer", eventos.Ejecutar)),
	}
	errs := p.manejarLote(t.Context(), lote)
	if errs[0] != nil || errs[2] != nil || errs[1] == nil || errors.Is(errs[1], bus.ErrPermanente) {
		t.Fatalf("errs %v: want nil, a retryable error, nil", errs)
	}
	for saga, n := range map[string]int{"a1": 1, "r1": 0, "a2": 1} {
		if got, err := p.EfectosActivos(t.Context(), saga); err != nil || got != n {
			t.Errorf("%s: efectos activos = %d, %v; want %d", saga, got, err, n)
		}
	}
	if len(prod.enviados) != 2 {
		t.Fatalf("%d replies, want 2 (none for the broken command)", len(prod.enviados))
	}
	// A failed publish nacks only its own command.
	prod.fallos = 1
	errs = p.manejarLote(t.Context(), []pulsar.Message{
		codificar(t, comandoPrueba("b1", "Hacer", eventos.Ejecutar)),
		codificar(t, comandoPrueba("b2", "Hacer", eventos.Ejecutar)),
	})
	if errs[0] == nil || errors.Is(errs[0], bus.ErrPermanente) || errs[1] != nil {
		t.Fatalf("errs %v: want a retryable error, nil", errs)
	}
}

// A batch without failures commits in one transaction, and a command sees
// what earlier commands of the batch recorded for its step.
func TestLoteConfirmadoVeLoAnterior(t *testing.T) {
	prod := &productorFalso{}
	p := consumidorSinBroker(t, prod)
	hacer := codificar(t, comandoPrueba("s1", "Hacer", eventos.Ejecutar))
	deshacer := comandoPrueba("s1", "Deshacer", eventos.Compensar)
	deshacer.ID = "m-s1-c"
	// A compensation that arrives before its action: nothing to undo, and
	// the action then comes too late and is refused.
	antes := comandoPrueba("s2", "Deshacer", eventos.Compensar)
	lote := []pulsar.Message{hacer, hacer, codificar(t, deshacer), codificar(t, antes), codificar(t, comandoPrueba("s2", "Hacer", eventos.Ejecutar)), codificar(t, comandoPrueba("s3", "Hacer", eventos.Ejecutar))}
	for i, err := range p.manejarLote(t.Context(), lote) {
		if err != nil {
			t.Errorf("mensaje %d: %v", i, err)
		}
	}
	if n := valor(t, p.o.Metricas.lotes.WithLabelValues("prueba", "confirmado")); n != 1 {
		t.Fatalf("%v batches committed, want 1", n)
	}
	var got []string
	for _, m := range prod.enviados {
		r := decodificarRespuesta(t, m.Payload)
		got = append(got, fmt.Sprintf("%s %v %s", r.ID, r.Exito, r.Datos))
	}
	want := []string{
		`s1:paso1:EJECUTAR:1:ok true {"hecho":true}`,
		`s1:paso1:EJECUTAR:1:ok true {"hecho":true}`,
		`s1:paso1:COMPENSAR:1:ok true {"deshechos":1}`,
		`s2:paso1:COMPENSAR:1:ok true {"deshecho":false,"motivo":"la acción no se ejecutó: nada que deshacer; si llega después, se rechazará"}`,
		`s2:paso1:EJECUTAR:1:fallo false {}`,
		`s3:paso1:EJECUTAR:1:ok true {"hecho":true}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replies:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for saga, n := range map[string]int{"s1": 0, "s2": 0, "s3": 1} {
		if got, err := p.EfectosActivos(t.Context(), saga); err != nil || got != n {
			t.Errorf("%s: efectos activos = %d, %v; want %d", saga, got, err, n)
		}
	}
	rechazado := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoRechazado))
	duplicado := valor(t, p.o.Metricas.comandos.WithLabelValues("prueba", "Hacer", eventos.Ejecutar, bandeja.ResultadoDuplicado))
	if rechazado != 1 || duplicado != 1 {
		t.Errorf("rechazado %v duplicado %v; want 1 and 1", rechazado, duplicado)
	}
}
