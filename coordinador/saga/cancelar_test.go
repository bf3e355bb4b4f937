package saga

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

func canc(en time.Time, cambio bool, estado Estado, cmds ...string) entrada {
	return entrada{cancelar: true, en: en, cambio: cambio, estado: estado, cmds: cmds}
}

func TestCancelarEnCursoCompensaLosIniciadosIncluidoElQueEstaEnVuelo(t *testing.T) {
	// The step in flight when the cancel arrives ends in each of the three
	// ways it can: success, failure, silence past its deadline. Each time it
	// is compensated, first, and never retried.
	casos := []struct {
		nombre string
		tardia entrada
	}{
		{"exito tardio", resp(ok("tracking", Ejecutar), seg(4), true, Compensando, "tracking/COMPENSAR#1")},
		{"fallo tardio", resp(fallo("tracking", Ejecutar), seg(4), true, Compensando, "tracking/COMPENSAR#1")},
		{"sin respuesta", venc(seg(2+10), true, Compensando, "tracking/COMPENSAR#1")},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			s := correr(t, Campana(), []entrada{
				resp(ok("influencer", Ejecutar), seg(1), true, EnProgreso, "marca/EJECUTAR#1"),
				resp(ok("marca", Ejecutar), seg(2), true, EnProgreso, "tracking/EJECUTAR#1"),
				// Nothing is sent yet: tracking's outcome is awaited.
				canc(seg(3), true, Compensando),
				canc(seg(3), false, Compensando), // idempotent
				c.tardia,
				resp(ok("tracking", Compensar), seg(13), true, Compensando, "marca/COMPENSAR#1"),
				resp(ok("marca", Compensar), seg(14), true, Compensando, "influencer/COMPENSAR#1"),
				resp(ok("influencer", Compensar), seg(15), true, Cancelada),
				// A late duplicate after the end changes nothing.
				resp(ok("tracking", Ejecutar), seg(16), false, Cancelada),
				canc(seg(17), false, Cancelada), // idempotent once terminal too
			})
			if !slices.Equal(s.Compensaciones, []string{"tracking", "marca", "influencer"}) {
				t.Fatalf("compensaciones %v", s.Compensaciones)
			}
			if s.PasoFallido != "" || s.Error != MotivoCancelacion || !s.Cancelacion.Equal(seg(3)) || !s.Fin.Equal(seg(15)) || !s.Plazo.IsZero() {
				t.Fatalf("paso_fallido %q error %q cancelacion %v fin %v plazo %v", s.PasoFallido, s.Error, s.Cancelacion, s.Fin, s.Plazo)
			}
			if c.nombre == "sin respuesta" && s.Pasos[2].Error != "paso tracking sin respuesta tras la cancelación (timeout)" {
				t.Fatalf("tracking's error reads %q", s.Pasos[2].Error)
			}
			if s.Pasos[2].Intento != 1 {
				t.Fatalf("tracking was retried after the cancel: %d attempts", s.Pasos[2].Intento)
			}
		})
	}
}

func TestCancelarRecienIniciadaEsperaAlPrimerPaso(t *testing.T) {
	s := correr(t, Campana(), []entrada{
		canc(seg(1), true, Compensando),
		resp(ok("influencer", Ejecutar), seg(2), true, Compensando, "influencer/COMPENSAR#1"),
		resp(ok("influencer", Compensar), seg(3), true, Cancelada),
	})
	if !slices.Equal(s.Compensaciones, []string{"influencer"}) || s.PasosEjecutados()[0] != "influencer" {
		t.Fatalf("compensaciones %v ejecutados %v", s.Compensaciones, s.PasosEjecutados())
	}
}

func TestCancelarConGrupoAMediasCompensaLosQueRespondieronYEsperaALosDemas(t *testing.T) {
	s := correr(t, LanzarCampaniaCompleta(), []entrada{
		resp(ok(af, Ejecutar), seg(1), true, EnProgreso, co+"/EJECUTAR#1", tr+"/EJECUTAR#1", no+"/EJECUTAR#1"),
		resp(ok(co, Ejecutar), seg(2), true, EnProgreso),
		// co answered: compensated at once; tr and no are still out.
		canc(seg(3), true, Compensando, co+"/COMPENSAR#1"),
		// no answers while co's compensation runs: it waits its turn.
		resp(ok(no, Ejecutar), seg(4), true, Compensando),
		resp(ok(co, Compensar), seg(5), true, Compensando, no+"/COMPENSAR#1"),
		// The group is not left until tr's outcome is known.
		resp(ok(no, Compensar), seg(6), true, Compensando),
		venc(seg(1+10), true, Compensando, tr+"/COMPENSAR#1"),
		resp(ok(tr, Compensar), seg(12), true, Compensando, af+"/COMPENSAR#1"),
		resp(ok(af, Compensar), seg(13), true, Cancelada),
	})
	if !slices.Equal(s.Compensaciones, []string{co, no, tr, af}) {
		t.Fatalf("compensaciones %v", s.Compensaciones)
	}
	for _, p := range s.Pasos {
		if p.Estado != PasoCompensado {
			t.Fatalf("paso %s en %s", p.Nombre, p.Estado)
		}
	}
}

func TestCancelarDuranteCompensacionNoHaceNada(t *testing.T) {
	d := Campana()
	s := correr(t, d, []entrada{
		resp(ok("influencer", Ejecutar), seg(1), true, EnProgreso, "marca/EJECUTAR#1"),
		resp(fallo("marca", Ejecutar), seg(2), true, Compensando, "marca/COMPENSAR#1"),
		canc(seg(3), false, Compensando),
		resp(ok("marca", Compensar), seg(4), true, Compensando, "influencer/COMPENSAR#1"),
		resp(ok("influencer", Compensar), seg(5), true, Compensada),
	})
	// The failure's outcome stands: the cancel came after it.
	if s.PasoFallido != "marca" || !s.Cancelacion.IsZero() {
		t.Fatalf("paso_fallido %q cancelacion %v", s.PasoFallido, s.Cancelacion)
	}
}

func TestCancelarSagaTerminadaEsNoCancelableConSuEstado(t *testing.T) {
	d := Campana()
	completada := correr(t, d, []entrada{
		resp(ok("influencer", Ejecutar), seg(1), true, EnProgreso, "marca/EJECUTAR#1"),
		resp(ok("marca", Ejecutar), seg(2), true, EnProgreso, "tracking/EJECUTAR#1"),
		resp(ok("tracking", Ejecutar), seg(3), true, Completada),
	})
	compensada := correr(t, d, []entrada{
		resp(fallo("influencer", Ejecutar), seg(1), true, Compensando, "influencer/COMPENSAR#1"),
		resp(ok("influencer", Compensar), seg(2), true, Compensada),
	})
	fallida := compensada.Clone()
	fallida.Estado = CompensacionFallida
	for _, s := range []Saga{completada, compensada, fallida} {
		tr, err := Cancelar(d, s, seg(9))
		var nc *NoCancelableError
		if !errors.As(err, &nc) || !errors.Is(err, ErrNoCancelable) || nc.Estado != s.Estado || nc.SagaID != s.ID {
			t.Fatalf("%s: err %v", s.Estado, err)
		}
		if tr.Cambio || len(tr.Comandos) > 0 {
			t.Fatalf("%s: a refused cancel changed the saga", s.Estado)
		}
	}
}

func TestCompensacionFallidaTrasCancelarTerminaCanceladaAlReintentar(t *testing.T) {
	d := grupoCorto() // one compensation attempt
	s := Nueva(d, "s", json.RawMessage(`{}`), t0).Saga
	pasos := []func(Saga) Transicion{
		func(s Saga) Transicion { return Aplicar(d, s, ok("a", Ejecutar), seg(1)) },
		func(s Saga) Transicion { tr, _ := Cancelar(d, s, seg(2)); return tr },
		func(s Saga) Transicion { return Aplicar(d, s, ok("b", Ejecutar), seg(3)) },
		func(s Saga) Transicion { return Aplicar(d, s, ok("c", Ejecutar), seg(3)) },
		func(s Saga) Transicion { return Aplicar(d, s, fallo("b", Compensar), seg(4)) },
	}
	for _, p := range pasos {
		s = p(s).Saga
	}
	if s.Estado != CompensacionFallida {
		t.Fatalf("estado %s, want COMPENSACION_FALLIDA", s.Estado)
	}
	// Cancelling again is still the same success: the cancel stands.
	if tr, err := Cancelar(d, s, seg(5)); err != nil || tr.Cambio {
		t.Fatalf("second cancel: %v cambio %v", err, tr.Cambio)
	}
	// The retry is attempt 2: attempts are numbered on across rounds.
	rt, err := Reintentar(d, s, seg(6))
	if err != nil || !slices.Equal(nombres(rt.Comandos), []string{"b/COMPENSAR#2"}) {
		t.Fatalf("reintentar: %v %v", err, nombres(rt.Comandos))
	}
	s = rt.Saga
	for _, r := range []Respuesta{ok("b", Compensar), ok("c", Compensar), ok("a", Compensar)} {
		s = Aplicar(d, s, r, seg(7)).Saga
	}
	if s.Estado != Cancelada || !slices.Equal(s.Compensaciones, []string{"b", "c", "a"}) {
		t.Fatalf("estado %s compensaciones %v", s.Estado, s.Compensaciones)
	}
}
