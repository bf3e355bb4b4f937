package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/sistema"
)

const cuerpoCampana = `{"nombre":"Campaña Demo","tipo":"influencer_marketing","presupuesto":50000,` +
	`"marca":{"id_marca":"6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60","nombre_marca":"Alpes"},` +
	`"influencers":[{"nombre":"Tech","plataforma":"Instagram"},{"nombre":"Moda","plataforma":"TikTok"}]%s}`

func cuerpoLanzamiento(extra string) string {
	return fmt.Sprintf(`{"campania_id":"c-%d","nombre":"Lanzamiento","fecha_inicio":"2027-01-01T00:00:00Z","fecha_fin":"2027-02-01T00:00:00Z",`+
		`"presupuesto":20000,"moneda":"COP","comision":{"tipo":"porcentaje","valor":12},`+
		`"criterios_afiliados":{"segmento_audiencia":"jovenes","maximo":3},"canales_notificacion":["email","push"]%s}`, time.Now().UnixNano(), extra)
}

type respuesta struct {
	ID              string   `json:"id_saga"`
	Estado          string   `json:"estado"`
	PasosEjecutados []string `json:"pasos_ejecutados"`
	TiempoTotal     string   `json:"tiempo_total"`
	PasoFallido     string   `json:"paso_fallido"`
	Compensaciones  []string `json:"compensaciones"`
	Error           string   `json:"error"`
}

func decodificar(t *testing.T, b []byte) respuesta {
	t.Helper()
	var r respuesta
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, b)
	}
	return r
}

// efectosActivos sums the active effects of a saga over every participant,
// read through each participant's /efectos endpoint (its own store).
func efectosActivos(t *testing.T, s *sistema.Sistema, sagaID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range sistema.Participantes {
		code, b, err := s.Get(context.Background(), s.Metricas[p]+"/efectos/"+sagaID)
		if err != nil || code != 200 {
			t.Fatalf("efectos of %s in %s: %d %v %s", sagaID, p, code, err, b)
		}
		var r struct {
			Activos int `json:"activos"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Activos > 0 {
			out[p] = r.Activos
		}
	}
	return out
}

func enAmbosAlmacenes(t *testing.T, f func(t *testing.T, s *sistema.Sistema)) {
	for _, a := range []string{"sqlite", "mysql"} {
		t.Run(a, func(t *testing.T) { f(t, sistema.Arrancar(t, sistema.Opciones{Almacen: a})) })
	}
}

// TestAmbosFlujosEnElBrokerSeguro runs both flows, completing and
// compensating, on the secured broker as production runs them: TLS, token
// authentication and authorization, topics never created on use; one
// provisioning run as role admin, then every process with its own role.
func TestAmbosFlujosEnElBrokerSeguro(t *testing.T) {
	s := sistema.Arrancar(t, sistema.Opciones{Seguro: true})
	ambosFlujos(t, s)
}

func TestAmbosFlujosCompletanYCompensanSinDejarEfectos(t *testing.T) {
	enAmbosAlmacenes(t, ambosFlujos)
}

// ambosFlujos runs each flow once to completion and once failing at each
// step, checking the compensations and the participants' effects.
func ambosFlujos(t *testing.T, s *sistema.Sistema) {
	ctx := context.Background()
	flujos := []struct {
		ruta   string
		cuerpo func(extra string) string
		pasos  []string
		// which participants hold an effect of each step
		servicios []string
		// grupo is the first step of the flow's parallel group, which runs
		// from there to the last step (-1: sequential flow)
		grupo int
	}{
		{"/campana-saga", func(e string) string { return fmt.Sprintf(cuerpoCampana, e) },
			[]string{"influencer", "marca", "tracking"}, []string{"influencer", "marca", "tracking"}, -1},
		// Version 2: commissions, tracking and notifications in parallel.
		{"/api/v1/comandos/lanzar-campania-completa", cuerpoLanzamiento,
			[]string{"solicitar_afiliados_elegibles", "configurar_comisiones_campania", "inicializar_tracking_conversiones", "preparar_notificaciones_campania"},
			[]string{"afiliados", "comisiones", "tracking", "notificaciones"}, 1},
	}
	for _, f := range flujos {
		inicio := time.Now()
		code, b, err := s.Post(ctx, f.ruta+"?esperar=60s", f.cuerpo(""))
		t.Logf("%s: %v", f.ruta, time.Since(inicio))
		if err != nil || code != 200 {
			t.Fatalf("%s: %d %v %s", f.ruta, code, err, b)
		}
		r := decodificar(t, b)
		if r.Estado != "COMPLETADA" || !slices.Equal(r.PasosEjecutados, f.pasos) || r.TiempoTotal == "" {
			t.Fatalf("%s happy path: %s", f.ruta, b)
		}
		activos := efectosActivos(t, s, r.ID)
		for _, svc := range f.servicios {
			if activos[svc] == 0 {
				t.Fatalf("%s: completed saga %s has no effect in %s (%v)", f.ruta, r.ID, svc, activos)
			}
		}
		if f.grupo >= 0 {
			verGrupo(t, s, r.ID, f.pasos[f.grupo:])
		}
		for i, paso := range f.pasos {
			code, b, err := s.Post(ctx, f.ruta+"?esperar=60s", f.cuerpo(`,"simular_fallo":"`+paso+`"`))
			if err != nil || code != 200 {
				t.Fatalf("%s failing at %s: %d %v %s", f.ruta, paso, code, err, b)
			}
			r := decodificar(t, b)
			want := slices.Clone(f.pasos[:i+1])
			got := slices.Clone(r.Compensaciones)
			if f.grupo >= 0 && i >= f.grupo {
				// Every member started, so every member is compensated,
				// in the order their compensations could start, before
				// the steps before the group: compare the group as a set.
				want = slices.Clone(f.pasos)
				if len(got) >= len(f.pasos)-f.grupo {
					slices.Sort(got[:len(f.pasos)-f.grupo])
				}
				slices.Sort(want[f.grupo:])
				slices.Reverse(want[:f.grupo])
				want = append(slices.Clone(want[f.grupo:]), want[:f.grupo]...)
			} else {
				slices.Reverse(want)
			}
			if r.Estado != "COMPENSADA" || r.PasoFallido != paso || !slices.Equal(got, want) || r.Error == "" {
				t.Fatalf("%s failing at %s: want compensaciones %v: %s", f.ruta, paso, want, b)
			}
			if activos := efectosActivos(t, s, r.ID); len(activos) != 0 {
				t.Fatalf("%s failing at %s: effects left %v", f.ruta, paso, activos)
			}
		}
	}
}

// verGrupo checks in the saga's detail that the steps of grupo belong to one
// parallel group and started together.
func verGrupo(t *testing.T, s *sistema.Sistema, id string, grupo []string) {
	t.Helper()
	code, b, err := s.Get(context.Background(), "/api/v1/sagas/"+id)
	if err != nil || code != 200 {
		t.Fatalf("detail of %s: %d %v %s", id, code, err, b)
	}
	var d struct {
		Version int `json:"version_definicion"`
		Pasos   []struct {
			Paso   string    `json:"paso"`
			Grupo  string    `json:"grupo"`
			Inicio time.Time `json:"inicio"`
		} `json:"pasos"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var inicio time.Time
	var miembros []string
	for _, p := range d.Pasos {
		if p.Grupo == "" {
			continue
		}
		miembros = append(miembros, p.Paso)
		if inicio.IsZero() {
			inicio = p.Inicio
		}
		if !p.Inicio.Equal(inicio) {
			t.Fatalf("saga %s: member %s started at %v, not with its group at %v", id, p.Paso, p.Inicio, inicio)
		}
	}
	if d.Version != 2 || !slices.Equal(miembros, grupo) {
		t.Fatalf("saga %s: version %d, group %v; want version 2 and group %v", id, d.Version, miembros, grupo)
	}
}

func TestIdempotencyKeyDevuelveLaMismaSaga(t *testing.T) {
	s := sistema.Arrancar(t, sistema.Opciones{})
	ctx := context.Background()
	var ids []string
	for range 3 {
		code, b, err := s.Post(ctx, "/campana-saga", fmt.Sprintf(cuerpoCampana, ""), "Idempotency-Key", "e2e-clave-1")
		if err != nil || code != 202 {
			t.Fatalf("%d %v %s", code, err, b)
		}
		ids = append(ids, decodificar(t, b).ID)
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("ids %v", ids)
	}
	if n := contarSagas(t, s, ""); n != 1 {
		t.Fatalf("%d sagas in the store, want 1", n)
	}
}

// contarSagas counts the sagas the API lists.
func contarSagas(t *testing.T, s *sistema.Sistema, token string) int {
	t.Helper()
	code, b, err := s.Get(context.Background(), "/api/v1/sagas?limite=1000")
	if token != "" {
		code, b, err = s.GetCon(context.Background(), "/api/v1/sagas?limite=1000", "Authorization", "Bearer "+token)
	}
	if err != nil || code != 200 {
		t.Fatalf("list sagas: %d %v %s", code, err, b)
	}
	var r struct {
		Sagas []json.RawMessage `json:"sagas"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return len(r.Sagas)
}

func TestEntradaInvalidaRespondeCuatrocientosYNoCreaNada(t *testing.T) {
	const token = "secreto-e2e"
	// The participants' listeners have a token of their own too (checked at the end).
	s := sistema.Arrancar(t, sistema.Opciones{Extra: map[string]string{"SAGAS_API_TOKEN": token, "SAGAS_METRICS_TOKEN": "raspador-e2e"}})
	ctx := context.Background()
	auth := []string{"Authorization", "Bearer " + token}
	casos := []struct {
		nombre, cuerpo string
		cab            []string
		code           int
		contiene       string
	}{
		{"malformed JSON", `{"nombre": `, auth, 400, ""},
		{"wrong type", fmt.Sprintf(cuerpoCampana, `,"presupuesto":"mucho"`), auth, 400, "presupuesto"},
		{"negative budget", strings.Replace(fmt.Sprintf(cuerpoCampana, ""), `"presupuesto":50000`, `"presupuesto":-5`, 1), auth, 400, "presupuesto"},
		{"empty influencers", strings.Replace(fmt.Sprintf(cuerpoCampana, ""), `"influencers":[{"nombre":"Tech","plataforma":"Instagram"},{"nombre":"Moda","plataforma":"TikTok"}]`, `"influencers":[]`, 1), auth, 400, "influencers"},
		{"10 MB body", `{"nombre":"` + strings.Repeat("a", 10<<20) + `"}`, auth, 413, ""},
		{"wrong token", fmt.Sprintf(cuerpoCampana, ""), []string{"Authorization", "Bearer otro"}, 401, ""},
		{"no token", fmt.Sprintf(cuerpoCampana, ""), nil, 401, ""},
	}
	for _, c := range casos {
		code, b, err := s.Post(ctx, "/campana-saga", c.cuerpo, c.cab...)
		if err != nil || code != c.code || !strings.Contains(string(b), c.contiene) || !json.Valid(b) {
			t.Errorf("%s: %d %v %.200s", c.nombre, code, err, b)
		}
	}
	if n := contarSagas(t, s, token); n != 0 {
		t.Fatalf("%d sagas exist after only rejected requests", n)
	}
	// With the right token the same request is accepted.
	code, b, _ := s.Post(ctx, "/campana-saga", fmt.Sprintf(cuerpoCampana, ""), auth...)
	if code != 202 {
		t.Fatalf("valid request with token: %d %s", code, b)
	}
	// A participant's /efectos and /healthz need SAGAS_METRICS_TOKEN (not
	// the API's): sistema.Get sends it, a bare request is refused.
	id := decodificar(t, b).ID
	for _, p := range sistema.Participantes {
		for _, ruta := range []string{"/efectos/" + id, "/healthz", "/metrics"} {
			for _, cab := range [][]string{nil, auth} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Metricas[p]+ruta, nil)
				if cab != nil {
					req.Header.Set(cab[0], cab[1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s%s with %v: %d, want 401", p, ruta, cab, resp.StatusCode)
				}
			}
		}
		if code, b, err := s.Get(ctx, s.Metricas[p]+"/efectos/"+id); err != nil || code != 200 || !strings.Contains(string(b), `"saga_id":"`+id+`"`) {
			t.Errorf("%s /efectos with the token: %d %v %s", p, code, err, b)
		}
	}
}

func productorLegado(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("python3", "-c", "import fastavro, pulsar").CombinedOutput(); err != nil {
		if integracion.Required() {
			t.Fatalf("python3 with pulsar-client[avro] is required (make test installs it): %v %s", err, out)
		}
		t.Skip("python3 with pulsar-client[avro] not installed")
	}
	_, archivo, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(archivo), "..", "coordinador", "puente", "testdata", "productor_legado.py")
}

func TestPuenteLegadoConProductorPythonInicaUnaSagaPorMensaje(t *testing.T) {
	script := productorLegado(t)
	sufijo := fmt.Sprint(time.Now().UnixNano())
	topCampania := "persistent://public/default/e2e-eventos-campania-" + sufijo
	topLanzar := "persistent://public/default/e2e-comando-lanzar-" + sufijo
	s := sistema.Arrancar(t, sistema.Opciones{Extra: map[string]string{
		"SAGAS_LEGADO_TOPICO_CAMPANIA": topCampania, "SAGAS_LEGADO_TOPICO_LANZAR": topLanzar,
	}})
	ctx := context.Background()
	publicar := func(tipo, topico, id, campania string, veces int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "python3", script, integracion.PulsarURL(t), tipo, id, campania, fmt.Sprint(veces), "--topico", topico)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("legacy producer: %v\n%s", err, out)
		}
	}
	campania := "camp-" + sufijo
	publicar("campania", topCampania, "evt-"+sufijo, campania, 2) // the same message twice
	idLanzar := "5b8d7a1e-0000-4000-8000-" + sufijo[len(sufijo)-12:]
	publicar("lanzar", topLanzar, idLanzar, "x", 2)

	// The campaign event: one saga for that campaign, completed.
	fin := time.Now().Add(60 * time.Second)
	for {
		code, b, err := s.Get(ctx, "/api/v1/sagas?campania_id="+campania)
		var r struct {
			Sagas []respuesta `json:"sagas"`
		}
		if err == nil && code == 200 && json.Unmarshal(b, &r) == nil && len(r.Sagas) > 0 && r.Sagas[0].Estado == "COMPLETADA" {
			if len(r.Sagas) != 1 {
				t.Fatalf("%d sagas for one legacy event published twice: %s", len(r.Sagas), b)
			}
			break
		}
		if time.Now().After(fin) {
			t.Fatalf("no completed saga for campaign %s: %d %s\n%s", campania, code, b, s.Log("coordinador"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The BFF command: its envelope id is the saga id.
	for {
		code, b, _ := s.Get(ctx, "/saga/"+idLanzar+"/estado")
		if code == 200 && decodificar(t, b).Estado == "COMPLETADA" {
			break
		}
		if time.Now().After(fin) {
			t.Fatalf("legacy launch command saga %s: %d %s", idLanzar, code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // let any duplicate be processed
	if n := contarSagas(t, s, ""); n != 2 {
		t.Fatalf("%d sagas after two legacy messages each published twice, want 2", n)
	}
}
