package saga

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func seg(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func ok(paso string, a Accion) Respuesta {
	return Respuesta{Paso: paso, Accion: a, Intento: 1, Exito: true, Datos: json.RawMessage(`{"hecho":"` + paso + `"}`)}
}

func fallo(paso string, a Accion) Respuesta {
	return Respuesta{Paso: paso, Accion: a, Intento: 1, Error: "error en " + paso}
}

// entrada is one input of a scripted run: a reply, or the clock reaching a time.
type entrada struct {
	r        *Respuesta
	vencer   bool
	cancelar bool
	en       time.Time
	cambio   bool     // whether the input must change the saga
	cmds     []string // expected commands: "paso/ACCION#intento"
	estado   Estado   // expected saga state after it
	termina  bool
}

func resp(r Respuesta, en time.Time, cambio bool, estado Estado, cmds ...string) entrada {
	return entrada{r: &r, en: en, cambio: cambio, estado: estado, cmds: cmds}
}

func venc(en time.Time, cambio bool, estado Estado, cmds ...string) entrada {
	return entrada{vencer: true, en: en, cambio: cambio, estado: estado, cmds: cmds}
}

func nombres(cs []Comando) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Paso+"/"+string(c.Accion)+"#"+itoa(c.Intento))
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// correr starts a campana saga and feeds the inputs, checking each step.
func correr(t *testing.T, d *Definicion, entradas []entrada) Saga {
	t.Helper()
	tr := Nueva(d, "s1", json.RawMessage(`{"nombre":"demo"}`), t0)
	if got := nombres(tr.Comandos); !slices.Equal(got, []string{d.Pasos[0].Nombre + "/EJECUTAR#1"}) {
		t.Fatalf("Nueva: commands %v", got)
	}
	s := tr.Saga
	for i, e := range entradas {
		antes := s.Clone()
		var tr Transicion
		switch {
		case e.cancelar:
			var err error
			if tr, err = Cancelar(d, s, e.en); err != nil {
				t.Fatalf("input %d: Cancelar: %v", i, err)
			}
		case e.vencer:
			tr = Vencer(d, s, e.en)
		default:
			tr = Aplicar(d, s, *e.r, e.en)
		}
		if !reflect.DeepEqual(s, antes) {
			t.Fatalf("input %d mutated its input saga", i)
		}
		if tr.Cambio != e.cambio {
			t.Fatalf("input %d: Cambio = %v, want %v (%s)", i, tr.Cambio, e.cambio, tr.Motivo)
		}
		if got := nombres(tr.Comandos); !slices.Equal(got, e.cmds) {
			t.Fatalf("input %d: commands %v, want %v (%s)", i, got, e.cmds, tr.Motivo)
		}
		if tr.Saga.Estado != e.estado {
			t.Fatalf("input %d: estado %s, want %s (%s)", i, tr.Saga.Estado, e.estado, tr.Motivo)
		}
		if tr.Terminada != (tr.Cambio && e.estado.Terminal()) {
			t.Fatalf("input %d: Terminada = %v", i, tr.Terminada)
		}
		if !tr.Cambio && !reflect.DeepEqual(tr.Saga, s) {
			t.Fatalf("input %d: ignored input changed the saga", i)
		}
		s = tr.Saga
	}
	return s
}

func TestCampanaCompleta(t *testing.T) {
	s := correr(t, Campana(), []entrada{
		resp(ok("influencer", Ejecutar), seg(1), true, EnProgreso, "marca/EJECUTAR#1"),
		resp(ok("marca", Ejecutar), seg(2), true, EnProgreso, "tracking/EJECUTAR#1"),
		resp(ok("tracking", Ejecutar), seg(3), true, Completada),
	})
	if got := s.PasosEjecutados(); !slices.Equal(got, []string{"influencer", "marca", "tracking"}) {
		t.Fatalf("pasos ejecutados %v", got)
	}
	if !s.Fin.Equal(seg(3)) || !s.Plazo.IsZero() || len(s.Compensaciones) != 0 {
		t.Fatalf("fin %v plazo %v compensaciones %v", s.Fin, s.Plazo, s.Compensaciones)
	}
	for _, p := range s.Pasos {
		if p.Estado != PasoCompletado || p.Intento != 1 || len(p.Salida) == 0 || len(p.Entrada) == 0 {
			t.Fatalf("paso %+v", p)
		}
	}
}

func TestCompensaEnOrdenInversoIncluyendoPasoFallido(t *testing.T) {
	s := correr(t, Campana(), []entrada{
		resp(ok("influencer", Ejecutar), seg(1), true, EnProgreso, "marca/EJECUTAR#1"),
		resp(ok("marca", Ejecutar), seg(2), true, EnProgreso, "tracking/EJECUTAR#1"),
		resp(fallo("tracking", Ejecutar), seg(3), true, Compensando, "tracking/COMPENSAR#1"),
		resp(ok("tracking", Compensar), seg(4), true, Compensando, "marca/COMPENSAR#1"),
		resp(ok("marca", Compensar), seg(5), true, Compensando, "influencer/COMPENSAR#1"),
		resp(ok("influencer", Compensar), seg(6), true, Compensada),
	})
	if !slices.Equal(s.Compensaciones, []string{"tracking", "marca", "influencer"}) {
		t.Fatalf("compensaciones %v", s.Compensaciones)
	}
	if s.PasoFallido != "tracking" || !strings.Contains(s.Error, "error en tracking") {
		t.Fatalf("paso_fallido %q error %q", s.PasoFallido, s.Error)
	}
	if got := s.PasosEjecutados(); !slices.Equal(got, []string{"influencer", "marca"}) {
		t.Fatalf("pasos ejecutados %v", got)
	}
	for _, p := range s.Pasos {
		if p.Estado != PasoCompensado || p.FinCompensacion.IsZero() {
			t.Fatalf("paso %+v", p)
		}
	}
}

func TestFalloEnCadaPasoCompensaLosIniciados(t *testing.T) {
	casos := map[string][]string{
		"influencer": {"influencer"},
		"marca":      {"marca", "influencer"},
		"tracking":   {"tracking", "marca", "influencer"},
	}
	d := Campana()
	for falla, want := range casos {
		t.Run(falla, func(t *testing.T) {
			s := Nueva(d, "s", nil, t0).Saga
			for n := 1; s.Estado != Compensada; n++ {
				if n > 20 {
					t.Fatalf("did not end: %+v", s)
				}
				p := s.Pasos[s.Actual]
				var r Respuesta
				switch {
				case p.Estado == PasoEjecutando && p.Nombre == falla:
					r = fallo(p.Nombre, Ejecutar)
				case p.Estado == PasoEjecutando:
					r = ok(p.Nombre, Ejecutar)
				default:
					r = ok(p.Nombre, Compensar)
				}
				tr := Aplicar(d, s, r, seg(n))
				if !tr.Cambio {
					t.Fatalf("reply %+v ignored: %s", r, tr.Motivo)
				}
				s = tr.Saga
			}
			if !slices.Equal(s.Compensaciones, want) || s.PasoFallido != falla {
				t.Fatalf("compensaciones %v paso_fallido %s", s.Compensaciones, s.PasoFallido)
			}
			// Steps never started are left alone.
			for _, p := range s.Pasos {
				started := slices.Contains(want, p.Nombre)
				if started != (p.Estado == PasoCompensado) || !started && p.Estado != PasoPendiente {
					t.Fatalf("paso %s estado %s", p.Nombre, p.Estado)
				}
			}
		})
	}
}

func TestPasoSilenciosoSeReintentaConLaMismaClaveYLuegoCompensa(t *testing.T) {
	d := Campana() // 3 attempts of 10s each
	tr := Nueva(d, "s1", nil, t0)
	clave := tr.Comandos[0].Clave
	s := correr(t, d, []entrada{
		venc(seg(9), false, Iniciada),
		venc(seg(10), true, Iniciada, "influencer/EJECUTAR#2"),
		venc(seg(20), true, Iniciada, "influencer/EJECUTAR#3"),
		venc(seg(30), true, Compensando, "influencer/COMPENSAR#1"),
		// The reply of the first attempt arrives after the step was given up.
		resp(ok("influencer", Ejecutar), seg(31), false, Compensando),
		resp(ok("influencer", Compensar), seg(32), true, Compensada),
		// And after the end: nothing changes.
		resp(ok("influencer", Ejecutar), seg(33), false, Compensada),
		venc(seg(99), false, Compensada),
	})
	if s.PasoFallido != "influencer" || !strings.Contains(s.Error, "timeout") {
		t.Fatalf("paso_fallido %q error %q", s.PasoFallido, s.Error)
	}
	if s.Pasos[0].Intento != 3 {
		t.Fatalf("intentos %d", s.Pasos[0].Intento)
	}
	// Every attempt shares one idempotency key.
	s2 := Vencer(d, tr.Saga, seg(10))
	if s2.Comandos[0].Clave != clave || clave != "s1:influencer:EJECUTAR" {
		t.Fatalf("clave %q vs %q", s2.Comandos[0].Clave, clave)
	}
}

func TestRespuestaDeUnReintentoAvanza(t *testing.T) {
	r := ok("influencer", Ejecutar)
	r.Intento = 2
	correr(t, Campana(), []entrada{
		venc(seg(10), true, Iniciada, "influencer/EJECUTAR#2"),
		resp(r, seg(11), true, EnProgreso, "marca/EJECUTAR#1"),
		// The first attempt's reply, late and identical in effect: ignored.
		resp(ok("influencer", Ejecutar), seg(12), false, EnProgreso),
	})
}

func TestRespuestasDuplicadasTardiasFueraDeOrdenYDesconocidas(t *testing.T) {
	correr(t, Campana(), []entrada{
		// Out of order: a reply for a step not yet started.
		resp(ok("marca", Ejecutar), seg(1), false, Iniciada),
		// Unknown step.
		resp(ok("pagos", Ejecutar), seg(1), false, Iniciada),
		// A compensation reply while executing.
		resp(ok("influencer", Compensar), seg(1), false, Iniciada),
		resp(ok("influencer", Ejecutar), seg(2), true, EnProgreso, "marca/EJECUTAR#1"),
		// Duplicate.
		resp(ok("influencer", Ejecutar), seg(3), false, EnProgreso),
		// A failure reply duplicated after success of the same step: ignored.
		resp(fallo("influencer", Ejecutar), seg(3), false, EnProgreso),
		resp(fallo("marca", Ejecutar), seg(4), true, Compensando, "marca/COMPENSAR#1"),
		// Duplicate failure while compensating.
		resp(fallo("marca", Ejecutar), seg(5), false, Compensando),
		// A compensation reply for a step whose turn has not come.
		resp(ok("influencer", Compensar), seg(5), false, Compensando),
		resp(ok("marca", Compensar), seg(6), true, Compensando, "influencer/COMPENSAR#1"),
		resp(ok("marca", Compensar), seg(7), false, Compensando),
		resp(ok("influencer", Compensar), seg(8), true, Compensada),
		resp(ok("influencer", Compensar), seg(9), false, Compensada),
		resp(fallo("tracking", Ejecutar), seg(9), false, Compensada),
	})
}

func TestCompensacionFallidaReintentaConEsperaYSeRinde(t *testing.T) {
	d := Campana() // 5 compensation attempts, backoff 0.5s,1s,2s,4s
	s := correr(t, d, []entrada{
		resp(fallo("influencer", Ejecutar), seg(1), true, Compensando, "influencer/COMPENSAR#1"),
	})
	en := seg(2)
	var esperas []time.Duration
	for intento := 1; intento <= 5; intento++ {
		r := fallo("influencer", Compensar)
		r.Intento = intento
		tr := Aplicar(d, s, r, en)
		if !tr.Cambio || len(tr.Comandos) != 0 {
			t.Fatalf("attempt %d: %+v", intento, tr)
		}
		s = tr.Saga
		if intento == 5 {
			break
		}
		if !s.EnEspera {
			t.Fatalf("attempt %d: not waiting", intento)
		}
		esperas = append(esperas, s.Plazo.Sub(en))
		// A reply while waiting (a duplicate of the failure) is ignored.
		if tr := Aplicar(d, s, r, en); tr.Cambio {
			t.Fatalf("reply during backoff applied: %s", tr.Motivo)
		}
		// A late success of the failed attempt, during the wait, is taken.
		if intento == 1 {
			tr := Aplicar(d, s, ok("influencer", Compensar), en)
			if !tr.Cambio || tr.Saga.Estado != Compensada || tr.Saga.EnEspera || !tr.Saga.Plazo.IsZero() {
				t.Fatalf("success during backoff: %s en espera %v (%s)", tr.Saga.Estado, tr.Saga.EnEspera, tr.Motivo)
			}
		}
		// Before the wait ends nothing happens.
		if tr := Vencer(d, s, s.Plazo.Add(-time.Millisecond)); tr.Cambio {
			t.Fatal("deadline fired early")
		}
		en = s.Plazo
		tr = Vencer(d, s, en)
		if got := nombres(tr.Comandos); !slices.Equal(got, []string{"influencer/COMPENSAR#" + itoa(intento+1)}) {
			t.Fatalf("retry commands %v", got)
		}
		s = tr.Saga
		en = en.Add(time.Second)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	if !slices.Equal(esperas, want) {
		t.Fatalf("backoff %v, want %v", esperas, want)
	}
	if s.Estado != CompensacionFallida || !strings.Contains(s.Error, "5 intentos") || !s.Plazo.IsZero() {
		t.Fatalf("estado %s error %q plazo %v", s.Estado, s.Error, s.Plazo)
	}
	// Terminal for deadlines, failures and other steps' replies...
	if tr := Vencer(d, s, en.Add(time.Hour)); tr.Cambio {
		t.Fatal("deadline changed a COMPENSACION_FALLIDA saga")
	}
	if tr := Aplicar(d, s, fallo("influencer", Compensar), en); tr.Cambio {
		t.Fatal("a failure changed a COMPENSACION_FALLIDA saga")
	}
	if tr := Aplicar(d, s, ok("marca", Compensar), en); tr.Cambio {
		t.Fatal("another step's reply changed a COMPENSACION_FALLIDA saga")
	}
	// ...but a late success of the stuck compensation finishes the job.
	tarde := Aplicar(d, s, ok("influencer", Compensar), en)
	if !tarde.Cambio || !tarde.Terminada || tarde.Saga.Estado != Compensada || !slices.Equal(tarde.Saga.Compensaciones, []string{"influencer"}) {
		t.Fatalf("late compensation success: %s %v (%s)", tarde.Saga.Estado, tarde.Saga.Compensaciones, tarde.Motivo)
	}
	// Or an operator retries: a new round of 5 attempts, numbered on.
	tr, err := Reintentar(d, s, en)
	if err != nil || tr.Saga.Estado != Compensando || !slices.Equal(nombres(tr.Comandos), []string{"influencer/COMPENSAR#6"}) {
		t.Fatalf("Reintentar: %v %s %v", err, tr.Saga.Estado, nombres(tr.Comandos))
	}
	r := ok("influencer", Compensar)
	fin := Aplicar(d, tr.Saga, r, en.Add(time.Second))
	if fin.Saga.Estado != Compensada || !fin.Terminada || !slices.Equal(fin.Saga.Compensaciones, []string{"influencer"}) {
		t.Fatalf("after retry: %s %v", fin.Saga.Estado, fin.Saga.Compensaciones)
	}
}

// TestReintentarAbreUnaRondaNueva: after an operator's retry, the failures
// of the earlier round's attempts (redelivered late) count for nothing, the
// new round has the whole budget with its own backoff, and a second retry
// opens a third round.
func TestReintentarAbreUnaRondaNueva(t *testing.T) {
	d := Campana()
	ahora := seg(1)
	fallar := func(s Saga, intento int) Transicion {
		r := fallo("influencer", Compensar)
		r.Intento = intento
		return Aplicar(d, s, r, ahora)
	}
	ronda := func(s Saga, primero int) Saga {
		t.Helper()
		for i := primero; i < primero+5; i++ {
			if i > primero {
				ahora = s.Plazo
				tr := Vencer(d, s, ahora)
				if got := nombres(tr.Comandos); !slices.Equal(got, []string{"influencer/COMPENSAR#" + itoa(i)}) {
					t.Fatalf("attempt %d sent %v", i, got)
				}
				s = tr.Saga
			}
			// Every attempt of the earlier rounds fails again, late: ignored.
			for viejo := 1; viejo < primero; viejo++ {
				if tr := fallar(s, viejo); tr.Cambio {
					t.Fatalf("attempt %d in flight: the failure of attempt %d counted (%s)", i, viejo, tr.Motivo)
				}
			}
			tr := fallar(s, i)
			if !tr.Cambio {
				t.Fatalf("the failure of attempt %d in flight was ignored: %s", i, tr.Motivo)
			}
			s = tr.Saga
			if i < primero+4 {
				want := Espera(d, i-primero+1)
				if s.Estado != Compensando || !s.EnEspera || s.Plazo.Sub(ahora) != want {
					t.Fatalf("after attempt %d: %s en espera %v, wait %v (want %v)", i, s.Estado, s.EnEspera, s.Plazo.Sub(ahora), want)
				}
			}
		}
		if s.Estado != CompensacionFallida || !strings.Contains(s.Error, "tras 5 intentos") {
			t.Fatalf("round from attempt %d: %s %q", primero, s.Estado, s.Error)
		}
		return s
	}
	tr := Aplicar(d, Nueva(d, "s1", nil, t0).Saga, fallo("influencer", Ejecutar), ahora)
	if got := nombres(tr.Comandos); !slices.Equal(got, []string{"influencer/COMPENSAR#1"}) {
		t.Fatalf("compensation: %v", got)
	}
	s := ronda(tr.Saga, 1)
	for _, primero := range []int{6, 11} {
		ahora = ahora.Add(time.Minute)
		tr, err := Reintentar(d, s, ahora)
		if err != nil || !slices.Equal(nombres(tr.Comandos), []string{"influencer/COMPENSAR#" + itoa(primero)}) {
			t.Fatalf("Reintentar: %v %v", err, nombres(tr.Comandos))
		}
		s = ronda(tr.Saga, primero)
	}
}

func TestCompensacionSilenciosaSeReintenta(t *testing.T) {
	d := Campana()
	s := correr(t, d, []entrada{
		resp(fallo("influencer", Ejecutar), seg(1), true, Compensando, "influencer/COMPENSAR#1"),
		// No reply within the compensation deadline (10s): backoff wait, then resend.
		venc(seg(11), true, Compensando),
	})
	if !s.EnEspera || !s.Plazo.Equal(seg(11).Add(500*time.Millisecond)) {
		t.Fatalf("en espera %v plazo %v", s.EnEspera, s.Plazo)
	}
	tr := Vencer(d, s, s.Plazo)
	if got := nombres(tr.Comandos); !slices.Equal(got, []string{"influencer/COMPENSAR#2"}) || tr.Saga.EnEspera {
		t.Fatalf("commands %v", got)
	}
}

// TestFalloDeUnIntentoAnteriorDeCompensacionNoCuenta: a failure of
// compensation attempt 1 that arrives while attempt 2 is out (late, after
// its timeout; a redelivery has the same id and the inbox drops it) must not
// use up attempt 2.
func TestFalloDeUnIntentoAnteriorDeCompensacionNoCuenta(t *testing.T) {
	d := Campana()
	s := correr(t, d, []entrada{
		resp(fallo("influencer", Ejecutar), seg(1), true, Compensando, "influencer/COMPENSAR#1"),
	})
	primero := fallo("influencer", Compensar)
	primero.Intento = 1
	tr := Aplicar(d, s, primero, seg(2))
	if !tr.Cambio || !tr.Saga.EnEspera {
		t.Fatalf("first failure: cambio %v en espera %v (%s)", tr.Cambio, tr.Saga.EnEspera, tr.Motivo)
	}
	tr = Vencer(d, tr.Saga, tr.Saga.Plazo)
	if got := nombres(tr.Comandos); !slices.Equal(got, []string{"influencer/COMPENSAR#2"}) {
		t.Fatalf("retry commands %v", got)
	}
	s = tr.Saga
	// Attempt 1's failure again: ignored, attempt 2 stays out.
	if tr := Aplicar(d, s, primero, seg(4)); tr.Cambio {
		t.Fatalf("a stale failure of attempt 1 was applied: %s", tr.Motivo)
	}
	// Attempt 2's own failure counts.
	segundo := primero
	segundo.Intento = 2
	if tr := Aplicar(d, s, segundo, seg(4)); !tr.Cambio || !tr.Saga.EnEspera || tr.Saga.Pasos[0].IntentoCompensacion != 2 {
		t.Fatalf("attempt 2's failure: cambio %v en espera %v (%s)", tr.Cambio, tr.Saga.EnEspera, tr.Motivo)
	}
	// A late success of attempt 1 is as good as attempt 2's.
	if tr := Aplicar(d, s, ok("influencer", Compensar), seg(4)); tr.Saga.Estado != Compensada {
		t.Fatalf("late success of attempt 1: %s (%s)", tr.Saga.Estado, tr.Motivo)
	}
}

func TestReintentarSoloDesdeCompensacionFallida(t *testing.T) {
	d := Campana()
	s := Nueva(d, "s", nil, t0).Saga
	if _, err := Reintentar(d, s, t0); !errors.Is(err, ErrNoReintentable) {
		t.Fatalf("err %v", err)
	}
}

func TestComandoLlevaEntradaYSalidasPrevias(t *testing.T) {
	d := Campana()
	s := Nueva(d, "s", json.RawMessage(`{"nombre":"x"}`), t0).Saga
	tr := Aplicar(d, s, ok("influencer", Ejecutar), seg(1))
	var datos struct {
		Entrada map[string]any            `json:"entrada"`
		Previos map[string]map[string]any `json:"previos"`
	}
	if err := json.Unmarshal(tr.Comandos[0].Datos, &datos); err != nil {
		t.Fatal(err)
	}
	if datos.Entrada["nombre"] != "x" || datos.Previos["influencer"]["hecho"] != "influencer" {
		t.Fatalf("datos %s", tr.Comandos[0].Datos)
	}
	// A compensation also carries the step's own output.
	tr = Aplicar(d, tr.Saga, fallo("marca", Ejecutar), seg(2))
	if err := json.Unmarshal(tr.Comandos[0].Datos, &datos); err != nil || datos.Previos["influencer"] == nil {
		t.Fatalf("compensation datos %s", tr.Comandos[0].Datos)
	}
}

func TestSegundoFlujoVersion1CompletaYCompensaEnSecuencia(t *testing.T) {
	d := LanzarCampaniaCompletaV1()
	s := Nueva(d, "s", nil, t0).Saga
	for i, p := range d.Pasos[:2] {
		s = Aplicar(d, s, ok(p.Nombre, Ejecutar), seg(i+1)).Saga
	}
	s = Aplicar(d, s, fallo("inicializar_tracking_conversiones", Ejecutar), seg(3)).Saga
	for _, p := range []string{"inicializar_tracking_conversiones", "configurar_comisiones_campania", "solicitar_afiliados_elegibles"} {
		tr := Aplicar(d, s, ok(p, Compensar), seg(4))
		if !tr.Cambio {
			t.Fatalf("compensation of %s ignored: %s", p, tr.Motivo)
		}
		s = tr.Saga
	}
	if s.Estado != Compensada || s.Pasos[3].Estado != PasoPendiente {
		t.Fatalf("estado %s, last step %s", s.Estado, s.Pasos[3].Estado)
	}
	if s.Pasos[2].Servicio != "tracking" {
		t.Fatal("conversion tracking must be served by tracking")
	}
}

func TestDefinicionesValidasYComoDatos(t *testing.T) {
	for tipo, d := range CatalogoPorDefecto() {
		if err := d.Validar(); err != nil {
			t.Fatalf("%s: %v", tipo, err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Leer(strings.NewReader(string(b)))
		sinAnteriores := *d
		sinAnteriores.anteriores = nil
		if err != nil || !reflect.DeepEqual(&sinAnteriores, d2) {
			t.Fatalf("%s: JSON round trip: %v", tipo, err)
		}
	}
	malo := `{"tipo":"","version":0,"pasos":[{"nombre":"a","plazo":"1s","intentos":0},{"nombre":"a"}],"intentos_compensacion":0,"plazo_compensacion":"1s","espera_compensacion":"1s","espera_maxima":"1s"}`
	_, err := Leer(strings.NewReader(malo))
	for _, want := range []string{"tipo vacío", "version 0", "repetido", "servicio, comando", "intentos >= 1", "compensación"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if _, err := CatalogoPorDefecto().Buscar("otro"); !errors.Is(err, ErrTipoDesconocido) {
		t.Fatal(err)
	}
}
