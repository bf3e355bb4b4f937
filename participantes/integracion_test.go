package participantes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	dto "github.com/prometheus/client_model/go"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/topologia"
	"github.com/alpespartner/sagas/participantes"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

const plazo = 30 * time.Second

// contador sums the samples of a counter family whose labels include etiquetas.
func contador(t *testing.T, p *participantes.Participante, nombre string, etiquetas map[string]string) float64 {
	t.Helper()
	familias, err := p.Registro().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range familias {
		if f.GetName() != nombre {
			continue
		}
		for _, m := range f.GetMetric() {
			if tiene(m, etiquetas) {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func tiene(m *dto.Metric, etiquetas map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := etiquetas[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(etiquetas)
}

func contarFilas(t *testing.T, e *pt.Entorno, c participantes.Config, consulta string, args ...any) int {
	t.Helper()
	var n int
	if err := e.AbrirBD(t, c).QueryRowContext(t.Context(), consulta, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", consulta, err)
	}
	return n
}

func enCadaAlmacen(t *testing.T, prueba func(t *testing.T, almacen string)) {
	for _, a := range pt.Almacenes() {
		t.Run(a, func(t *testing.T) { prueba(t, a) })
	}
}

func TestComandoEntregadoCincoVecesDejaUnEfectoYCincoRespuestasIdenticas(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, almacen string) {
		e := pt.Nuevo(t)
		cfg := e.Config(t, "prueba", almacen)
		p := e.Arrancar(t, cfg, participantes.ServicioPrueba())
		respuestas := e.EscucharRespuestas(t)

		cmd := pt.Comando("saga-"+pt.Aleatorio(4), "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil)
		e.Publicar(t, "prueba", cmd, cmd, cmd, cmd, cmd)

		rs := respuestas.Esperar(t, 5, plazo)
		for i, r := range rs {
			if !reflect.DeepEqual(r, rs[0]) {
				t.Fatalf("reply %d differs:\n%+v\n%+v", i, r, rs[0])
			}
		}
		r := rs[0]
		if !r.Exito || r.ID != cmd.ClaveIdempotencia+":1:ok" || r.SagaID != cmd.SagaID || r.Paso != "paso1" || r.Accion != eventos.Ejecutar ||
			r.Type != "alpespartner.sagas.HacerRespondido.v1" || r.ServiceName != "prueba" || r.Datos != `{"hecho":true}` {
			t.Fatalf("unexpected reply %+v", r.Respuesta)
		}
		if r.Clave != cmd.SagaID || r.Propiedades[eventos.PropSagaID] != cmd.SagaID || r.Propiedades[eventos.PropPaso] != "paso1" ||
			r.Propiedades[eventos.PropIntento] != "1" || r.Propiedades[eventos.PropTipo] != r.Type {
			t.Fatalf("reply key %q properties %v", r.Clave, r.Propiedades)
		}
		respuestas.Nada(t, 300*time.Millisecond)
		pt.Activos(t, p, cmd.SagaID, 1)
		if n := contarFilas(t, e, cfg, "SELECT COUNT(*) FROM efectos_prueba WHERE saga_id = ?", cmd.SagaID); n != 1 {
			t.Fatalf("%d effect rows, want 1", n)
		}
		if n := contarFilas(t, e, cfg, "SELECT COUNT(*) FROM inbox WHERE saga_id = ?", cmd.SagaID); n != 1 {
			t.Fatalf("%d inbox rows, want 1", n)
		}
		metrica := "sagas_participante_comandos_total"
		if exito, dup := contador(t, p, metrica, map[string]string{"resultado": "exito"}), contador(t, p, metrica, map[string]string{"resultado": "duplicado"}); exito != 1 || dup != 4 {
			t.Fatalf("exito=%v duplicado=%v, want 1 and 4", exito, dup)
		}
	})
}

func TestCompensacionAntesDeLaAccionSeRespondeHechaYLaAccionTardiaSeRechaza(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, almacen string) {
		e := pt.Nuevo(t)
		cfg := e.Config(t, "prueba", almacen)
		p := e.Arrancar(t, cfg, participantes.ServicioPrueba())
		respuestas := e.EscucharRespuestas(t)
		saga := "saga-" + pt.Aleatorio(4)
		compensacion := pt.Comando(saga, "prueba", "paso1", "Deshacer", eventos.Compensar, map[string]any{}, nil)
		accion := pt.Comando(saga, "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil)

		e.Publicar(t, "prueba", compensacion)
		c := respuestas.Una(t, plazo)
		if !c.Exito || c.Accion != eventos.Compensar || !strings.Contains(c.Datos, `"deshecho":false`) {
			t.Fatalf("compensation before its action must be answered as done with nothing to undo: %+v", c.Respuesta)
		}
		e.Publicar(t, "prueba", accion)
		a := respuestas.Una(t, plazo)
		if a.Exito || a.Accion != eventos.Ejecutar || !strings.Contains(eventos.Valor(a.Error), "ya fue compensado") {
			t.Fatalf("late action must be refused: %+v", a.Respuesta)
		}
		if efs := pt.Activos(t, p, saga, 0); len(efs) != 0 {
			t.Fatalf("the refused action left rows: %+v", efs)
		}
		// Redeliveries of either answer the same and still do nothing.
		e.Publicar(t, "prueba", accion, compensacion)
		otra := respuestas.Esperar(t, 2, plazo)
		if !reflect.DeepEqual(otra[0], a) || !reflect.DeepEqual(otra[1], c) {
			t.Fatalf("redeliveries answered differently:\n%+v\n%+v", otra, []pt.Recibida{a, c})
		}
		pt.Activos(t, p, saga, 0)
		if n := contador(t, p, "sagas_participante_comandos_total", map[string]string{"resultado": "rechazado"}); n != 1 {
			t.Fatalf("rechazado = %v, want 1", n)
		}
	})
}

func TestFalloDeNegocioNoDejaEfectoYSeRespondeIgualEnLaReentrega(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "prueba", participantes.AlmacenSQLite), participantes.ServicioPrueba())
	respuestas := e.EscucharRespuestas(t)
	cmd := pt.Comando("saga-"+pt.Aleatorio(4), "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{"rechazar": true}, nil)

	e.Publicar(t, "prueba", cmd)
	r := respuestas.Una(t, plazo)
	if r.Exito || eventos.Valor(r.Error) != "rechazado por la entrada" || r.ID != cmd.ClaveIdempotencia+":1:fallo" {
		t.Fatalf("want the business failure: %+v", r.Respuesta)
	}
	// The handler wrote its row before refusing: the savepoint undid it.
	if efs := pt.Activos(t, p, cmd.SagaID, 0); len(efs) != 0 {
		t.Fatalf("a business failure left rows: %+v", efs)
	}
	e.Publicar(t, "prueba", cmd)
	if otra := respuestas.Una(t, plazo); !reflect.DeepEqual(otra, r) {
		t.Fatalf("redelivery answered differently: %+v", otra.Respuesta)
	}
	// The compensation of a failed action has nothing to undo.
	e.Publicar(t, "prueba", pt.Comando(cmd.SagaID, "prueba", "paso1", "Deshacer", eventos.Compensar, map[string]any{}, nil))
	if c := respuestas.Una(t, plazo); !c.Exito || !strings.Contains(c.Datos, "nada que deshacer") {
		t.Fatalf("compensation of a failed action: %+v", c.Respuesta)
	}
}

func TestSimularFalloFallaLaAccionDelPasoODelServicioSinEfecto(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "prueba", participantes.AlmacenSQLite), participantes.ServicioPrueba())
	respuestas := e.EscucharRespuestas(t)
	casos := map[string]bool{"paso1": false, "prueba": false, "otro_paso": true, "": true}
	var cmds []eventos.Comando
	sagas := map[string]string{}
	for valor := range casos {
		c := pt.Comando("saga-"+pt.Aleatorio(4), "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{"simular_fallo": valor}, nil)
		cmds = append(cmds, c)
		sagas[c.SagaID] = valor
	}
	e.Publicar(t, "prueba", cmds...)
	for _, r := range respuestas.Esperar(t, len(cmds), plazo) {
		valor := sagas[r.SagaID]
		if r.Exito != casos[valor] {
			t.Errorf("simular_fallo=%q: exito=%v error=%q", valor, r.Exito, eventos.Valor(r.Error))
		}
		want := 0
		if casos[valor] {
			want = 1
		}
		pt.Activos(t, p, r.SagaID, want)
	}
	if n := contador(t, p, "sagas_participante_fallos_inyectados_total", nil); n != 2 {
		t.Errorf("fallos inyectados = %v, want 2", n)
	}
}

func TestCompensacionQueFallaNoSeRegistraYSuReintentoSeEvaluaDeNuevo(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, almacen string) {
		e := pt.Nuevo(t)
		cfg := e.Config(t, "prueba", almacen)
		p := e.Arrancar(t, cfg, participantes.ServicioPrueba())
		respuestas := e.EscucharRespuestas(t)
		saga := "saga-" + pt.Aleatorio(4)
		entrada := map[string]any{"simular_fallo_compensacion": "paso1"}

		e.Publicar(t, "prueba", pt.Comando(saga, "prueba", "paso1", "Hacer", eventos.Ejecutar, entrada, nil))
		if r := respuestas.Una(t, plazo); !r.Exito {
			t.Fatalf("action: %+v", r.Respuesta)
		}
		for intento := 1; intento <= 2; intento++ {
			c := pt.Comando(saga, "prueba", "paso1", "Deshacer", eventos.Compensar, entrada, nil)
			c.Intento = intento
			e.Publicar(t, "prueba", c)
			r := respuestas.Una(t, plazo)
			if r.Exito || !strings.Contains(eventos.Valor(r.Error), "fallo simulado en la compensación") || r.ID != c.ClaveIdempotencia+":"+strconv.Itoa(intento)+":fallo" {
				t.Fatalf("attempt %d: %+v", intento, r.Respuesta)
			}
			pt.Activos(t, p, saga, 1)
		}
		if n := contarFilas(t, e, cfg, "SELECT COUNT(*) FROM inbox WHERE saga_id = ? AND accion = 'COMPENSAR'", saga); n != 0 {
			t.Fatalf("a failed compensation was recorded (%d rows)", n)
		}
		// Once the input stops forcing the failure, the next attempt undoes.
		c := pt.Comando(saga, "prueba", "paso1", "Deshacer", eventos.Compensar, map[string]any{}, nil)
		c.Intento = 3
		e.Publicar(t, "prueba", c)
		if r := respuestas.Una(t, plazo); !r.Exito || r.Datos != `{"deshechos":1}` {
			t.Fatalf("attempt 3: %+v", r.Respuesta)
		}
		efs := pt.Activos(t, p, saga, 0)
		if len(efs) != 1 || efs[0].Estado != "DESHECHO" {
			t.Fatalf("the row must stay, undone: %+v", efs)
		}
	})
}

func TestMensajesVenenososVanAlDLQYElConsumidorSigue(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "prueba", participantes.AlmacenSQLite), participantes.ServicioPrueba())
	respuestas := e.EscucharRespuestas(t)
	dlq := e.Escuchar(t, eventos.DLQ(e.Topologia.Comandos("prueba")))

	sinSaga := pt.Comando("", "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil)
	desconocido := pt.Comando("saga-x", "prueba", "paso1", "Bailar", eventos.Ejecutar, map[string]any{}, nil)
	bueno := pt.Comando("saga-"+pt.Aleatorio(4), "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil)
	basura := []byte{0x00, 0xff, 0x13, 0x37, 0x42, 0x99, 0x01}
	// All under one key, so the good command comes after the poison ones on
	// the same worker.
	e.PublicarMensajes(t, "prueba",
		&pulsar.ProducerMessage{Payload: basura, Key: bueno.SagaID},
		&pulsar.ProducerMessage{Payload: e.Codificar(t, sinSaga), Key: bueno.SagaID},
		&pulsar.ProducerMessage{Payload: e.Codificar(t, desconocido), Key: bueno.SagaID},
		&pulsar.ProducerMessage{Payload: e.Codificar(t, bueno), Key: bueno.SagaID})

	if r := respuestas.Una(t, plazo); r.SagaID != bueno.SagaID || !r.Exito {
		t.Fatalf("the good command after the poison ones: %+v", r.Respuesta)
	}
	msgs := dlq.Mensajes(t, 3, plazo)
	if !bytes.Equal(msgs[0].Payload(), basura) {
		t.Errorf("dead letter 0 is not the original payload: %x", msgs[0].Payload())
	}
	for i, m := range msgs {
		if m.Properties()["dlq_motivo"] == "" || m.Properties()["dlq_topico_origen"] != e.Topologia.Comandos("prueba") {
			t.Errorf("dead letter %d properties %v", i, m.Properties())
		}
	}
	respuestas.Nada(t, 300*time.Millisecond)
	if n := contador(t, p, "sagas_participante_mensajes_invalidos_total", nil); n != 3 {
		t.Errorf("poison counted %v times, want 3", n)
	}
	if n := contador(t, p, "sagas_dead_letters_total", nil); n != 3 {
		t.Errorf("bus dead letters %v, want 3", n)
	}
}

func TestHTTPSirveEfectosMetricasYSalud(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "prueba", participantes.AlmacenSQLite), participantes.ServicioPrueba())
	respuestas := e.EscucharRespuestas(t)
	saga := "saga-" + pt.Aleatorio(4)
	e.Publicar(t, "prueba", pt.Comando(saga, "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil))
	respuestas.Una(t, plazo)

	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	get := func(ruta string) (int, string) {
		resp, err := http.Get(srv.URL + ruta)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	codigo, cuerpo := get("/efectos/" + saga)
	var ef participantes.RespuestaEfectos
	if err := json.Unmarshal([]byte(cuerpo), &ef); codigo != 200 || err != nil {
		t.Fatalf("/efectos: %d %v %s", codigo, err, cuerpo)
	}
	if ef.SagaID != saga || ef.Servicio != "prueba" || ef.Activos != 1 || len(ef.Efectos) != 1 ||
		ef.Efectos[0].Tabla != "efectos_prueba" || ef.Efectos[0].Estado != "ACTIVO" || string(ef.Efectos[0].Detalle) != `{"hecho":true}` {
		t.Fatalf("/efectos: %s", cuerpo)
	}
	if codigo, cuerpo := get("/efectos/otra"); codigo != 200 || !strings.Contains(cuerpo, `"activos":0,"efectos":[]`) {
		t.Fatalf("/efectos of an unknown saga: %d %s", codigo, cuerpo)
	}
	// The duration is observed once the broker acknowledged the reply and
	// the command is counted as consumed once it is acked: both may come a
	// moment after the test already received the reply.
	metricas := []string{
		`sagas_participante_comandos_total{accion="EJECUTAR",comando="Hacer",resultado="exito",servicio="prueba"} 1`,
		`sagas_participante_duracion_seconds_count{accion="EJECUTAR",servicio="prueba"} 1`,
		`sagas_mensajes_consumidos_total{resultado="ok",`, `go_goroutines`,
	}
	var faltan []string
	for limite := time.Now().Add(plazo); ; time.Sleep(20 * time.Millisecond) {
		codigo, cuerpo = get("/metrics")
		faltan = faltan[:0]
		for _, m := range metricas {
			if codigo != 200 || !strings.Contains(cuerpo, m) {
				faltan = append(faltan, m)
			}
		}
		if len(faltan) == 0 || time.Now().After(limite) {
			break
		}
	}
	for _, m := range faltan {
		t.Errorf("/metrics lacks %s", m)
	}
	if codigo, cuerpo := get("/healthz"); codigo != 200 || cuerpo != "ok\n" {
		t.Errorf("/healthz: %d %q", codigo, cuerpo)
	}
	if codigo, cuerpo := get("/readyz"); codigo != 200 || cuerpo != "listo\n" {
		t.Errorf("/readyz with the consumer running: %d %q", codigo, cuerpo)
	}
}

// buffer is an io.Writer safe for the logger and the test at once.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestCorrerArrancaDesdeElEntornoYSeApagaConElContexto(t *testing.T) {
	e := pt.Nuevo(t)
	e.Preparar(t, "prueba")
	respuestas := e.EscucharRespuestas(t)
	env := map[string]string{
		"SAGAS_PULSAR_URL": e.PulsarURL, "SAGAS_PULSAR_ADMIN_URL": e.AdminURL,
		"SAGAS_PULSAR_TENANT": e.Topologia.Tenant, "SAGAS_PULSAR_NAMESPACE": e.Topologia.Namespace,
		"SAGAS_DATA_DIR": t.TempDir(), "SAGAS_METRICS_ADDR": "127.0.0.1:0", "SAGAS_LATENCIA": "20ms",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var salida buffer
	fin := make(chan error, 1)
	go func() {
		fin <- participantes.Correr(ctx, []string{"prueba"}, func(k string) string { return env[k] }, &salida, participantes.ServicioPrueba())
	}()

	var direccion string
	for limite := time.Now().Add(plazo); direccion == "" && time.Now().Before(limite); time.Sleep(20 * time.Millisecond) {
		for linea := range strings.SplitSeq(salida.String(), "\n") {
			var l struct {
				Msg       string `json:"msg"`
				Direccion string `json:"direccion"`
			}
			if json.Unmarshal([]byte(linea), &l) == nil && l.Msg == "http escuchando" {
				direccion = l.Direccion
			}
		}
	}
	if direccion == "" {
		t.Fatalf("no 'http escuchando' log line:\n%s", salida.String())
	}
	saga := "saga-" + pt.Aleatorio(4)
	e.Publicar(t, "prueba", pt.Comando(saga, "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil))
	if r := respuestas.Una(t, plazo); !r.Exito || r.SagaID != saga {
		t.Fatalf("reply: %+v", r.Respuesta)
	}
	resp, err := http.Get("http://" + direccion + "/efectos/" + saga)
	if err != nil {
		t.Fatal(err)
	}
	var ef participantes.RespuestaEfectos
	err = json.NewDecoder(resp.Body).Decode(&ef)
	resp.Body.Close()
	if err != nil || ef.Activos != 1 {
		t.Fatalf("/efectos on %s: %+v %v", direccion, ef, err)
	}

	cancel()
	select {
	case err := <-fin:
		if err != nil {
			t.Fatalf("Correr: %v\n%s", err, salida.String())
		}
	case <-time.After(plazo):
		t.Fatal("Correr did not return after the context ended")
	}
	for _, want := range []string{`"msg":"participante iniciado"`, `"msg":"comando procesado"`, `"saga_id":"` + saga + `"`, `"paso":"paso1"`, `"servicio":"prueba"`, `"msg":"apagado"`} {
		if !strings.Contains(salida.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, salida.String())
		}
	}
}

func TestCorrerConCheckConfigValidaYTermina(t *testing.T) {
	var salida bytes.Buffer
	err := participantes.Correr(t.Context(), []string{"prueba", "-check-config"}, func(string) string { return "" }, &salida, participantes.ServicioPrueba())
	if err != nil || !strings.Contains(salida.String(), "configuración válida") {
		t.Fatalf("%v: %s", err, salida.String())
	}
	err = participantes.Correr(t.Context(), []string{"prueba", "-check-config"}, func(k string) string {
		return map[string]string{"SAGAS_STORAGE_TYPE": "postgres", "SAGAS_DB_PORT": "0"}[k]
	}, &salida, participantes.ServicioPrueba())
	if err == nil || !strings.Contains(err.Error(), `SAGAS_STORAGE_TYPE="postgres": allowed values are sqlite, mysql`) || !strings.Contains(err.Error(), `SAGAS_DB_PORT="0"`) {
		t.Fatalf("want both problems reported: %v", err)
	}
}

func TestCorrerSinTopologiaPreparadaFallaNombrandoLoQueFalta(t *testing.T) {
	e := pt.Nuevo(t) // namespace only: no topics, schemas or grants
	env := map[string]string{
		"SAGAS_PULSAR_URL": e.PulsarURL, "SAGAS_PULSAR_ADMIN_URL": e.AdminURL,
		"SAGAS_PULSAR_TENANT": e.Topologia.Tenant, "SAGAS_PULSAR_NAMESPACE": e.Topologia.Namespace,
		"SAGAS_DATA_DIR": t.TempDir(), "SAGAS_METRICS_ADDR": "127.0.0.1:0",
	}
	ctx, cancel := context.WithTimeout(t.Context(), plazo)
	defer cancel()
	var salida buffer
	err := participantes.Correr(ctx, []string{"prueba"}, func(k string) string { return env[k] }, &salida, participantes.ServicioPrueba())
	if !errors.Is(err, topologia.ErrNoPreparado) {
		t.Fatalf("Correr = %v, se esperaba topologia.ErrNoPreparado", err)
	}
	t.Logf("error, as the operator reads it:\n%v", err)
	for _, falta := range []string{e.Topologia.Comandos("prueba"), e.Topologia.Respuestas(), "coordinador -preparar"} {
		if !strings.Contains(err.Error(), falta) {
			t.Errorf("el error no nombra %q:\n%v", falta, err)
		}
	}
	if ctx.Err() != nil {
		t.Errorf("Correr esperó hasta el plazo en vez de fallar en seguida")
	}
}
