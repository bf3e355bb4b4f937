package saga

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// Step names of lanzar-campania-completa, version 2: af, then co, tr and no
// in parallel.
const (
	af = "solicitar_afiliados_elegibles"
	co = "configurar_comisiones_campania"
	tr = "inicializar_tracking_conversiones"
	no = "preparar_notificaciones_campania"
)

// grupoCorto is a → [b ‖ c] with one compensation attempt, to reach
// COMPENSACION_FALLIDA in one reply.
func grupoCorto() *Definicion {
	return &Definicion{
		Tipo: "corto", Version: 1,
		Pasos: []Paso{
			{Nombre: "a", Servicio: "sa", Comando: "A", Compensacion: "DeshacerA", Plazo: Duracion(10 * time.Second), Intentos: 1},
			{Nombre: "b", Servicio: "sb", Comando: "B", Compensacion: "DeshacerB", Plazo: Duracion(10 * time.Second), Intentos: 1, Grupo: "g"},
			{Nombre: "c", Servicio: "sc", Comando: "C", Compensacion: "DeshacerC", Plazo: Duracion(10 * time.Second), Intentos: 1, Grupo: "g"},
		},
		IntentosCompensacion: 1, PlazoCompensacion: Duracion(10 * time.Second),
		EsperaCompensacion: Duracion(time.Second), EsperaMaxima: Duracion(time.Second),
	}
}

func TestGrupoArrancaJuntoYSeUneCuandoCompletanTodosEnCualquierOrden(t *testing.T) {
	for _, orden := range [][]string{{co, tr, no}, {no, tr, co}, {tr, no, co}} {
		s := correr(t, LanzarCampaniaCompleta(), []entrada{
			resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
			resp(ok(orden[0], Ejecutar), seg(2), true, EnProgreso),
			resp(ok(orden[0], Ejecutar), seg(2), false, EnProgreso), // duplicate
			resp(ok(orden[1], Ejecutar), seg(3), true, EnProgreso),
			resp(ok(orden[2], Ejecutar), seg(4), true, Completada),
		})
		// pasos_ejecutados keeps the definition's order, whatever order the
		// members answered in.
		if got := s.PasosEjecutados(); !slices.Equal(got, []string{af, co, tr, no}) {
			t.Fatalf("order %v: pasos ejecutados %v", orden, got)
		}
		if !s.Fin.Equal(seg(4)) || !s.Plazo.IsZero() || len(s.Compensaciones) != 0 {
			t.Fatalf("order %v: fin %v plazo %v compensaciones %v", orden, s.Fin, s.Plazo, s.Compensaciones)
		}
		for _, p := range s.Pasos {
			if !p.Plazo.IsZero() {
				t.Fatalf("order %v: %s keeps a deadline after completing", orden, p.Nombre)
			}
		}
	}
}

func TestMiembrosRecibenSoloLasSalidasAnterioresAlGrupo(t *testing.T) {
	d := LanzarCampaniaCompleta()
	s := Nueva(d, "s", json.RawMessage(`{"nombre":"x"}`), t0).Saga
	t1 := Aplicar(d, s, ok(af, Ejecutar), seg(1))
	if t1.Saga.Actual != 1 {
		t.Fatalf("actual %d, want the group's first member", t1.Saga.Actual)
	}
	t2 := Aplicar(d, t1.Saga, ok(co, Ejecutar), seg(2))
	// The failing member's compensation carries its own output and the
	// outputs before the group, not a sibling's.
	t3 := Aplicar(d, t2.Saga, Respuesta{Paso: tr, Accion: Ejecutar, Error: "x", Datos: json.RawMessage(`{"parcial":1}`)}, seg(3))
	for _, c := range append(t1.Comandos, t3.Comandos...) {
		var datos struct {
			Previos map[string]json.RawMessage `json:"previos"`
		}
		if err := json.Unmarshal(c.Datos, &datos); err != nil {
			t.Fatal(err)
		}
		var claves []string
		for k := range datos.Previos {
			claves = append(claves, k)
		}
		slices.Sort(claves)
		want := []string{af}
		if c.Accion == Compensar {
			want = []string{af, c.Paso}
			slices.Sort(want)
		}
		if !slices.Equal(claves, want) {
			t.Fatalf("%s/%s previos %v, want %v", c.Paso, c.Accion, claves, want)
		}
	}
}

func TestFalloDeMiembroCompensaLosIniciadosYLosPendientesAlResponder(t *testing.T) {
	s := correr(t, LanzarCampaniaCompleta(), []entrada{
		resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
		resp(ok(co, Ejecutar), seg(2), true, EnProgreso),
		// tr fails while no has not answered: the failed member first.
		resp(fallo(tr, Ejecutar), seg(3), true, Compensando, tr+"/COMPENSAR#1"),
		resp(ok(tr, Compensar), seg(4), true, Compensando, co+"/COMPENSAR#1"),
		// Nothing below the group is undone while no may still act.
		resp(ok(co, Compensar), seg(5), true, Compensando),
		resp(ok(af, Compensar), seg(5), false, Compensando),
		// no answers late: it is compensated, then what came before the group.
		resp(ok(no, Ejecutar), seg(6), true, Compensando, no+"/COMPENSAR#1"),
		resp(ok(no, Compensar), seg(7), true, Compensando, af+"/COMPENSAR#1"),
		resp(ok(af, Compensar), seg(8), true, Compensada),
		resp(ok(no, Ejecutar), seg(9), false, Compensada),
	})
	if !slices.Equal(s.Compensaciones, []string{tr, co, no, af}) {
		t.Fatalf("compensaciones %v", s.Compensaciones)
	}
	if s.PasoFallido != tr || !slices.Equal(s.PasosEjecutados(), []string{af, co, no}) {
		t.Fatalf("paso fallido %s, ejecutados %v", s.PasoFallido, s.PasosEjecutados())
	}
	if p := s.Pasos[3]; string(p.Salida) == "" || p.Estado != PasoCompensado {
		t.Fatalf("late member %+v", p)
	}
}

func TestRespuestaTardiaDeMiembroDuranteOtraCompensacionSeCompensaEnSuTurno(t *testing.T) {
	s := correr(t, LanzarCampaniaCompleta(), []entrada{
		resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
		resp(fallo(co, Ejecutar), seg(2), true, Compensando, co+"/COMPENSAR#1"),
		// Both pending members answer while co's compensation is out: one
		// compensation at a time, so they only get recorded.
		resp(ok(no, Ejecutar), seg(3), true, Compensando),
		resp(fallo(tr, Ejecutar), seg(3), true, Compensando),
		resp(ok(co, Compensar), seg(4), true, Compensando, no+"/COMPENSAR#1"),
		resp(ok(no, Compensar), seg(5), true, Compensando, tr+"/COMPENSAR#1"),
		resp(ok(tr, Compensar), seg(6), true, Compensando, af+"/COMPENSAR#1"),
		resp(ok(af, Compensar), seg(7), true, Compensada),
	})
	if !slices.Equal(s.Compensaciones, []string{co, no, tr, af}) || s.PasoFallido != co {
		t.Fatalf("compensaciones %v, paso fallido %s", s.Compensaciones, s.PasoFallido)
	}
	if !slices.Equal(s.PasosEjecutados(), []string{af, no}) {
		t.Fatalf("ejecutados %v", s.PasosEjecutados())
	}
}

func TestMiembrosSeReintentanCadaUnoConSuPlazo(t *testing.T) {
	// The group starts at 1s, deadlines at 11s; no answers, co and tr do not.
	s := correr(t, LanzarCampaniaCompleta(), []entrada{
		resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
		resp(ok(no, Ejecutar), seg(2), true, EnProgreso),
		venc(seg(10), false, EnProgreso),
		venc(seg(11), true, EnProgreso, co+"/EJECUTAR#2", tr+"/EJECUTAR#2"),
		// A reply to the first attempt of co is as good as the second's.
		resp(ok(co, Ejecutar), seg(12), true, EnProgreso),
		venc(seg(21), true, EnProgreso, tr+"/EJECUTAR#3"),
		resp(Respuesta{Paso: tr, Accion: Ejecutar, Intento: 3, Exito: true}, seg(22), true, Completada),
	})
	if s.Pasos[1].Intento != 2 || s.Pasos[2].Intento != 3 || s.Pasos[3].Intento != 1 {
		t.Fatalf("intentos %d %d %d", s.Pasos[1].Intento, s.Pasos[2].Intento, s.Pasos[3].Intento)
	}
}

func TestMiembroSinRespuestaTrasSusIntentosHaceFallarAlGrupo(t *testing.T) {
	s := correr(t, LanzarCampaniaCompleta(), []entrada{
		resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
		resp(ok(co, Ejecutar), seg(2), true, EnProgreso),
		resp(ok(no, Ejecutar), seg(2), true, EnProgreso),
		venc(seg(11), true, EnProgreso, tr+"/EJECUTAR#2"),
		venc(seg(21), true, EnProgreso, tr+"/EJECUTAR#3"),
		venc(seg(31), true, Compensando, no+"/COMPENSAR#1"),
		resp(ok(no, Compensar), seg(32), true, Compensando, tr+"/COMPENSAR#1"),
		resp(ok(tr, Compensar), seg(33), true, Compensando, co+"/COMPENSAR#1"),
		resp(ok(co, Compensar), seg(34), true, Compensando, af+"/COMPENSAR#1"),
		resp(ok(af, Compensar), seg(35), true, Compensada),
	})
	if s.PasoFallido != tr || !strings.Contains(s.Error, "timeout") {
		t.Fatalf("paso fallido %s error %q", s.PasoFallido, s.Error)
	}
	if !slices.Equal(s.Compensaciones, []string{no, tr, co, af}) {
		t.Fatalf("compensaciones %v", s.Compensaciones)
	}
}

func TestPendienteSinRespuestaTrasElFalloDelGrupoSeCompensaAlVencerSinReintento(t *testing.T) {
	s := correr(t, LanzarCampaniaCompleta(), []entrada{
		resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
		resp(fallo(co, Ejecutar), seg(2), true, Compensando, co+"/COMPENSAR#1"),
		resp(ok(co, Compensar), seg(3), true, Compensando),
		// tr and no never answer: at their deadline (11s) they count as
		// failed, are not retried, and are compensated newest first.
		venc(seg(10), false, Compensando),
		venc(seg(11), true, Compensando, no+"/COMPENSAR#1"),
		resp(ok(no, Compensar), seg(12), true, Compensando, tr+"/COMPENSAR#1"),
		// A very late success of tr changes nothing: it is being undone.
		resp(ok(tr, Ejecutar), seg(12), false, Compensando),
		resp(ok(tr, Compensar), seg(13), true, Compensando, af+"/COMPENSAR#1"),
		resp(ok(af, Compensar), seg(14), true, Compensada),
	})
	if !slices.Equal(s.Compensaciones, []string{co, no, tr, af}) {
		t.Fatalf("compensaciones %v", s.Compensaciones)
	}
	for _, i := range []int{2, 3} {
		if p := s.Pasos[i]; p.Intento != 1 || !strings.Contains(p.Error, "timeout") {
			t.Fatalf("paso %s: intento %d error %q", p.Nombre, p.Intento, p.Error)
		}
	}
	if !slices.Equal(s.PasosEjecutados(), []string{af}) {
		t.Fatalf("ejecutados %v", s.PasosEjecutados())
	}
}

func TestMiembroQueRespondeTrasCompensacionFallidaSeCompensaAlReintentar(t *testing.T) {
	d := grupoCorto()
	s := Nueva(d, "s", nil, t0).Saga
	for _, paso := range []struct {
		r      Respuesta
		estado Estado
		cmds   []string
	}{
		{ok("a", Ejecutar), EnProgreso, []string{"b/EJECUTAR#1", "c/EJECUTAR#1"}},
		{fallo("b", Ejecutar), Compensando, []string{"b/COMPENSAR#1"}},
		{fallo("b", Compensar), CompensacionFallida, nil},
		// c answers after the saga gave up: recorded, nothing sent.
		{ok("c", Ejecutar), CompensacionFallida, nil},
	} {
		tr := Aplicar(d, s, paso.r, seg(1))
		if !tr.Cambio || tr.Saga.Estado != paso.estado || !slices.Equal(nombres(tr.Comandos), paso.cmds) {
			t.Fatalf("%s/%s: cambio %v estado %s cmds %v (%s)", paso.r.Paso, paso.r.Accion, tr.Cambio, tr.Saga.Estado, nombres(tr.Comandos), tr.Motivo)
		}
		s = tr.Saga
	}
	if !s.Plazo.IsZero() || s.Pasos[2].Estado != PasoCompletado {
		t.Fatalf("plazo %v, c %s", s.Plazo, s.Pasos[2].Estado)
	}
	// The retry is attempt 2: attempts are numbered on across rounds.
	rt, err := Reintentar(d, s, seg(2))
	if err != nil || !slices.Equal(nombres(rt.Comandos), []string{"b/COMPENSAR#2"}) {
		t.Fatalf("reintentar: %v %v", err, nombres(rt.Comandos))
	}
	s = rt.Saga
	for _, paso := range []struct {
		r    Respuesta
		cmds []string
	}{
		{ok("b", Compensar), []string{"c/COMPENSAR#1"}},
		{ok("c", Compensar), []string{"a/COMPENSAR#1"}},
		{ok("a", Compensar), nil},
	} {
		tr := Aplicar(d, s, paso.r, seg(3))
		if !slices.Equal(nombres(tr.Comandos), paso.cmds) {
			t.Fatalf("%s: cmds %v (%s)", paso.r.Paso, nombres(tr.Comandos), tr.Motivo)
		}
		s = tr.Saga
	}
	if s.Estado != Compensada || !slices.Equal(s.Compensaciones, []string{"b", "c", "a"}) {
		t.Fatalf("estado %s compensaciones %v", s.Estado, s.Compensaciones)
	}
}

func TestPlazoDeLaSagaEsElMasTempranoDeSusPasos(t *testing.T) {
	d := LanzarCampaniaCompleta()
	s := Nueva(d, "s", nil, t0).Saga
	s = Aplicar(d, s, ok(af, Ejecutar), seg(1)).Saga
	s = Vencer(d, s, seg(11)).Saga // all three retried at 11s: deadlines 21s
	s = Aplicar(d, s, ok(co, Ejecutar), seg(12)).Saga
	if !s.Plazo.Equal(seg(21)) {
		t.Fatalf("plazo %v, want %v", s.Plazo, seg(21))
	}
	// A saga deadline no step holds (older data) is dropped, not retried.
	s.Pasos[2].Plazo, s.Pasos[3].Plazo = time.Time{}, time.Time{}
	tr := Vencer(d, s, seg(22))
	if !tr.Cambio || !tr.Saga.Plazo.IsZero() || len(tr.Comandos) != 0 {
		t.Fatalf("stale plazo: cambio %v plazo %v cmds %v", tr.Cambio, tr.Saga.Plazo, nombres(tr.Comandos))
	}
}

func TestGruposDeLaDefinicion(t *testing.T) {
	d := LanzarCampaniaCompleta()
	for i, want := range [][2]int{{0, 1}, {1, 4}, {1, 4}, {1, 4}} {
		if desde, hasta := d.Grupo(i); desde != want[0] || hasta != want[1] {
			t.Fatalf("Grupo(%d) = [%d, %d), want %v", i, desde, hasta, want)
		}
	}
	if desde, hasta := Campana().Grupo(1); desde != 1 || hasta != 2 {
		t.Fatalf("a step without grupo is its own group: [%d, %d)", desde, hasta)
	}
	malo := `{"tipo":"x","version":1,"intentos_compensacion":1,"plazo_compensacion":"1s","espera_compensacion":"1s","espera_maxima":"1s","pasos":[` +
		`{"nombre":"a","servicio":"s","comando":"A","compensacion":"DA","plazo":"1s","intentos":1,"grupo":"g"},` +
		`{"nombre":"b","servicio":"s","comando":"B","compensacion":"DB","plazo":"1s","intentos":1},` +
		`{"nombre":"c","servicio":"s","comando":"C","compensacion":"DC","plazo":"1s","intentos":1,"grupo":"g"}]}`
	if _, err := Leer(strings.NewReader(malo)); err == nil || !strings.Contains(err.Error(), `grupo "g" con pasos no consecutivos`) {
		t.Fatalf("non-consecutive group: %v", err)
	}
}

func TestCatalogoConservaLasVersionesAnteriores(t *testing.T) {
	c := CatalogoPorDefecto()
	if got := c.Versiones(TipoLanzarCampaniaCompleta); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("versiones %v", got)
	}
	for v, grupo := range map[int]string{1: "", 2: "preparar_lanzamiento"} {
		d, err := c.BuscarVersion(TipoLanzarCampaniaCompleta, v)
		if err != nil || d.Pasos[1].Grupo != grupo {
			t.Fatalf("version %d: %v, grupo %q", v, err, d.Pasos[1].Grupo)
		}
	}
	// A version the catalogue does not hold is an error naming it, never
	// another version's steps.
	if d, err := c.BuscarVersion(TipoLanzarCampaniaCompleta, 9); !errors.Is(err, ErrVersionDesconocida) || d != nil ||
		!strings.Contains(err.Error(), "lanzar-campania-completa versión 9 (conocidas: 2, 1)") {
		t.Fatalf("version 9: %v, %+v", err, d)
	}
	// Loading version 1 as JSON makes it current again; version 2 stays
	// known for the sagas that started on it.
	v1, err := json.Marshal(LanzarCampaniaCompletaV1())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CargarDirectorio(fstest.MapFS{"lanzar.json": {Data: v1}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Buscar(TipoLanzarCampaniaCompleta); d.Version != 1 {
		t.Fatalf("current version %d", d.Version)
	}
	if d, _ := c.BuscarVersion(TipoLanzarCampaniaCompleta, 2); d.Version != 2 || d.Pasos[2].Grupo == "" {
		t.Fatalf("version 2 lost: %+v", d)
	}
	// Of two files of one tipo, the highest version is current.
	v2, _ := json.Marshal(LanzarCampaniaCompleta())
	c = CatalogoPorDefecto()
	if err := c.CargarDirectorio(fstest.MapFS{"a.json": {Data: v2}, "b.json": {Data: v1}}); err != nil {
		t.Fatal(err)
	}
	if got := c.Versiones(TipoLanzarCampaniaCompleta); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("versiones %v", got)
	}
	if d, _ := c.Buscar(TipoLanzarCampaniaCompleta); !reflect.DeepEqual(d.Pasos, LanzarCampaniaCompleta().Pasos) {
		t.Fatal("version 2 from JSON is not current")
	}
}

// The JSON of version 1 shipped for operators who want the sequential flow
// back (copy it into SAGAS_DEFINICIONES) is the built-in version 1.
func TestEjemploDeVersion1EsLaIntegrada(t *testing.T) {
	f, err := os.Open("../../ejemplos/definiciones/lanzar-campania-completa-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Leer(f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, LanzarCampaniaCompletaV1()) {
		t.Fatalf("ejemplos/definiciones/lanzar-campania-completa-v1.json differs from LanzarCampaniaCompletaV1: %+v", d)
	}
}
