package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

func TestNotificaALaMarcaYLaCompensacionLaCancela(t *testing.T) {
	for _, almacen := range pt.Almacenes() {
		t.Run(almacen, func(t *testing.T) {
			e := pt.Nuevo(t)
			p := e.Arrancar(t, e.Config(t, "marca", almacen), servicio())
			es := e.EscucharRespuestas(t)
			saga := "saga-" + pt.Aleatorio(4)
			entrada := eventos.EntradaCampana{Nombre: "Verano", Presupuesto: 5000, Marca: &eventos.Marca{IDMarca: "b-9", NombreMarca: "Bebidas Sol"}}

			r := e.Pedir(t, es, "marca", pt.Comando(saga, "campana", "marca", "NotificarMarca", eventos.Ejecutar, entrada, nil))
			var salida salidaNotificar
			pt.Datos(t, r, &salida)
			if !r.Exito || salida.Marca.IDMarca != "b-9" || salida.Origen != "entrada" {
				t.Fatalf("notificar: %+v", r.Respuesta)
			}
			pt.Activos(t, p, saga, 1)
			r = e.Pedir(t, es, "marca", pt.Comando(saga, "campana", "marca", "CompensarNotificacionMarca", eventos.Compensar, entrada, nil))
			if !r.Exito || r.Datos != `{"notificaciones_canceladas":1}` {
				t.Fatalf("compensar: %+v", r.Respuesta)
			}
			if efs := pt.Activos(t, p, saga, 0); len(efs) != 1 || efs[0].Estado != cancelada || efs[0].Clave != "b-9" {
				t.Fatalf("the notification must stay, cancelled: %+v", efs)
			}
		})
	}
}

func TestEventoLegadoSinMarcaEligeDelRegistroPorCanal(t *testing.T) {
	e := pt.Nuevo(t)
	e.Arrancar(t, e.Config(t, "marca", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	for canal, posibles := range map[string][]string{"influencers": {"m-005", "m-008"}, "email": {"m-004"}, "radio": {"m-001", "m-002", "m-003", "m-004", "m-005", "m-006", "m-007", "m-008"}} {
		saga := "saga-" + pt.Aleatorio(4)
		entrada := eventos.EntradaCampana{CampaniaID: "c-1", Nombre: "Legada", CanalPublicidad: canal}
		r := e.Pedir(t, es, "marca", pt.Comando(saga, "campana", "marca", "NotificarMarca", eventos.Ejecutar, entrada, nil))
		var salida salidaNotificar
		pt.Datos(t, r, &salida)
		found := false
		for _, id := range posibles {
			found = found || salida.Marca.IDMarca == id
		}
		if !r.Exito || salida.Origen != "registro" || !found || salida.Marca.NombreMarca == "" {
			t.Errorf("canal %s: %+v, want one of %v", canal, salida, posibles)
		}
	}
}

// Two instances of marca share the subscription and the store: every one
// of 1,000 commands has exactly one effect, whichever instance ran it.
func TestDosInstanciasProcesanMilComandosConUnEfectoCadaUno(t *testing.T) {
	const n = 1000
	for _, almacen := range pt.Almacenes() {
		t.Run(almacen, func(t *testing.T) {
			e := pt.Nuevo(t)
			cfg := e.Config(t, "marca", almacen)
			a := e.Arrancar(t, cfg, servicio())
			b := e.Arrancar(t, cfg, servicio())
			es := e.EscucharRespuestas(t)

			cmds := make([]eventos.Comando, n)
			for i := range cmds {
				entrada := eventos.EntradaCampana{Nombre: fmt.Sprintf("c%d", i), Marca: &eventos.Marca{IDMarca: "m", NombreMarca: "M"}}
				cmds[i] = pt.Comando(fmt.Sprintf("saga-%04d-%s", i, pt.Aleatorio(3)), "campana", "marca", "NotificarMarca", eventos.Ejecutar, entrada, nil)
			}
			inicio := time.Now()
			e.Publicar(t, "marca", cmds...)
			publicado := time.Since(inicio)

			// A redelivery (e.g. when the second consumer joins) may repeat a
			// reply; it must be the same reply.
			porSaga := map[string]pt.Recibida{}
			total := 0
			for len(porSaga) < n {
				r := es.Una(t, time.Minute)
				total++
				if !r.Exito {
					t.Fatalf("failed: %+v", r.Respuesta)
				}
				if previa, ok := porSaga[r.SagaID]; ok && !reflect.DeepEqual(previa, r) {
					t.Fatalf("two different replies for saga %s", r.SagaID)
				}
				porSaga[r.SagaID] = r
			}
			t.Logf("%s: %d commands published in %v, all replied in %v (%d replies)", almacen, n, publicado, time.Since(inicio), total)

			db := e.AbrirBD(t, cfg)
			var efectos, inbox int
			if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM notificaciones_marca WHERE estado = 'ENVIADA'").Scan(&efectos); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM inbox").Scan(&inbox); err != nil {
				t.Fatal(err)
			}
			if efectos != n || inbox != n {
				t.Fatalf("%d effects and %d inbox rows, want %d of each", efectos, inbox, n)
			}
			ea, eb := procesados(t, a), procesados(t, b)
			t.Logf("instance a ran %v (mean %v per command), instance b ran %v (mean %v)", ea, media(t, a), eb, media(t, b))
			if ea == 0 || eb == 0 || ea+eb != n {
				t.Fatalf("instances ran %v + %v effects, want both > 0 and %d in all", ea, eb, n)
			}
		})
	}
}

// procesados is the number of actions a participant ran (not re-sent).
func procesados(t *testing.T, p *participantes.Participante) float64 {
	t.Helper()
	familias, err := p.Registro().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range familias {
		if f.GetName() != "sagas_participante_comandos_total" {
			continue
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "resultado" && l.GetValue() == participantes.ResultadoExito {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total
	}
	return 0
}

// media is the mean time a participant took per command.
func media(t *testing.T, p *participantes.Participante) time.Duration {
	t.Helper()
	familias, err := p.Registro().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var suma float64
	var n uint64
	for _, f := range familias {
		if f.GetName() == "sagas_participante_duracion_seconds" {
			for _, m := range f.GetMetric() {
				suma, n = suma+m.GetHistogram().GetSampleSum(), n+m.GetHistogram().GetSampleCount()
			}
		}
	}
	if n == 0 {
		return 0
	}
	return time.Duration(suma / float64(n) * float64(time.Second)).Round(time.Millisecond / 10)
}

func TestRunValidaLaConfiguracionYLaDeclaracion(t *testing.T) {
	if err := participantes.Correr(t.Context(), []string{"marca", "-check-config"}, func(string) string { return "" }, io.Discard, servicio()); err != nil {
		t.Fatal(err)
	}
	err := participantes.Correr(t.Context(), []string{"marca", "-check-config"}, func(k string) string {
		return map[string]string{"SAGAS_STORAGE_TYPE": "postgres"}[k]
	}, io.Discard, servicio())
	if err == nil || !strings.Contains(err.Error(), `SAGAS_STORAGE_TYPE="postgres": allowed values are sqlite, mysql`) {
		t.Fatalf("%v", err)
	}
}

func TestMarcaDeclaraElFalloDeLasSemillas(t *testing.T) {
	if f := servicio().FalloSemilla; f.Tasa != 0.10 || !strings.HasPrefix(f.Mensaje, "Error de notificación") {
		t.Fatalf("%+v", f)
	}
}
