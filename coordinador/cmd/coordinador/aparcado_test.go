package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
)

// TestComandoQueElBrokerRechazaSeAparcaYLaSagaTerminaVisible: the topic
// comandos-marca gets a schema our commands cannot be written with, so the
// broker refuses the producer. The marca command is refused
// SAGAS_OUTBOX_MAX_ATTEMPTS times, then parked (kept, listed); the saga's
// step then times out, and the saga compensates influencer and ends in
// COMPENSACION_FALLIDA (marca's compensation is refused and parked too), a
// state an operator retries once the topic is fixed. Meanwhile a saga on
// other topics completes: a parked row blocks nothing.
func TestComandoQueElBrokerRechazaSeAparcaYLaSagaTerminaVisible(t *testing.T) {
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntorno(t, tipo)
		e.vars["SAGAS_OUTBOX_MAX_ATTEMPTS"] = "2"
		e.vars["SAGAS_REDELIVERY_DELAY"] = "50ms"
		e.vars["SAGAS_REDELIVERY_DELAY_MAX"] = "100ms"
		marca := e.topo.Comandos("marca")
		e.participantes(servicios, siempreBien)
		e.coordinadorEnProceso("r1")
		// Once the coordinator checked the topology at start, replace the
		// topic's schema with one no command fits (an operator's mistake).
		ruta := strings.TrimPrefix(marca, "persistent://")
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, integracion.PulsarAdminURL(t)+"/admin/v2/schemas/"+ruta+"/schema", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := bus.NuevoAdmin(integracion.PulsarAdminURL(t)).RegistrarEsquema(t.Context(), marca,
			`{"type":"record","name":"Otro","fields":[{"name":"otro","type":"long"}]}`); err != nil {
			t.Fatalf("incompatible schema on %s: %v", marca, err)
		}
		m := e.motor()
		rechazada := e.iniciar(m, saga.TipoCampana, `{"nombre":"rechazada"}`)
		otra := e.esperarTerminal(e.iniciar(m, saga.TipoLanzarCampaniaCompleta, `{"nombre":"otra"}`), 30*time.Second)
		if otra.Estado != saga.Completada {
			t.Errorf("a saga on other topics: %s, want COMPLETADA", otra.Estado)
		}
		s := e.esperarTerminal(rechazada, 90*time.Second)
		if s.Estado != saga.CompensacionFallida || s.PasoFallido != "marca" {
			t.Errorf("saga %s paso_fallido %q compensaciones %v, want COMPENSACION_FALLIDA at marca", s.Estado, s.PasoFallido, s.Compensaciones)
		}
		aparcados, err := e.abrir().Aparcados(context.Background(), 100)
		if err != nil || len(aparcados) == 0 {
			t.Fatalf("parked rows: %v, %v; want marca's", aparcados, err)
		}
		for _, a := range aparcados {
			if a.Topico != marca || a.Clave != rechazada || a.Intentos != 2 || !strings.Contains(a.UltimoError, "IncompatibleSchema") {
				t.Errorf("parked row %d: topic %s saga %s attempts %d error %q", a.ID, a.Topico, a.Clave, a.Intentos, a.UltimoError)
			}
		}
		// The saga's outcome event may still be on its way to the broker:
		// the backlog drains to the parked rows alone.
		e.outboxVacio(10 * time.Second)
		resp, err = http.Get("http://" + e.api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		cuerpo, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		serie := fmt.Sprintf(`sagas_outbox_aparcados_total{topic=%q} %d`, marca, len(aparcados))
		if !strings.Contains(string(cuerpo), serie+"\n") {
			t.Errorf("/metrics lacks %s", serie)
		}
	})
}
