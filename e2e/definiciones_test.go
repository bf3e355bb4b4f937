package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/sistema"
)

// detalle is the part of GET /api/v1/sagas/{id} these tests read.
type detalle struct {
	Tipo              string `json:"tipo"`
	VersionDefinicion int    `json:"version_definicion"`
	Estado            string `json:"estado"`
	Pasos             []struct {
		Paso   string `json:"paso"`
		Estado string `json:"estado"`
	} `json:"pasos"`
}

func leerDetalle(t *testing.T, s *sistema.Sistema, id string) detalle {
	t.Helper()
	code, b, err := s.Get(context.Background(), "/api/v1/sagas/"+id)
	if err != nil || code != 200 {
		t.Fatalf("detail of %s: %d %v %s", id, code, err, b)
	}
	var d detalle
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d detalle) pasos() (nombres, estados []string) {
	for _, p := range d.Pasos {
		nombres, estados = append(nombres, p.Paso), append(estados, p.Estado)
	}
	return nombres, estados
}

// esperarDetalle polls a saga's detail until cumple holds.
func esperarDetalle(t *testing.T, s *sistema.Sistema, id string, limite time.Duration, cumple func(detalle) bool) detalle {
	t.Helper()
	fin := time.Now().Add(limite)
	for {
		d := leerDetalle(t, s, id)
		if cumple(d) {
			return d
		}
		if time.Now().After(fin) {
			t.Fatalf("saga %s: %+v after %v", id, d, limite)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// campanaVersion writes the campana flow at version v to dir: version 2 is
// the seeds' order (influencer, marca, tracking), version 3 another flow
// (marca, then influencer; no tracking). Steps wait 60s for a reply, so a
// paused participant is not retried during the test.
func campanaVersion(t *testing.T, dir string, v int) string {
	t.Helper()
	paso := func(nombre, comando, compensacion string) string {
		return fmt.Sprintf(`{"nombre":%q,"servicio":%q,"comando":%q,"compensacion":%q,"plazo":"60s","intentos":3}`, nombre, nombre, comando, compensacion)
	}
	influencer := paso("influencer", "NotificarInfluencer", "CompensarNotificacionInfluencer")
	marca := paso("marca", "NotificarMarca", "CompensarNotificacionMarca")
	tracking := paso("tracking", "InicializarTracking", "CompensarInicializacionTracking")
	pasos := []string{influencer, marca, tracking}
	if v == 3 {
		pasos = []string{marca, influencer}
	}
	def := fmt.Sprintf(`{"tipo":"campana","version":%d,"pasos":[%s],"intentos_compensacion":5,"plazo_compensacion":"10s",`+
		`"espera_compensacion":"200ms","espera_maxima":"2s"}`, v, strings.Join(pasos, ","))
	ruta := filepath.Join(dir, fmt.Sprintf("campana-v%d.json", v))
	if err := os.WriteFile(ruta, []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	return ruta
}

// TestLasSagasEnCursoTerminanConSuVersionTrasCambiarLaDefinicion starts
// sagas on campana version 2 with the marca participant paused, so they are
// in flight; stops the coordinator; swaps the definition file to version 3.
// The coordinator refuses to start while version 2 is gone, naming the
// sagas that need it; with both files it starts, the sagas in flight finish
// on version 2 (their steps, and tracking's command and effect), and new
// sagas run version 3 (no tracking, influencer after marca).
func TestLasSagasEnCursoTerminanConSuVersionTrasCambiarLaDefinicion(t *testing.T) {
	for _, almacen := range []string{"sqlite", "mysql"} {
		t.Run(almacen, func(t *testing.T) {
			ctx := context.Background()
			defs := t.TempDir()
			v2 := campanaVersion(t, defs, 2)
			s := sistema.Arrancar(t, sistema.Opciones{Almacen: almacen, Extra: map[string]string{"SAGAS_DEFINICIONES": defs}})

			s.Pausar("marca")
			t.Cleanup(func() { s.Reanudar("marca") })
			var viejas []string
			for i := range 3 {
				code, b, err := s.Post(ctx, "/campana-saga", fmt.Sprintf(cuerpoCampana, fmt.Sprintf(`,"campania_id":"vieja-%d"`, i)))
				if err != nil || code != 202 {
					t.Fatalf("start: %d %v %s", code, err, b)
				}
				viejas = append(viejas, decodificar(t, b).ID)
			}
			for _, id := range viejas {
				d := esperarDetalle(t, s, id, 60*time.Second, func(d detalle) bool {
					_, estados := d.pasos()
					return len(estados) == 3 && estados[1] == "EJECUTANDO"
				})
				if d.VersionDefinicion != 2 {
					t.Fatalf("saga %s started on version %d, want 2", id, d.VersionDefinicion)
				}
			}

			// The flow changes while they wait on marca.
			s.DetenerUno("coordinador")
			if err := os.Remove(v2); err != nil {
				t.Fatal(err)
			}
			campanaVersion(t, defs, 3)
			salida, err := s.Ejecutar("coordinador", map[string]string{"SAGAS_API_HOST": "127.0.0.1", "SAGAS_API_PORT": "0"}, 60*time.Second)
			if err == nil || !strings.Contains(salida, "3 sagas en curso") || !strings.Contains(salida, "campana versión 2 (3 sagas; conocidas: 3, 1)") {
				t.Fatalf("the coordinator must refuse to start without version 2, naming the sagas: %v\n%s", err, salida)
			}
			// Both versions in the directory: version 3 is current.
			campanaVersion(t, defs, 2)
			s.ReiniciarCoordinador()

			var nuevas []string
			for i := range 2 {
				code, b, err := s.Post(ctx, "/campana-saga", fmt.Sprintf(cuerpoCampana, fmt.Sprintf(`,"campania_id":"nueva-%d"`, i)))
				if err != nil || code != 202 {
					t.Fatalf("start: %d %v %s", code, err, b)
				}
				nuevas = append(nuevas, decodificar(t, b).ID)
			}
			s.Reanudar("marca")

			terminal := func(d detalle) bool {
				return d.Estado == "COMPLETADA" || d.Estado == "COMPENSADA" || d.Estado == "COMPENSACION_FALLIDA"
			}
			for _, id := range viejas {
				d := esperarDetalle(t, s, id, 90*time.Second, terminal)
				nombres, estados := d.pasos()
				if d.Estado != "COMPLETADA" || d.VersionDefinicion != 2 || !slices.Equal(nombres, []string{"influencer", "marca", "tracking"}) ||
					!slices.Equal(estados, []string{"COMPLETADO", "COMPLETADO", "COMPLETADO"}) {
					t.Errorf("saga %s in flight across the change: %+v, want version 2 completed by its three steps", id, d)
				}
				// tracking's command was sent by the restarted coordinator:
				// version 3 has no tracking step.
				if got := efectosActivos(t, s, id); got["influencer"] == 0 || got["marca"] == 0 || got["tracking"] == 0 {
					t.Errorf("saga %s: effects %v, want influencer, marca and tracking", id, got)
				}
			}
			for _, id := range nuevas {
				d := esperarDetalle(t, s, id, 90*time.Second, terminal)
				nombres, _ := d.pasos()
				if d.Estado != "COMPLETADA" || d.VersionDefinicion != 3 || !slices.Equal(nombres, []string{"marca", "influencer"}) {
					t.Errorf("new saga %s: %+v, want version 3 completed (marca, influencer)", id, d)
				}
				if got := efectosActivos(t, s, id); got["tracking"] != 0 || got["marca"] == 0 || got["influencer"] == 0 {
					t.Errorf("new saga %s: effects %v, want marca and influencer only", id, got)
				}
			}
		})
	}
}

const cuerpoAviso = `{"nombre":"Aviso de verano","presupuesto":1200,"marca":{"id_marca":"m-001","nombre_marca":"Andes Outdoor"}%s}`

// TestUnFlujoSoloEnJSONSeIniciaSinCompilar loads
// ejemplos/definiciones/aviso-marca.json (marca, then tracking: steps of
// existing participants) and starts it through POST /api/v1/sagas/{tipo}:
// it completes with both effects; failing at tracking it is compensated
// with no effect left; an input its schema refuses is 400 naming the field.
func TestUnFlujoSoloEnJSONSeIniciaSinCompilar(t *testing.T) {
	for _, almacen := range []string{"sqlite", "mysql"} {
		t.Run(almacen, func(t *testing.T) {
			ctx := context.Background()
			defs := t.TempDir()
			b, err := os.ReadFile("../ejemplos/definiciones/aviso-marca.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(defs, "aviso-marca.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s := sistema.Arrancar(t, sistema.Opciones{Almacen: almacen, Extra: map[string]string{"SAGAS_DEFINICIONES": defs}})

			code, b, err := s.Post(ctx, "/api/v1/sagas/aviso-marca?esperar=60s", fmt.Sprintf(cuerpoAviso, ""))
			if err != nil || code != 200 {
				t.Fatalf("start: %d %v %s", code, err, b)
			}
			r := decodificar(t, b)
			if r.Estado != "COMPLETADA" || !slices.Equal(r.PasosEjecutados, []string{"marca", "tracking"}) {
				t.Fatalf("%+v", r)
			}
			if d := leerDetalle(t, s, r.ID); d.Tipo != "aviso-marca" || d.VersionDefinicion != 1 {
				t.Fatalf("detail: %+v", d)
			}
			if got := efectosActivos(t, s, r.ID); got["marca"] == 0 || got["tracking"] == 0 || len(got) != 2 {
				t.Fatalf("effects %v, want marca and tracking", got)
			}

			code, b, err = s.Post(ctx, "/api/v1/sagas/aviso-marca?esperar=60s", fmt.Sprintf(cuerpoAviso, `,"simular_fallo":"tracking"`))
			if err != nil || code != 200 {
				t.Fatalf("start failing: %d %v %s", code, err, b)
			}
			r = decodificar(t, b)
			if r.Estado != "COMPENSADA" || r.PasoFallido != "tracking" {
				t.Fatalf("%+v", r)
			}
			if got := efectosActivos(t, s, r.ID); len(got) != 0 {
				t.Fatalf("a compensated saga left effects: %v", got)
			}

			code, b, err = s.Post(ctx, "/api/v1/sagas/aviso-marca", `{"nombre":"x","marca":{"nombre_marca":"Andes"}}`)
			if err != nil || code != 400 || !strings.Contains(string(b), `"campo":"marca.id_marca"`) {
				t.Fatalf("invalid input: %d %v %s, want 400 naming marca.id_marca", code, err, b)
			}
			if code, b, _ := s.Post(ctx, "/api/v1/sagas/campana", fmt.Sprintf(cuerpoCampana, "")); code != 404 {
				t.Fatalf("campana has no input schema: %d %s, want 404", code, b)
			}
		})
	}
}
