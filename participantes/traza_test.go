package participantes_test

import (
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

// Without an OTLP endpoint a participant makes no span: the reply carries the
// command's traceparent as it came, and no traceparent when the command had
// none.
func TestSinExportadorLaRespuestaLlevaElTraceparentDelComando(t *testing.T) {
	e := pt.Nuevo(t)
	e.Arrancar(t, e.Config(t, "prueba", participantes.AlmacenSQLite), participantes.ServicioPrueba())
	respuestas := e.EscucharRespuestas(t)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	con := pt.Comando("saga-"+pt.Aleatorio(4), "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil)
	sin := pt.Comando("saga-"+pt.Aleatorio(4), "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil)
	e.PublicarMensajes(t, "prueba",
		&pulsar.ProducerMessage{Payload: e.Codificar(t, con), Key: con.SagaID, Properties: map[string]string{eventos.PropTraceparent: tp}},
		&pulsar.ProducerMessage{Payload: e.Codificar(t, sin), Key: sin.SagaID})
	for _, r := range respuestas.Esperar(t, 2, plazo) {
		want := ""
		if r.SagaID == con.SagaID {
			want = tp
		}
		if got := r.Propiedades[eventos.PropTraceparent]; got != want {
			t.Errorf("reply of %s: traceparent %q, want %q", r.SagaID, got, want)
		}
	}
}
