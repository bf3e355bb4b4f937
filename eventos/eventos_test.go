package eventos_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
)

func codec[T any](t *testing.T, nombre string) *eventos.Codec[T] {
	t.Helper()
	c, err := eventos.NuevoCodec[T](esquemas.MustAvro(nombre))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func roundTrip[T any](t *testing.T, c *eventos.Codec[T], v T) {
	t.Helper()
	b, err := c.Codificar(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decodificar(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
	}
}

func TestRoundTripDeTodosLosMensajes(t *testing.T) {
	ahora := time.UnixMilli(1_790_000_000_123)
	cmd := eventos.Comando{
		ID: "m1", Time: eventos.Millis(ahora), SpecVersion: eventos.SpecVersion, Type: eventos.Tipo("NotificarMarca"),
		DataContentType: eventos.ContentTypeJSON, ServiceName: "coordinador", SagaID: "s1", TipoSaga: "campana",
		Paso: "marca", Accion: eventos.Compensar, Intento: 2, ClaveIdempotencia: "s1:marca:COMPENSAR", Datos: `{"entrada":{}}`,
	}
	roundTrip(t, codec[eventos.Comando](t, esquemas.ComandoSaga), cmd)

	r := eventos.ResponderA(&cmd, "marca", false, "sin stock", json.RawMessage(`{"x":1}`), ahora)
	roundTrip(t, codec[eventos.Respuesta](t, esquemas.RespuestaSaga), r)
	r2 := eventos.ResponderA(&cmd, "marca", true, "", nil, ahora)
	if r2.Error != nil || r2.Datos != "{}" {
		t.Fatalf("successful reply: error %v datos %q", r2.Error, r2.Datos)
	}
	roundTrip(t, codec[eventos.Respuesta](t, esquemas.RespuestaSaga), r2)

	ev := eventos.Evento{
		ID: "e1", Time: 1, SpecVersion: "1.0", Type: eventos.Tipo(eventos.SagaCompensada), DataContentType: eventos.ContentTypeJSON,
		ServiceName: "coordinador", SagaID: "s1", TipoSaga: "campana", Estado: "COMPENSADA", CampaniaID: eventos.Opcional("c1"),
		PasosEjecutados: []string{"influencer", "marca"}, PasoFallido: eventos.Opcional("tracking"),
		Compensaciones: []string{"tracking", "marca", "influencer"}, Error: eventos.Opcional("db"), DuracionMs: 42,
	}
	roundTrip(t, codec[eventos.Evento](t, esquemas.EventoSaga), ev)
}

func TestRespuestaReenviadaEsIdentica(t *testing.T) {
	cmd := eventos.Comando{ID: "a", SagaID: "s", Paso: "p", Accion: eventos.Ejecutar, Type: eventos.Tipo("X"), ClaveIdempotencia: "s:p:EJECUTAR", Intento: 1}
	ahora := time.Unix(10, 0)
	a := eventos.ResponderA(&cmd, "svc", true, "", json.RawMessage(`{"ok":true}`), ahora)
	cmd.Intento = 1
	b := eventos.ResponderA(&cmd, "svc", true, "", json.RawMessage(`{"ok":true}`), ahora)
	if !reflect.DeepEqual(a, b) || a.ID != "s:p:EJECUTAR:1:ok" || a.Type != "alpespartner.sagas.XRespondido.v1" {
		t.Fatalf("replies differ or have unexpected id/type: %+v %+v", a, b)
	}
}

func TestMensajeMalformadoEsErrMalformado(t *testing.T) {
	c := codec[eventos.Comando](t, esquemas.ComandoSaga)
	for _, b := range [][]byte{nil, []byte("{\"json\":true}"), {0xff, 0xff, 0xff}} {
		if _, err := c.Decodificar(b); !errors.Is(err, eventos.ErrMalformado) {
			t.Errorf("Decodificar(%q) = %v, want ErrMalformado", b, err)
		}
	}
}

func TestValidarComando(t *testing.T) {
	c := eventos.Comando{ID: "a", SagaID: "s", Paso: "p", Accion: "OTRA", Type: "t", ClaveIdempotencia: "k"}
	if err := c.Validar(); err == nil {
		t.Fatal("unknown accion accepted")
	}
	c.Accion = eventos.Ejecutar
	if err := c.Validar(); err != nil {
		t.Fatal(err)
	}
	c.SagaID = ""
	if err := c.Validar(); err == nil {
		t.Fatal("empty saga_id accepted")
	}
}

func TestTipoYNombre(t *testing.T) {
	if got := eventos.NombreDeTipo(eventos.Tipo("NotificarMarca")); got != "NotificarMarca" {
		t.Fatal(got)
	}
	if got := eventos.DLQ(eventos.TopologiaPorDefecto.Respuestas()); got != "persistent://alpespartner/sagas/respuestas-saga-DLQ" {
		t.Fatal(got)
	}
}
