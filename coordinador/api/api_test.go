package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/google/uuid"
)

func TestPostCampanaResponde202ConLocationSinEsperar(t *testing.T) {
	en := nuevoEntorno(t)
	r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas)
	if r.codigo != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.codigo, r.cuerpo)
	}
	m := r.json(t)
	id, _ := m["id_saga"].(string)
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("id_saga %q is not a UUID", id)
	}
	if loc := r.cabecera.Get("Location"); loc != "/saga/"+id+"/estado" {
		t.Fatalf("Location = %q", loc)
	}
	if m["estado"] != "INICIADA" || m["tipo"] != saga.TipoCampana || m["paso_actual"] != "influencer" {
		t.Fatalf("unexpected state of a new saga: %s", r.cuerpo)
	}
	campania, _ := m["campania_id"].(string)
	if _, err := uuid.Parse(campania); err != nil {
		t.Fatalf("campania_id %q should be a new UUID", campania)
	}

	s, err := en.store.Saga(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var entrada entradaCampana
	if err := json.Unmarshal(s.Datos, &entrada); err != nil {
		t.Fatal(err)
	}
	if s.CampaniaID != campania || entrada.CampaniaID != campania || entrada.Nombre != "Campaña Demo" ||
		entrada.Presupuesto != 50000 || entrada.Marca == nil || entrada.Marca.NombreMarca != "Alpes" || len(entrada.Influencers) != 1 {
		t.Fatalf("saga input not built from the request: %+v (campania %q)", entrada, s.CampaniaID)
	}

	g := en.hacer(http.MethodGet, r.cabecera.Get("Location"), "")
	if g.codigo != http.StatusOK || g.json(t)["estado"] != "INICIADA" {
		t.Fatalf("GET Location: %d %s", g.codigo, g.cuerpo)
	}
}

func TestCampaniaIDDeLaSolicitudSeConserva(t *testing.T) {
	en := nuevoEntorno(t)
	r := en.hacer(http.MethodPost, "/campana-saga", con(t, cuerpoSemillas, `{"campania_id":"camp-42"}`))
	if r.codigo != http.StatusAccepted || r.json(t)["campania_id"] != "camp-42" {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
	s, err := en.store.Saga(context.Background(), r.json(t)["id_saga"].(string))
	if err != nil || s.CampaniaID != "camp-42" {
		t.Fatalf("stored campania_id %q (%v)", s.CampaniaID, err)
	}
}

// The seeds' terminal shapes, ended by a participant that runs while the
// request waits.
func TestEsperarRespondeLaFormaTerminalDeLasSemillas(t *testing.T) {
	casos := []struct {
		falla          string
		estado         string
		ejecutados     []string
		compensaciones []string
	}{
		{"", "COMPLETADA", []string{"influencer", "marca", "tracking"}, []string{}},
		{"influencer", "COMPENSADA", []string{}, []string{"influencer"}},
		{"marca", "COMPENSADA", []string{"influencer"}, []string{"marca", "influencer"}},
		{"tracking", "COMPENSADA", []string{"influencer", "marca"}, []string{"tracking", "marca", "influencer"}},
	}
	for _, c := range casos {
		t.Run("falla="+c.falla, func(t *testing.T) {
			en := nuevoEntorno(t)
			var wg sync.WaitGroup
			defer wg.Wait()
			en.iniciador.despues = func(id string) {
				wg.Go(func() {
					time.Sleep(20 * time.Millisecond) // the request is waiting by now
					if _, err := en.terminar(id, c.falla, ""); err != nil {
						t.Error(err)
					}
				})
			}
			body := cuerpoSemillas
			if c.falla != "" {
				body = con(t, body, fmt.Sprintf(`{"simular_fallo":%q}`, c.falla))
			}
			r := en.hacer(http.MethodPost, "/campana-saga?esperar=10s", body)
			if r.codigo != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", r.codigo, r.cuerpo)
			}
			var got estadoSaga
			if err := json.Unmarshal(r.cuerpo, &got); err != nil {
				t.Fatal(err)
			}
			if string(got.Estado) != c.estado || !slices.Equal(got.PasosEjecutados, c.ejecutados) ||
				!slices.Equal(got.Compensaciones, c.compensaciones) {
				t.Fatalf("got %s", r.cuerpo)
			}
			if got.TiempoTotal == "" || !strings.HasSuffix(got.TiempoTotal, "s") {
				t.Fatalf("tiempo_total %q", got.TiempoTotal)
			}
			if _, err := time.ParseDuration(got.TiempoTotal); err != nil {
				t.Fatalf("tiempo_total %q: %v", got.TiempoTotal, err)
			}
			if c.falla == "" && (got.PasoFallido != "" || got.Error != "") {
				t.Fatalf("a completed saga reports a failure: %s", r.cuerpo)
			}
			if c.falla != "" && (got.PasoFallido != c.falla || got.Error == "") {
				t.Fatalf("paso_fallido/error: %s", r.cuerpo)
			}
			if got.PasoActual != "" {
				t.Fatalf("a terminal saga has paso_actual: %s", r.cuerpo)
			}
			if n := en.avisos.Pendientes(); n != 0 {
				t.Fatalf("%d waiters left registered", n)
			}
		})
	}
}

func TestEsperarUnaSagaQueYaTerminoRespondeEnSeguida(t *testing.T) {
	en := nuevoEntorno(t)
	// The saga ends inside Iniciar, before the handler registers its waiter:
	// only the read after registering can see it.
	en.iniciador.despues = func(id string) { en.terminarYa(id, "", "") }
	inicio := time.Now()
	r := en.hacer(http.MethodPost, "/campana-saga?esperar=30s", cuerpoSemillas)
	if r.codigo != http.StatusOK || r.json(t)["estado"] != "COMPLETADA" {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
	if d := time.Since(inicio); d > 5*time.Second {
		t.Fatalf("took %v for a saga that had ended", d)
	}
}

func TestEsperaAgotadaResponde202ConElEstadoActual(t *testing.T) {
	en := nuevoEntorno(t)
	inicio := time.Now()
	r := en.hacer(http.MethodPost, "/campana-saga?esperar=150ms", cuerpoSemillas)
	d := time.Since(inicio)
	if r.codigo != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.codigo, r.cuerpo)
	}
	if d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("answered after %v, want about 150ms", d)
	}
	m := r.json(t)
	if m["estado"] != "INICIADA" || m["paso_actual"] != "influencer" || m["inicio"] == nil {
		t.Fatalf("current state: %s", r.cuerpo)
	}
	if r.cabecera.Get("Location") == "" {
		t.Fatal("no Location on a 202")
	}
	if n := en.avisos.Pendientes(); n != 0 {
		t.Fatalf("%d waiters left registered after the wait ran out", n)
	}
}

// avisosFalsos wakes every waiter at once without the saga ending, to show
// a spurious wake-up is not taken as the end.
type avisosFalsos struct{ esperas atomic.Int32 }

func (a *avisosFalsos) Esperar(string) (<-chan struct{}, func()) {
	a.esperas.Add(1)
	ch := make(chan struct{})
	close(ch)
	return ch, func() {}
}

func TestUnAvisoSinFinNoSeTomaPorElFin(t *testing.T) {
	falsos := &avisosFalsos{}
	en := nuevoEntorno(t, func(o *Opciones) { o.Esperas = falsos })
	r := en.hacer(http.MethodPost, "/campana-saga?esperar=100ms", cuerpoSemillas)
	if r.codigo != http.StatusAccepted || r.json(t)["estado"] != "INICIADA" {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
	if falsos.esperas.Load() < 2 {
		t.Fatal("the handler did not register again after a wake-up")
	}
}

func TestIdempotencyKeyDevuelveLaMismaSaga(t *testing.T) {
	en := nuevoEntorno(t)
	a := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Idempotency-Key", "clave-1")
	b := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Idempotency-Key", "clave-1")
	if a.codigo != http.StatusAccepted || b.codigo != http.StatusAccepted {
		t.Fatalf("status %d, %d, want 202, 202", a.codigo, b.codigo)
	}
	ida, idb := a.json(t)["id_saga"], b.json(t)["id_saga"]
	if ida == nil || ida != idb {
		t.Fatalf("a retry made another saga: %v / %v", ida, idb)
	}
	if b.cabecera.Get("Location") != a.cabecera.Get("Location") {
		t.Fatal("the retry points elsewhere")
	}
	if n := en.sagas(); n != 1 {
		t.Fatalf("%d sagas after a retried request, want 1", n)
	}
	// The same key on the other flow is another request.
	l := en.hacer(http.MethodPost, "/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento, "Idempotency-Key", "clave-1")
	if l.codigo != http.StatusAccepted || l.json(t)["id_saga"] == ida {
		t.Fatalf("the two flows share idempotency keys: %d %s", l.codigo, l.cuerpo)
	}
	// A retry after the saga ended still returns it, in its current state.
	en.terminarYa(ida.(string), "", "")
	c := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Idempotency-Key", "clave-1")
	if c.codigo != http.StatusAccepted || c.json(t)["id_saga"] != ida || c.json(t)["estado"] != "COMPLETADA" {
		t.Fatalf("retry after the end: %d %s", c.codigo, c.cuerpo)
	}
	if n := en.sagas(); n != 2 {
		t.Fatalf("%d sagas, want 2", n)
	}
	if d := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Idempotency-Key", "clave-2"); d.json(t)["id_saga"] == ida {
		t.Fatal("another key returned the same saga")
	}
}

// reformateado is body with other whitespace and field order (sorted keys,
// indented): the same request.
func reformateado(t *testing.T, body string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return "\n " + string(b) + "\n"
}

func TestIdempotencyKeyConOtroCuerpoEs422YConElMismoDevuelveLaSaga(t *testing.T) {
	flujos := []struct {
		nombre, ruta, cuerpo string
		// mismo spells the same request differently (beyond whitespace).
		mismo, otro string
	}{
		{"campana", "/campana-saga", cuerpoSemillas,
			`{"presupuesto": 5e4, "nombre": " Campaña Demo "}`, `{"presupuesto": 50001}`},
		{"lanzamiento", "/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento,
			`{"fecha_fin": "2025-04-01T04:59:59Z"}`, `{"canales_notificacion": ["email"]}`},
	}
	for _, f := range flujos {
		t.Run(f.nombre, func(t *testing.T) {
			en := nuevoEntorno(t)
			a := en.hacer(http.MethodPost, f.ruta, f.cuerpo, "Idempotency-Key", "k-1")
			if a.codigo != http.StatusAccepted {
				t.Fatalf("first: %d %s", a.codigo, a.cuerpo)
			}
			id := a.json(t)["id_saga"].(string)
			for nombre, cuerpo := range map[string]string{
				"the same body":                    f.cuerpo,
				"other whitespace and field order": reformateado(t, f.cuerpo),
				"the same values spelt otherwise":  reformateado(t, con(t, f.cuerpo, f.mismo)),
			} {
				r := en.hacer(http.MethodPost, f.ruta, cuerpo, "Idempotency-Key", "k-1")
				if r.codigo != http.StatusAccepted || r.json(t)["id_saga"] != id {
					t.Fatalf("%s: %d %s, want 202 with saga %s", nombre, r.codigo, r.cuerpo, id)
				}
			}
			r := en.hacer(http.MethodPost, f.ruta, con(t, f.cuerpo, f.otro), "Idempotency-Key", "k-1")
			quiero := `Idempotency-Key "k-1" ya se usó con otra solicitud (saga ` + id + `)`
			if r.codigo != http.StatusUnprocessableEntity || r.json(t)["error"] != quiero {
				t.Fatalf("another body: %d %s, want 422 %q", r.codigo, r.cuerpo, quiero)
			}
			if ct := r.cabecera.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("422 as %q", ct)
			}
			// Waiting does not change the answer; another key is another saga.
			if r := en.hacer(http.MethodPost, f.ruta+"?esperar=10ms", con(t, f.cuerpo, f.otro), "Idempotency-Key", "k-1"); r.codigo != http.StatusUnprocessableEntity {
				t.Fatalf("another body with esperar: %d %s", r.codigo, r.cuerpo)
			}
			if n := en.sagas(); n != 1 {
				t.Fatalf("%d sagas, want 1", n)
			}
			if r := en.hacer(http.MethodPost, f.ruta, con(t, f.cuerpo, f.otro), "Idempotency-Key", "k-2"); r.codigo != http.StatusAccepted {
				t.Fatalf("another key: %d %s", r.codigo, r.cuerpo)
			}
		})
	}
}

func TestLanzarCampaniaCompletaCorreLosCuatroPasos(t *testing.T) {
	en := nuevoEntorno(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	en.iniciador.despues = func(id string) {
		wg.Go(func() {
			if _, err := en.terminar(id, "", ""); err != nil {
				t.Error(err)
			}
		})
	}
	r := en.hacer(http.MethodPost, "/api/v1/comandos/lanzar-campania-completa?esperar=10s",
		con(t, cuerpoLanzamiento, `{"campania_id":"camp-7"}`))
	if r.codigo != http.StatusOK {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
	var got estadoSaga
	if err := json.Unmarshal(r.cuerpo, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"solicitar_afiliados_elegibles", "configurar_comisiones_campania", "inicializar_tracking_conversiones", "preparar_notificaciones_campania"}
	if got.Estado != saga.Completada || got.Tipo != saga.TipoLanzarCampaniaCompleta || !slices.Equal(got.PasosEjecutados, want) || got.CampaniaID != "camp-7" {
		t.Fatalf("%s", r.cuerpo)
	}
	s, err := en.store.Saga(context.Background(), got.IDSaga)
	if err != nil {
		t.Fatal(err)
	}
	var entrada eventos.EntradaLanzamiento
	if err := json.Unmarshal(s.Datos, &entrada); err != nil {
		t.Fatal(err)
	}
	fin := time.Date(2025, 4, 1, 4, 59, 59, 0, time.UTC)
	if entrada.CampaniaID != "camp-7" || entrada.Comision != (eventos.Comision{Tipo: "porcentaje", Valor: 12.5}) ||
		!entrada.FechaFin.Equal(fin) || entrada.FechaFin.Location() != time.UTC || entrada.CriteriosAfiliados.Maximo != 50 ||
		!slices.Equal(entrada.CanalesNotificacion, []string{"email", "push"}) || entrada.Moneda != "COP" {
		t.Fatalf("saga input not built from the request: %+v", entrada)
	}
}

// Every rejected request names each bad field, and creates nothing.
func TestValidacionNombraCadaCampoMalYNoCreaNada(t *testing.T) {
	en := nuevoEntorno(t)
	lanzar := "/api/v1/comandos/lanzar-campania-completa"
	casos := []struct {
		nombre string
		ruta   string
		cuerpo string
		campos map[string]string // campo -> part of its message
	}{
		{"falta nombre", "/campana-saga", con(t, cuerpoSemillas, `{"nombre":null}`), map[string]string{"nombre": "obligatorio"}},
		{"nombre en blanco", "/campana-saga", con(t, cuerpoSemillas, `{"nombre":"   "}`), map[string]string{"nombre": "obligatorio"}},
		{"presupuesto texto", "/campana-saga", con(t, cuerpoSemillas, `{"presupuesto":"mucho"}`), map[string]string{"presupuesto": "número"}},
		{"presupuesto negativo", "/campana-saga", con(t, cuerpoSemillas, `{"presupuesto":-5}`), map[string]string{"presupuesto": "> 0"}},
		{"presupuesto cero", "/campana-saga", con(t, cuerpoSemillas, `{"presupuesto":0}`), map[string]string{"presupuesto": "> 0"}},
		{"presupuesto absurdo", "/campana-saga", con(t, cuerpoSemillas, `{"presupuesto":2e9}`), map[string]string{"presupuesto": "1e9"}},
		{"presupuesto desbordado", "/campana-saga", strings.Replace(cuerpoSemillas, "50000", "1e999", 1), map[string]string{"presupuesto": "número"}},
		{"sin influencers", "/campana-saga", con(t, cuerpoSemillas, `{"influencers":[]}`), map[string]string{"influencers": "al menos un"}},
		{"influencers no lista", "/campana-saga", con(t, cuerpoSemillas, `{"influencers":{"nombre":"x"}}`), map[string]string{"influencers": "lista"}},
		{"influencer incompleto", "/campana-saga", con(t, cuerpoSemillas, `{"influencers":[{"nombre":"a","plataforma":"b"},{"nombre":7}]}`),
			map[string]string{"influencers[1].nombre": "texto", "influencers[1].plataforma": "obligatorio"}},
		{"marca vacía", "/campana-saga", con(t, cuerpoSemillas, `{"marca":{}}`), map[string]string{"marca.id_marca": "obligatorio", "marca.nombre_marca": "obligatorio"}},
		{"sin marca", "/campana-saga", con(t, cuerpoSemillas, `{"marca":null}`), map[string]string{"marca": "obligatorio"}},
		{"marca no objeto", "/campana-saga", con(t, cuerpoSemillas, `{"marca":"Alpes"}`), map[string]string{"marca": "objeto"}},
		{"paso inventado", "/campana-saga", con(t, cuerpoSemillas, `{"simular_fallo":"pagos"}`), map[string]string{"simular_fallo": "influencer, marca, tracking"}},
		{"fallo de compensación sin fallo", "/campana-saga", con(t, cuerpoSemillas, `{"simular_fallo_compensacion":"marca"}`), map[string]string{"simular_fallo_compensacion": "requiere simular_fallo"}},
		{"compensación de un paso posterior", "/campana-saga", con(t, cuerpoSemillas, `{"simular_fallo":"influencer","simular_fallo_compensacion":"tracking"}`), map[string]string{"simular_fallo_compensacion": "anterior"}},
		{"campos desconocidos", "/campana-saga", con(t, cuerpoSemillas, `{"extra":1,"marca":{"id_marca":"m","nombre_marca":"n","color":"rojo"}}`),
			map[string]string{"extra": "desconocido", "marca.color": "desconocido"}},
		{"mayúsculas no son el campo", "/campana-saga", con(t, cuerpoSemillas, `{"Nombre":"x","nombre":null}`), map[string]string{"Nombre": "desconocido", "nombre": "obligatorio"}},
		{"varios a la vez", "/campana-saga", `{"nombre":"","tipo":"t","presupuesto":"x","influencers":[{"nombre":1}],"extra":true}`,
			map[string]string{"nombre": "", "presupuesto": "", "marca": "", "influencers[0].nombre": "", "influencers[0].plataforma": "", "extra": ""}},
		{"cuerpo no objeto", "/campana-saga", `[1,2]`, map[string]string{"": "objeto"}},
		{"fin antes de inicio", lanzar, con(t, cuerpoLanzamiento, `{"fecha_fin":"2025-02-01T00:00:00Z"}`), map[string]string{"fecha_fin": "posterior"}},
		{"fecha no RFC 3339", lanzar, con(t, cuerpoLanzamiento, `{"fecha_inicio":"ayer"}`), map[string]string{"fecha_inicio": "RFC 3339"}},
		{"comisión desconocida", lanzar, con(t, cuerpoLanzamiento, `{"comision":{"tipo":"regalo","valor":1}}`), map[string]string{"comision.tipo": "porcentaje, fijo"}},
		{"porcentaje > 100", lanzar, con(t, cuerpoLanzamiento, `{"comision":{"tipo":"porcentaje","valor":150}}`), map[string]string{"comision.valor": "100"}},
		{"canal desconocido", lanzar, con(t, cuerpoLanzamiento, `{"canales_notificacion":["email","fax","email"]}`),
			map[string]string{"canales_notificacion[1]": "whatsapp", "canales_notificacion[2]": "repetido"}},
		{"faltan obligatorios", lanzar, `{"nombre":"x"}`, map[string]string{"fecha_inicio": "", "fecha_fin": "", "presupuesto": "", "moneda": "", "comision": "", "canales_notificacion": ""}},
		{"moneda y criterios", lanzar, con(t, cuerpoLanzamiento, `{"moneda":"peso","criterios_afiliados":{"min_seguidores":-1,"maximo":1.5}}`),
			map[string]string{"moneda": "ISO 4217", "criterios_afiliados.min_seguidores": ">= 0", "criterios_afiliados.maximo": "entero"}},
		{"paso inventado del lanzamiento", lanzar, con(t, cuerpoLanzamiento, `{"simular_fallo":"tracking"}`), map[string]string{"simular_fallo": "solicitar_afiliados_elegibles"}},
		{"esperar inválido", "/campana-saga?esperar=pronto", cuerpoSemillas, map[string]string{"esperar": "duración"}},
		{"esperar demasiado largo", "/campana-saga?esperar=5m", cuerpoSemillas, map[string]string{"esperar": "2m0s"}},
		{"esperar y cuerpo a la vez", "/campana-saga?esperar=-1s", con(t, cuerpoSemillas, `{"presupuesto":-1}`), map[string]string{"esperar": "", "presupuesto": ""}},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			r := en.hacer(http.MethodPost, c.ruta, c.cuerpo)
			if r.codigo != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.codigo, r.cuerpo)
			}
			var got CuerpoError
			if err := json.Unmarshal(r.cuerpo, &got); err != nil || got.Error == "" {
				t.Fatalf("not the error format: %s", r.cuerpo)
			}
			nombres := map[string]string{}
			for _, cp := range got.Campos {
				nombres[cp.Campo] = cp.Error
			}
			if len(nombres) != len(c.campos) {
				t.Fatalf("campos %v, want exactly %v", got.Campos, c.campos)
			}
			for campo, parte := range c.campos {
				msg, ok := nombres[campo]
				if !ok || !strings.Contains(msg, parte) {
					t.Fatalf("campo %q: got %q, want a message with %q (all: %v)", campo, msg, parte, got.Campos)
				}
			}
		})
	}
	en.nadaCreado(0)
	if n := en.iniciador.llamadas.Load(); n != 0 {
		t.Fatalf("rejected requests reached the engine %d times", n)
	}
}

func TestIdempotencyKeyInvalidaEs400(t *testing.T) {
	en := nuevoEntorno(t)
	for _, clave := range []string{"con espacios", strings.Repeat("k", 201), "ñ"} {
		r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Idempotency-Key", clave)
		if r.codigo != http.StatusBadRequest || !strings.Contains(string(r.cuerpo), "Idempotency-Key") {
			t.Fatalf("key %q: %d %s", clave, r.codigo, r.cuerpo)
		}
	}
	en.nadaCreado(0)
}

func TestJSONMalFormadoEs400SinCampos(t *testing.T) {
	en := nuevoEntorno(t)
	for _, cuerpo := range []string{`{"nombre": `, `{"nombre":"a",}`, `{} {}`, `no es json`, ` `} {
		r := en.hacer(http.MethodPost, "/campana-saga", cuerpo)
		if r.codigo != http.StatusBadRequest {
			t.Fatalf("%q: status %d, want 400", cuerpo, r.codigo)
		}
		var got CuerpoError
		if err := json.Unmarshal(r.cuerpo, &got); err != nil || got.Error == "" {
			t.Fatalf("%q: not the error format: %s", cuerpo, r.cuerpo)
		}
	}
	en.nadaCreado(0)
}

func TestTipoDeContenidoNoJSONEs415(t *testing.T) {
	en := nuevoEntorno(t)
	for _, tipo := range []string{"text/plain", "application/x-www-form-urlencoded", "", "application/json; charset"} {
		r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Content-Type", tipo)
		if r.codigo != http.StatusUnsupportedMediaType {
			t.Fatalf("Content-Type %q: status %d, want 415", tipo, r.codigo)
		}
		if !strings.Contains(r.json(t)["error"].(string), "JSON") {
			t.Fatalf("%s", r.cuerpo)
		}
	}
	en.nadaCreado(0)
	r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Content-Type", "application/json; charset=utf-8")
	if r.codigo != http.StatusAccepted {
		t.Fatalf("application/json with charset: %d %s", r.codigo, r.cuerpo)
	}
}

// lector counts what the server reads of a body.
type lector struct {
	leidos atomic.Int64
	resto  int64
}

func (l *lector) Read(p []byte) (int, error) {
	if l.resto <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), l.resto)
	for i := range n {
		p[i] = 'a'
	}
	l.resto -= n
	l.leidos.Add(n)
	return int(n), nil
}

func TestCuerpoDe10MBEs413SinLeerlo(t *testing.T) {
	const diezMB = 10 << 20
	en := nuevoEntorno(t)

	// Declared length: refused before reading a byte.
	l := &lector{resto: diezMB}
	req := httptest.NewRequest(http.MethodPost, "/campana-saga", l)
	req.ContentLength = diezMB
	req.Header.Set("Content-Type", "application/json")
	if r := en.enviar(req); r.codigo != http.StatusRequestEntityTooLarge || !strings.Contains(r.json(t)["error"].(string), "límite") {
		t.Fatalf("status %d, want 413: %s", r.codigo, r.cuerpo)
	}
	if n := l.leidos.Load(); n != 0 {
		t.Fatalf("read %d bytes of a body whose declared length is over the limit", n)
	}

	// Unknown length (chunked): reading stops right after the limit.
	l = &lector{resto: diezMB}
	req = httptest.NewRequest(http.MethodPost, "/api/v1/comandos/lanzar-campania-completa", l)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	if r := en.enviar(req); r.codigo != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d, want 413: %s", r.codigo, r.cuerpo)
	}
	if n := l.leidos.Load(); n > LimiteCuerpoPorDefecto+64<<10 {
		t.Fatalf("read %d bytes of a chunked body, the limit is %d", n, LimiteCuerpoPorDefecto)
	}
	en.nadaCreado(0)

	// Over a real connection, as the seeds' check does, the answer is quick.
	srv := httptest.NewServer(en.e)
	defer srv.Close()
	cliente := &http.Client{Timeout: 10 * time.Second}
	inicio := time.Now()
	resp, err := cliente.Post(srv.URL+"/campana-saga", "application/json", strings.NewReader(strings.Repeat("a", diezMB)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("over HTTP: status %d, want 413", resp.StatusCode)
	}
	if d := time.Since(inicio); d > 5*time.Second {
		t.Fatalf("413 took %v", d)
	}
}

func TestLimiteDeCuerpoConfigurable(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.LimiteCuerpo = 100 })
	if r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas); r.codigo != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413 over a 100-byte limit", r.codigo)
	}
	en.nadaCreado(0)
}

func TestTokenProtegeTodoMenosSaludMetricasYDocumento(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Token = "s3creto" })
	protegidas := []struct{ metodo, ruta, cuerpo string }{
		{http.MethodPost, "/campana-saga", cuerpoSemillas},
		{http.MethodPost, "/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento},
		{http.MethodGet, "/saga/x/estado", ""},
		{http.MethodGet, "/api/v1/sagas", ""},
		{http.MethodGet, "/api/v1/sagas/activas", ""},
		{http.MethodGet, "/api/v1/sagas/x", ""},
		{http.MethodPost, "/api/v1/sagas/x/reintentar", ""},
		{http.MethodPost, "/api/v1/sagas/x/cancelar", ""},
		{http.MethodGet, "/api/v1/campanias", ""},
	}
	for _, p := range protegidas {
		for _, aut := range []string{"", "Bearer otro", "Bearer s3creto2", "Basic czNjcmV0bw==", "s3creto", "Bearer "} {
			r := en.hacer(p.metodo, p.ruta, p.cuerpo, "Authorization", aut)
			if r.codigo != http.StatusUnauthorized {
				t.Fatalf("%s %s with %q: status %d, want 401", p.metodo, p.ruta, aut, r.codigo)
			}
			if !strings.HasPrefix(r.cabecera.Get("WWW-Authenticate"), "Bearer") || r.json(t)["error"] == nil {
				t.Fatalf("401 without the challenge or the error format: %v %s", r.cabecera, r.cuerpo)
			}
		}
	}
	en.nadaCreado(0)
	for _, ruta := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		if r := en.hacer(http.MethodGet, ruta, "", "Authorization", ""); r.codigo != http.StatusOK {
			t.Fatalf("%s without a token: %d", ruta, r.codigo)
		}
	}
	for _, aut := range []string{"Bearer s3creto", "bearer s3creto"} {
		if r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Authorization", aut); r.codigo != http.StatusAccepted {
			t.Fatalf("with %q: %d %s", aut, r.codigo, r.cuerpo)
		}
	}
}

// The read-only token reads every GET route and the inspector's views; every
// POST answers it 403 saying the token is read-only, and creates nothing.
// The operator token does everything; anything else is a 401.
func TestTokenDeSoloLecturaLeePeroNoOpera(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Token, o.TokenLectura = "operador", "lector" })
	id := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas, "Authorization", "Bearer operador").json(t)["id_saga"].(string)
	en.terminarYa(id, "marca", "influencer") // COMPENSACION_FALLIDA: retryable
	lecturas := []string{"/saga/" + id + "/estado", "/api/v1/sagas", "/api/v1/sagas/activas", "/api/v1/sagas/" + id, "/api/v1/campanias",
		"/inspector/", "/healthz", "/openapi.json"}
	for _, ruta := range lecturas {
		for _, aut := range []string{"Bearer lector", "Bearer operador", "bearer lector"} {
			if r := en.hacer(http.MethodGet, ruta, "", "Authorization", aut); r.codigo != http.StatusOK {
				t.Errorf("GET %s with %q: %d, want 200: %s", ruta, aut, r.codigo, r.cuerpo)
			}
		}
		if strings.HasPrefix(ruta, "/inspector") || ruta == "/healthz" || ruta == "/openapi.json" {
			continue
		}
		for _, aut := range []string{"", "Bearer otro", "Bearer lector2", "Bearer operadorlector"} {
			if r := en.hacer(http.MethodGet, ruta, "", "Authorization", aut); r.codigo != http.StatusUnauthorized {
				t.Errorf("GET %s with %q: %d, want 401", ruta, aut, r.codigo)
			}
		}
	}
	antes := en.sagas()
	operaciones := []struct{ ruta, cuerpo string }{
		{"/campana-saga", cuerpoSemillas},
		{"/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento},
		{"/api/v1/sagas/" + id + "/reintentar", ""},
		{"/api/v1/sagas/" + id + "/cancelar", ""},
	}
	for _, op := range operaciones {
		r := en.hacer(http.MethodPost, op.ruta, op.cuerpo, "Authorization", "Bearer lector")
		if r.codigo != http.StatusForbidden || !strings.Contains(r.json(t)["error"].(string), "solo lectura") {
			t.Errorf("POST %s with the read-only token: %d, want 403 saying it is read-only: %s", op.ruta, r.codigo, r.cuerpo)
		}
		if r := en.hacer(http.MethodPost, op.ruta, op.cuerpo, "Authorization", "Bearer otro"); r.codigo != http.StatusUnauthorized {
			t.Errorf("POST %s with a wrong token: %d, want 401", op.ruta, r.codigo)
		}
	}
	en.nadaCreado(antes)
	if s, _ := en.store.Saga(context.Background(), id); s.Estado != saga.CompensacionFallida {
		t.Fatalf("a refused retry moved the saga to %s", s.Estado)
	}
	for _, op := range operaciones {
		if r := en.hacer(http.MethodPost, op.ruta, op.cuerpo, "Authorization", "Bearer operador"); r.codigo != http.StatusAccepted {
			t.Errorf("POST %s with the operator token: %d, want 202: %s", op.ruta, r.codigo, r.cuerpo)
		}
	}
}

// A read-only token without the operator token would leave the POSTs
// open while looking protected; one equal to it would grant everything.
func TestTokenDeSoloLecturaExigeOtroTokenDeOperador(t *testing.T) {
	base := func() Opciones {
		en := nuevoEntorno(t)
		return Opciones{Iniciador: en.iniciador, Consultas: en.store, Esperas: en.avisos, Outbox: en.store}
	}
	for _, c := range []struct{ token, lectura, dice string }{
		{"", "lector", "sin Token (SAGAS_API_TOKEN)"},
		{"mismo", "mismo", "debe ser otro"},
	} {
		o := base()
		o.Token, o.TokenLectura = c.token, c.lectura
		if _, err := Nuevo(o); err == nil || !strings.Contains(err.Error(), c.dice) || !strings.Contains(err.Error(), "SAGAS_API_READ_TOKEN") {
			t.Errorf("Token %q, TokenLectura %q: %v, want an error saying %q", c.token, c.lectura, err, c.dice)
		}
	}
}

func TestSagaDesconocidaOMalFormadaEs404(t *testing.T) {
	en := nuevoEntorno(t)
	for _, ruta := range []string{
		"/saga/00000000-0000-0000-0000-000000000000/estado",
		"/saga/" + strings.Repeat("a", 300) + "/estado",
		"/saga/%E2%98%83/estado",
		"/api/v1/sagas/00000000-0000-0000-0000-000000000000",
		"/api/v1/sagas/no%20vale",
	} {
		r := en.hacer(http.MethodGet, ruta, "")
		if r.codigo != http.StatusNotFound || r.json(t)["error"] != "saga no encontrada" {
			t.Fatalf("%s: %d %s", ruta, r.codigo, r.cuerpo)
		}
	}
	if r := en.hacer(http.MethodGet, "/no/existe", ""); r.codigo != http.StatusNotFound || r.json(t)["error"] != "ruta no encontrada" {
		t.Fatalf("unknown route: %d %s", r.codigo, r.cuerpo)
	}
	r := en.hacer(http.MethodDelete, "/campana-saga", "")
	if r.codigo != http.StatusMethodNotAllowed || r.json(t)["error"] == nil || !strings.Contains(r.cabecera.Get("Allow"), "POST") {
		t.Fatalf("wrong method: %d %v %s", r.codigo, r.cabecera, r.cuerpo)
	}
}

func TestReintentarCompensacionFallidaAuditadoY409SiNoLoEsta(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Token = "tok" })
	r := en.hacer(http.MethodPost, "/campana-saga", con(t, cuerpoSemillas, `{"simular_fallo":"tracking","simular_fallo_compensacion":"marca"}`))
	id := r.json(t)["id_saga"].(string)
	s := en.terminarYa(id, "tracking", "marca")
	if s.Estado != saga.CompensacionFallida {
		t.Fatalf("set-up: saga ended %s", s.Estado)
	}
	g := en.hacer(http.MethodGet, "/saga/"+id+"/estado", "")
	var e estadoSaga
	if err := json.Unmarshal(g.cuerpo, &e); err != nil {
		t.Fatal(err)
	}
	if e.Estado != saga.CompensacionFallida || e.PasoFallido != "tracking" || !slices.Equal(e.Compensaciones, []string{"tracking"}) ||
		e.Error == "" || e.TiempoTotal == "" {
		t.Fatalf("COMPENSACION_FALLIDA shape: %s", g.cuerpo)
	}

	r = en.hacer(http.MethodPost, "/api/v1/sagas/"+id+"/reintentar", "")
	if r.codigo != http.StatusAccepted || r.json(t)["estado"] != "COMPENSANDO" || r.json(t)["paso_actual"] != "marca" {
		t.Fatalf("retry: %d %s", r.codigo, r.cuerpo)
	}
	logs := en.logs.String()
	if !strings.Contains(logs, `"msg":"reintento manual de la compensación"`) || !strings.Contains(logs, `"saga_id":"`+id+`"`) ||
		!strings.Contains(logs, `"quien":"token:`) || !strings.Contains(logs, `"cuando":"2`) || strings.Contains(logs, "tok\"") {
		t.Fatalf("retry not audited (or the token leaked): %s", logs)
	}
	if r := en.hacer(http.MethodPost, "/api/v1/sagas/"+id+"/reintentar", ""); r.codigo != http.StatusConflict {
		t.Fatalf("retry of a COMPENSANDO saga: %d, want 409", r.codigo)
	}
	if s := en.terminarYa(id, "", ""); s.Estado != saga.Compensada || !slices.Equal(s.Compensaciones, []string{"tracking", "marca", "influencer"}) {
		t.Fatalf("after the retry the saga ended %s %v", s.Estado, s.Compensaciones)
	}
	if r := en.hacer(http.MethodPost, "/api/v1/sagas/"+id+"/reintentar", ""); r.codigo != http.StatusConflict || !strings.Contains(string(r.cuerpo), "COMPENSACION_FALLIDA") {
		t.Fatalf("retry of a COMPENSADA saga: %d %s", r.codigo, r.cuerpo)
	}
	if r := en.hacer(http.MethodPost, "/api/v1/sagas/"+uuid.NewString()+"/reintentar", ""); r.codigo != http.StatusNotFound {
		t.Fatalf("retry of an unknown saga: %d", r.codigo)
	}
	if !strings.Contains(en.logs.String(), `"msg":"reintento manual rechazado"`) {
		t.Fatal("refused retries are not audited")
	}
}

func TestCancelarAuditadoIdempotenteY409ConElEstadoSiYaTermino(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Token = "tok" })
	id := en.hacer(http.MethodPost, "/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento).json(t)["id_saga"].(string)
	// The first step answers: the parallel group is in flight when the cancel arrives.
	if err := en.motor.AplicarRespuesta(context.Background(), eventos.Respuesta{ID: uuid.NewString(), SagaID: id,
		Paso: "solicitar_afiliados_elegibles", Accion: eventos.Ejecutar, Intento: 1, Exito: true, Datos: `{}`}); err != nil {
		t.Fatal(err)
	}
	var primera estadoSaga
	for i := range 2 { // the second cancel is the same success
		r := en.hacer(http.MethodPost, "/api/v1/sagas/"+id+"/cancelar", "")
		var e estadoSaga
		if err := json.Unmarshal(r.cuerpo, &e); err != nil || r.codigo != http.StatusAccepted || e.Estado != saga.Compensando ||
			e.Cancelacion.IsZero() || e.Error != saga.MotivoCancelacion || r.cabecera.Get("Location") != "/saga/"+id+"/estado" {
			t.Fatalf("cancel %d: %d %s", i+1, r.codigo, r.cuerpo)
		}
		if i == 1 && !e.Cancelacion.Equal(primera.Cancelacion) {
			t.Fatalf("the second cancel moved the cancel's time: %v then %v", primera.Cancelacion, e.Cancelacion)
		}
		primera = e
	}
	logs := en.logs.String()
	if strings.Count(logs, `"msg":"cancelación de la saga"`) != 2 || !strings.Contains(logs, `"saga_id":"`+id+`"`) ||
		!strings.Contains(logs, `"quien":"token:`) || !strings.Contains(logs, `"cuando":"2`) || strings.Contains(logs, "tok\"") {
		t.Fatalf("cancel not audited (or the token leaked): %s", logs)
	}
	s := en.terminarYa(id, "", "")
	if s.Estado != saga.Cancelada || len(s.Compensaciones) != 4 || s.Compensaciones[3] != "solicitar_afiliados_elegibles" {
		t.Fatalf("the cancelled saga ended %s %v", s.Estado, s.Compensaciones)
	}
	// CANCELADA shows in the detail, the listings and their counts.
	d := en.hacer(http.MethodGet, "/api/v1/sagas/"+id, "").json(t)
	if d["estado"] != "CANCELADA" || d["cancelacion"] == nil || d["tiempo_total"] == nil {
		t.Fatalf("detail of a cancelled saga: %v", d)
	}
	l := en.hacer(http.MethodGet, "/api/v1/sagas?estado=CANCELADA", "").json(t)
	if l["total"] != 1.0 || l["conteos"].(map[string]any)["CANCELADA"] != 1.0 {
		t.Fatalf("listing by CANCELADA: %v", l)
	}
	if r := en.hacer(http.MethodPost, "/api/v1/sagas/"+id+"/cancelar", ""); r.codigo != http.StatusAccepted || r.json(t)["estado"] != "CANCELADA" {
		t.Fatalf("cancel of a CANCELADA saga: %d %s, want the same success", r.codigo, r.cuerpo)
	}

	otra := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas).json(t)["id_saga"].(string)
	en.terminarYa(otra, "", "")
	r := en.hacer(http.MethodPost, "/api/v1/sagas/"+otra+"/cancelar", "")
	if r.codigo != http.StatusConflict || r.json(t)["estado"] != "COMPLETADA" || !strings.Contains(r.json(t)["error"].(string), "COMPLETADA") {
		t.Fatalf("cancel of a COMPLETADA saga: %d %s, want 409 with its state", r.codigo, r.cuerpo)
	}
	if s, _ := en.store.Saga(context.Background(), otra); s.Estado != saga.Completada || !s.Cancelacion.IsZero() {
		t.Fatalf("a refused cancel changed the saga: %s %v", s.Estado, s.Cancelacion)
	}
	if r := en.hacer(http.MethodPost, "/api/v1/sagas/"+uuid.NewString()+"/cancelar", ""); r.codigo != http.StatusNotFound {
		t.Fatalf("cancel of an unknown saga: %d", r.codigo)
	}
	if !strings.Contains(en.logs.String(), `"msg":"cancelación rechazada"`) {
		t.Fatal("refused cancels are not audited")
	}
}

func TestDetalleConLineaDeTiempoDePasos(t *testing.T) {
	en := nuevoEntorno(t)
	r := en.hacer(http.MethodPost, "/campana-saga", con(t, cuerpoSemillas, `{"simular_fallo":"marca"}`))
	id := r.json(t)["id_saga"].(string)
	en.terminarYa(id, "marca", "")
	g := en.hacer(http.MethodGet, "/api/v1/sagas/"+id, "")
	if g.codigo != http.StatusOK {
		t.Fatalf("%d %s", g.codigo, g.cuerpo)
	}
	var d detalleSaga
	if err := json.Unmarshal(g.cuerpo, &d); err != nil {
		t.Fatal(err)
	}
	if d.IDSaga != id || d.Estado != saga.Compensada || d.PasoFallido != "marca" || d.DuracionSegundos == nil || *d.DuracionSegundos <= 0 ||
		len(d.Pasos) != 3 || !strings.Contains(string(d.Entrada), `"simular_fallo":"marca"`) {
		t.Fatalf("detail: %s", g.cuerpo)
	}
	inf, marca, tracking := d.Pasos[0], d.Pasos[1], d.Pasos[2]
	if inf.Paso != "influencer" || inf.Servicio != "influencer" || inf.Estado != saga.PasoCompensado || inf.Intento != 1 ||
		inf.Descripcion == "" || inf.Inicio.IsZero() || inf.Fin.IsZero() || inf.DuracionSegundos == nil ||
		len(inf.Entrada) == 0 || !strings.Contains(string(inf.Salida), "simulado") || inf.Error != "" {
		t.Fatalf("influencer step: %+v", inf)
	}
	if inf.Compensacion == nil || inf.Compensacion.Intento != 1 || inf.Compensacion.Inicio.IsZero() || inf.Compensacion.Fin.IsZero() ||
		inf.Compensacion.DuracionSegundos == nil {
		t.Fatalf("influencer compensation: %+v", inf.Compensacion)
	}
	if marca.Estado != saga.PasoCompensado || !strings.Contains(marca.Error, "fallo simulado") || marca.Compensacion == nil {
		t.Fatalf("failed step: %+v", marca)
	}
	if tracking.Estado != saga.PasoPendiente || tracking.Compensacion != nil || !tracking.Inicio.IsZero() || tracking.DuracionSegundos != nil {
		t.Fatalf("step never started: %+v", tracking)
	}
}

// tres sagas de campana (una completada, una compensada, una en curso) y un
// lanzamiento en curso, cada una un segundo (de reloj) después de la otra.
func sembrar(t *testing.T, en *entorno) (completada, compensada, enCurso, lanzamiento string) {
	t.Helper()
	post := func(ruta, cuerpo string) string {
		r := en.hacer(http.MethodPost, ruta, cuerpo)
		if r.codigo != http.StatusAccepted {
			t.Fatalf("%d %s", r.codigo, r.cuerpo)
		}
		en.reloj.avanzar(time.Second)
		return r.json(t)["id_saga"].(string)
	}
	completada = post("/campana-saga", con(t, cuerpoSemillas, `{"campania_id":"camp-1","nombre":"Primera"}`))
	compensada = post("/campana-saga", con(t, cuerpoSemillas, `{"campania_id":"camp-1","nombre":"Primera bis","simular_fallo":"marca"}`))
	enCurso = post("/campana-saga", con(t, cuerpoSemillas, `{"campania_id":"camp-2","nombre":"Segunda"}`))
	lanzamiento = post("/api/v1/comandos/lanzar-campania-completa", con(t, cuerpoLanzamiento, `{"campania_id":"camp-3"}`))
	en.terminarYa(completada, "", "")
	en.terminarYa(compensada, "marca", "")
	return
}

func listar(t *testing.T, en *entorno, ruta string) listaSagas {
	t.Helper()
	r := en.hacer(http.MethodGet, ruta, "")
	if r.codigo != http.StatusOK {
		t.Fatalf("%s: %d %s", ruta, r.codigo, r.cuerpo)
	}
	var l listaSagas
	if err := json.Unmarshal(r.cuerpo, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func ids(l listaSagas) []string {
	var out []string
	for _, s := range l.Sagas {
		out = append(out, s.IDSaga)
	}
	return out
}

func TestListadoConFiltrosYConteosPorEstado(t *testing.T) {
	en := nuevoEntorno(t)
	completada, compensada, enCurso, lanzamiento := sembrar(t, en)

	todas := listar(t, en, "/api/v1/sagas")
	if !slices.Equal(ids(todas), []string{lanzamiento, enCurso, compensada, completada}) || todas.Total != 4 {
		t.Fatalf("all, newest first: %v total %d", ids(todas), todas.Total)
	}
	wantConteos := map[saga.Estado]int{saga.Iniciada: 2, saga.EnProgreso: 0, saga.Completada: 1, saga.Compensando: 0, saga.Compensada: 1, saga.CompensacionFallida: 0, saga.Cancelada: 0}
	if !reflect.DeepEqual(todas.Conteos, wantConteos) {
		t.Fatalf("conteos %v, want %v", todas.Conteos, wantConteos)
	}
	if s := todas.Sagas[3]; s.Nombre != "Primera" || s.CampaniaID != "camp-1" || s.TiempoTotal == "" || s.Fin.IsZero() {
		t.Fatalf("summary: %+v", s)
	}
	if s := todas.Sagas[2]; s.PasoFallido != "marca" || s.Error == "" {
		t.Fatalf("summary of a compensated saga: %+v", s)
	}

	l := listar(t, en, "/api/v1/sagas?estado=COMPLETADA,COMPENSADA")
	if !slices.Equal(ids(l), []string{compensada, completada}) || l.Total != 2 || !reflect.DeepEqual(l.Conteos, wantConteos) {
		t.Fatalf("by estado: %v total %d conteos %v", ids(l), l.Total, l.Conteos)
	}
	if l := listar(t, en, "/api/v1/sagas?estado=INICIADA&tipo=lanzar-campania-completa"); !slices.Equal(ids(l), []string{lanzamiento}) || l.Total != 1 {
		t.Fatalf("by estado and tipo: %v %d", ids(l), l.Total)
	}
	if l := listar(t, en, "/api/v1/sagas?campania_id=camp-1"); !slices.Equal(ids(l), []string{compensada, completada}) {
		t.Fatalf("by campaign: %v", ids(l))
	}
	if l := listar(t, en, "/api/v1/sagas?q="+enCurso[:8]); !slices.Contains(ids(l), enCurso) {
		t.Fatalf("by id prefix: %v", ids(l))
	}
	if l := listar(t, en, "/api/v1/sagas?limite=1"); !slices.Equal(ids(l), []string{lanzamiento}) || l.Total != 4 {
		t.Fatalf("limited: %v total %d", ids(l), l.Total)
	}
	if l := listar(t, en, "/api/v1/sagas?desde=2025-03-01T10:00:01Z&hasta=2025-03-01T10:00:03Z"); !slices.Equal(ids(l), []string{enCurso, compensada}) {
		t.Fatalf("by time: %v", ids(l))
	}

	r := en.hacer(http.MethodGet, "/api/v1/sagas?estado=HECHA&tipo=otro&limite=0&desde=ayer&q=a%20b", "")
	if r.codigo != http.StatusBadRequest {
		t.Fatalf("bad filters: %d", r.codigo)
	}
	var e CuerpoError
	if err := json.Unmarshal(r.cuerpo, &e); err != nil {
		t.Fatal(err)
	}
	var campos []string
	for _, c := range e.Campos {
		campos = append(campos, c.Campo)
	}
	slices.Sort(campos)
	if !slices.Equal(campos, []string{"desde", "estado", "limite", "q", "tipo"}) {
		t.Fatalf("bad filters named %v", campos)
	}
	if r := en.hacer(http.MethodGet, "/api/v1/sagas?desde=2025-03-02T00:00:00Z&hasta=2025-03-01T00:00:00Z", ""); r.codigo != http.StatusBadRequest ||
		!strings.Contains(string(r.cuerpo), "hasta") {
		t.Fatalf("hasta before desde: %d %s", r.codigo, r.cuerpo)
	}
}

func TestActivasSoloListaSagasEnCurso(t *testing.T) {
	en := nuevoEntorno(t)
	_, _, enCurso, lanzamiento := sembrar(t, en)
	l := listar(t, en, "/api/v1/sagas/activas")
	if !slices.Equal(ids(l), []string{lanzamiento, enCurso}) || l.Total != 2 {
		t.Fatalf("activas: %v total %d", ids(l), l.Total)
	}
	if l := listar(t, en, "/api/v1/sagas/activas?tipo=campana"); !slices.Equal(ids(l), []string{enCurso}) {
		t.Fatalf("activas by tipo: %v", ids(l))
	}
	if r := en.hacer(http.MethodGet, "/api/v1/sagas/activas?estado=COMPLETADA", ""); r.codigo != http.StatusBadRequest {
		t.Fatalf("estado on /activas: %d", r.codigo)
	}
	en2 := nuevoEntorno(t)
	if l := listar(t, en2, "/api/v1/sagas/activas"); l.Sagas == nil || len(l.Sagas) != 0 || l.Total != 0 {
		t.Fatalf("empty store: %+v (sagas must be [], not null)", l)
	}
}

func TestCampaniasDerivadasDeLasSagas(t *testing.T) {
	en := nuevoEntorno(t)
	_, compensada, enCurso, lanzamiento := sembrar(t, en)
	r := en.hacer(http.MethodGet, "/api/v1/campanias", "")
	if r.codigo != http.StatusOK {
		t.Fatalf("%d %s", r.codigo, r.cuerpo)
	}
	var l listaCampanias
	if err := json.Unmarshal(r.cuerpo, &l); err != nil {
		t.Fatal(err)
	}
	if l.Total != 3 || len(l.Campanias) != 3 {
		t.Fatalf("%s", r.cuerpo)
	}
	want := []struct {
		id, nombre, ultima string
		sagas              int
		estado             saga.Estado
	}{
		{"camp-3", "Lanzamiento primavera", lanzamiento, 1, saga.Iniciada},
		{"camp-2", "Segunda", enCurso, 1, saga.Iniciada},
		{"camp-1", "Primera bis", compensada, 2, saga.Compensada},
	}
	for i, w := range want {
		c := l.Campanias[i]
		if c.CampaniaID != w.id || c.Nombre != w.nombre || c.Sagas != w.sagas || c.UltimaSaga.IDSaga != w.ultima || c.UltimaSaga.Estado != w.estado {
			t.Fatalf("campaign %d: %+v, want %+v", i, c, w)
		}
	}
	// limite bounds the list, newest first; total still counts them all.
	r = en.hacer(http.MethodGet, "/api/v1/campanias?limite=2", "")
	if err := json.Unmarshal(r.cuerpo, &l); err != nil || r.codigo != http.StatusOK || l.Total != 3 || len(l.Campanias) != 2 || l.Campanias[0].CampaniaID != "camp-3" {
		t.Fatalf("limite=2: %d %s", r.codigo, r.cuerpo)
	}
	for _, malo := range []string{"0", "1001", "x"} {
		if r := en.hacer(http.MethodGet, "/api/v1/campanias?limite="+malo, ""); r.codigo != http.StatusBadRequest || !strings.Contains(string(r.cuerpo), "limite") {
			t.Fatalf("limite=%s: %d %s", malo, r.codigo, r.cuerpo)
		}
	}
}

func TestReadyzNombraLaComprobacionQueFalla(t *testing.T) {
	var dbMal, brokerLento atomic.Bool
	en := nuevoEntorno(t, func(o *Opciones) {
		db := o.BaseDatos
		o.BaseDatos = func(ctx context.Context) error {
			if dbMal.Load() {
				return errors.New("dial tcp: connection refused")
			}
			return db(ctx)
		}
		o.Broker = func(ctx context.Context) error {
			if brokerLento.Load() {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		o.PlazoSalud = 100 * time.Millisecond
	})
	leer := func() (int, salud) {
		r := en.hacer(http.MethodGet, "/readyz", "")
		var s salud
		if err := json.Unmarshal(r.cuerpo, &s); err != nil {
			t.Fatal(err)
		}
		return r.codigo, s
	}
	if c, s := leer(); c != http.StatusOK || s.Estado != "ok" || s.Comprobaciones["base_de_datos"] != "ok" || s.Comprobaciones["broker"] != "ok" {
		t.Fatalf("healthy: %d %+v", c, s)
	}
	dbMal.Store(true)
	if c, s := leer(); c != http.StatusServiceUnavailable || s.Estado != "no_listo" || s.Comprobaciones["base_de_datos"] != "falla" || s.Comprobaciones["broker"] != "ok" {
		t.Fatalf("database down: %d %+v", c, s)
	}
	if strings.Contains(en.logs.String(), "connection refused") == false {
		t.Fatal("the failure's cause is not logged")
	}
	dbMal.Store(false)
	brokerLento.Store(true)
	inicio := time.Now()
	if c, s := leer(); c != http.StatusServiceUnavailable || s.Comprobaciones["broker"] != "falla" || s.Comprobaciones["base_de_datos"] != "ok" {
		t.Fatalf("broker silent: %d %+v", c, s)
	}
	if d := time.Since(inicio); d > 2*time.Second {
		t.Fatalf("readiness waited %v for a silent broker", d)
	}
	if r := en.hacer(http.MethodGet, "/healthz", ""); r.codigo != http.StatusOK {
		t.Fatalf("healthz while not ready: %d", r.codigo)
	}
}

func TestMetricasHTTPUsanLaPlantillaDeRuta(t *testing.T) {
	en := nuevoEntorno(t)
	en.hacer(http.MethodGet, "/saga/"+uuid.NewString()+"/estado", "")
	en.hacer(http.MethodGet, "/saga/"+uuid.NewString()+"/estado", "")
	en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas)
	en.hacer(http.MethodGet, "/no/existe/"+uuid.NewString(), "")
	en.hacer("PROPFIND", "/campana-saga", "")

	familias, err := en.registro.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	duraciones := 0
	for _, f := range familias {
		if f.GetName() == "sagas_http_duracion_seconds" {
			duraciones = len(f.GetMetric())
		}
		if f.GetName() != "sagas_http_peticiones_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			series[l["route"]+" "+l["method"]+" "+l["code"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"/saga/:id_saga/estado GET 404": 2,
		"/campana-saga POST 202":        1,
		"sin_ruta GET 404":              1,
		"/campana-saga OTRO 405":        1,
	}
	if !reflect.DeepEqual(series, want) {
		t.Fatalf("series %v, want %v", series, want)
	}
	if duraciones != 4 {
		t.Fatalf("%d duration series, want 4 (route × method)", duraciones)
	}
	r := en.hacer(http.MethodGet, "/metrics", "")
	if r.codigo != http.StatusOK || !strings.Contains(string(r.cuerpo), `sagas_http_peticiones_total{code="202",method="POST",route="/campana-saga"} 1`) {
		t.Fatalf("/metrics: %d %s", r.codigo, r.cuerpo)
	}
}

type iniciadorQueEntraEnPanico struct{ *motor.Motor }

func (iniciadorQueEntraEnPanico) Iniciar(context.Context, motor.Solicitud) (string, bool, error) {
	panic("roto")
}

type iniciadorCaido struct{ *motor.Motor }

func (iniciadorCaido) Iniciar(context.Context, motor.Solicitud) (string, bool, error) {
	return "", false, errors.New("database is locked: secreto interno")
}

func TestErroresInternosSon500SinDetalles(t *testing.T) {
	for _, ini := range []Iniciador{iniciadorQueEntraEnPanico{}, iniciadorCaido{}} {
		en := nuevoEntorno(t, func(o *Opciones) { o.Iniciador = ini })
		r := en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas)
		if r.codigo != http.StatusInternalServerError || r.json(t)["error"] != "error interno" {
			t.Fatalf("%T: %d %s", ini, r.codigo, r.cuerpo)
		}
		if !strings.Contains(en.logs.String(), `"codigo":500`) {
			t.Fatalf("%T: the 500 is not logged", ini)
		}
	}
}

func TestNuevoExigeSusDependencias(t *testing.T) {
	_, err := Nuevo(Opciones{})
	if err == nil {
		t.Fatal("Nuevo accepted empty options")
	}
	for _, falta := range []string{"Iniciador", "Consultas", "Esperas", "Outbox"} {
		if !strings.Contains(err.Error(), falta) {
			t.Fatalf("the error does not name %s: %v", falta, err)
		}
	}
	en := nuevoEntorno(t)
	_, err = Nuevo(Opciones{Iniciador: en.iniciador, Consultas: en.store, Esperas: en.avisos, Outbox: en.store, Registro: en.registro})
	if err == nil || !strings.Contains(err.Error(), "métricas") {
		t.Fatalf("registering the metrics twice on one registry: %v", err)
	}
}

func TestServidorHTTPEsperaMasQueLaEsperaMaxima(t *testing.T) {
	s := ServidorHTTP("", http.NotFoundHandler())
	if s.Addr != ":8003" || s.WriteTimeout <= EsperaMaxima || s.ReadHeaderTimeout == 0 {
		t.Fatalf("%+v", s)
	}
}

// Compile-time checks that the engine, the store and Avisos fit the API.
var (
	_ Iniciador = (*motor.Motor)(nil)
	_ Consultas = (almacen.Store)(nil)
	_ Esperas   = (*motor.Avisos)(nil)
)
