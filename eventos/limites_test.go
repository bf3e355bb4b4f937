package eventos_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
)

// metadatosPulsar is generous room for what Pulsar adds to a payload
// (message metadata with our properties, producer name, sequence id).
const metadatosPulsar = 64 << 10

func TestCodificarJSONNoEscapaHTML(t *testing.T) {
	b, err := eventos.CodificarJSON(map[string]string{"nombre": "<a&b>"})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"nombre":"<a&b>"}` {
		t.Fatalf("got %s", b)
	}
	if std, _ := json.Marshal(map[string]string{"nombre": "<a&b>"}); len(std) <= len(b) {
		t.Fatalf("encoding/json's default should escape HTML and grow: %s", std)
	}
}

func TestLosLimitesCabenUnosEnOtros(t *testing.T) {
	// The largest command: its input and three full outputs, which is what
	// MaximoCarga lets through, must be under the broker's limit.
	if eventos.MaximoEntrada+3*eventos.MaximoSalida > eventos.MaximoCarga+1024 {
		t.Fatalf("MaximoCarga %d leaves no room for an input and three outputs", eventos.MaximoCarga)
	}
	if eventos.MaximoCarga+metadatosPulsar >= eventos.MaximoMensajeBroker {
		t.Fatalf("MaximoCarga %d too close to the broker's %d", eventos.MaximoCarga, eventos.MaximoMensajeBroker)
	}
}

// datosPeores is n bytes of valid JSON made of what escapes worst.
func datosPeores(n int) string {
	const cabeza, cola = `{"entrada":{"nombre":"`, `"},"previos":{}}`
	relleno := strings.Repeat(`\u0001<\"`, n)[:n-len(cabeza)-len(cola)]
	relleno = strings.TrimRight(relleno, `\u0001<"`) // never end inside an escape
	relleno += strings.Repeat("a", n-len(cabeza)-len(cola)-len(relleno))
	return cabeza + relleno + cola
}

func TestElComandoMasGrandeCabeEnElBrokerYSeDecodifica(t *testing.T) {
	datos := datosPeores(eventos.MaximoCarga)
	if len(datos) != eventos.MaximoCarga || !json.Valid([]byte(datos)) {
		t.Fatalf("test data: %d bytes, valid %v", len(datos), json.Valid([]byte(datos)))
	}
	sagaID := strings.Repeat("s", 191)
	paso := strings.Repeat("p", 100)
	cmd := eventos.Comando{
		ID: strings.Repeat("i", 200), Time: 1, SpecVersion: eventos.SpecVersion,
		Type: eventos.Tipo(strings.Repeat("C", 100)), DataContentType: eventos.ContentTypeJSON,
		ServiceName: strings.Repeat("n", 100), SagaID: sagaID, TipoSaga: strings.Repeat("t", 100),
		Paso: paso, Accion: eventos.Compensar, Intento: 1 << 30,
		ClaveIdempotencia: sagaID + ":" + paso + ":" + eventos.Compensar, Datos: datos,
	}
	c := codec[eventos.Comando](t, esquemas.ComandoSaga)
	b, err := c.Codificar(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)+metadatosPulsar > eventos.MaximoMensajeBroker {
		t.Fatalf("largest command is %d bytes: over the broker's %d with room for metadata", len(b), eventos.MaximoMensajeBroker)
	}
	got, err := c.Decodificar(b)
	if err != nil {
		t.Fatalf("the largest command does not decode: %v", err)
	}
	if got.Datos != datos {
		t.Fatal("datos changed in the round trip")
	}
	// The reply with the largest output decodes too.
	r := codec[eventos.Respuesta](t, esquemas.RespuestaSaga)
	salida := `{"x":"` + strings.Repeat("<", eventos.MaximoSalida-8) + `"}`
	rb, err := r.Codificar(eventos.ResponderA(&cmd, "servicio", true, strings.Repeat("e", 4096), json.RawMessage(salida), time.UnixMilli(1_790_000_000_123)))
	if err != nil {
		t.Fatal(err)
	}
	if rr, err := r.Decodificar(rb); err != nil || !bytes.Equal([]byte(rr.Datos), []byte(salida)) {
		t.Fatalf("largest reply: %v", err)
	}
}
