package main

import (
	"fmt"
	"io"

	"github.com/alpespartner/sagas/participantes"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

// TestNotificaALosInfluencersDeLaEntradaYLaCompensacionLosCancela: each
// influencer the input names is notified once (duplicates merged, also
// across the INSERTs of more than filasPorInsert), and the compensation
// cancels them all.
func TestNotificaALosInfluencersDeLaEntradaYLaCompensacionLosCancela(t *testing.T) {
	muchos := make([]eventos.Influencer, 2*filasPorInsert+17)
	for i := range muchos {
		muchos[i] = eventos.Influencer{Nombre: fmt.Sprintf("Influencer %04d", i), Plataforma: "tiktok"}
	}
	casos := []struct {
		nombre      string
		influencers []eventos.Influencer
		want        int // the first want of influencers, in order
	}{
		{"pocos", []eventos.Influencer{{Nombre: "Ana", Plataforma: "instagram"}, {Nombre: "Luis", Plataforma: "tiktok"}, {Nombre: "Ana", Plataforma: "instagram"}}, 2},
		{"en varios INSERT", append(muchos, muchos[filasPorInsert]), len(muchos)},
	}
	for _, almacen := range pt.Almacenes() {
		for _, c := range casos {
			t.Run(almacen+"/"+c.nombre, func(t *testing.T) {
				e := pt.Nuevo(t)
				p := e.Arrancar(t, e.Config(t, "influencer", almacen), servicio())
				es := e.EscucharRespuestas(t)
				saga := "saga-" + pt.Aleatorio(4)
				entrada := eventos.EntradaCampana{Nombre: "Verano", Presupuesto: 5000, Influencers: c.influencers}

				r := e.Pedir(t, es, "influencer", pt.Comando(saga, "campana", "influencer", "NotificarInfluencer", eventos.Ejecutar, entrada, nil))
				var salida salidaNotificar
				pt.Datos(t, r, &salida)
				if !r.Exito || salida.Total != c.want || salida.Origen != "entrada" || len(salida.Notificados) != c.want {
					t.Fatalf("notificar: %+v, total %d", r.Respuesta, salida.Total)
				}
				for i, n := range salida.Notificados {
					if n.Nombre != c.influencers[i].Nombre || n.Plataforma != c.influencers[i].Plataforma {
						t.Fatalf("notificado %d: %+v, quiero %+v", i, n, c.influencers[i])
					}
				}
				pt.Activos(t, p, saga, c.want)

				r = e.Pedir(t, es, "influencer", pt.Comando(saga, "campana", "influencer", "CompensarNotificacionInfluencer", eventos.Compensar, entrada, nil))
				if want := fmt.Sprintf(`{"notificaciones_canceladas":%d}`, c.want); !r.Exito || r.Datos != want {
					t.Fatalf("compensar: %+v; quiero %s", r.Respuesta, want)
				}
				for _, ef := range pt.Activos(t, p, saga, 0) {
					if ef.Estado != cancelada || ef.Tabla != "notificaciones_influencer" {
						t.Fatalf("the notification must stay, cancelled: %+v", ef)
					}
				}
			})
		}
	}
}

func TestEventoLegadoSinInfluencersEligeDelRegistroPorSegmento(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "influencer", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	casos := []struct {
		segmento string
		want     []string
	}{
		{"deportes", []string{"Ana Fit", "Javier Runner"}},
		{"jovenes", []string{"Valentina Estilo", "Mateo Gamer", "Lucía Moda"}},
		{"astronautas", []string{"Valentina Estilo", "Carlos Tech", "Mateo Gamer"}},
	}
	for _, c := range casos {
		saga := "saga-" + pt.Aleatorio(4)
		entrada := eventos.EntradaCampana{CampaniaID: "c-1", Nombre: "Legada", SegmentoAudiencia: c.segmento}
		r := e.Pedir(t, es, "influencer", pt.Comando(saga, "campana", "influencer", "NotificarInfluencer", eventos.Ejecutar, entrada, nil))
		var salida salidaNotificar
		pt.Datos(t, r, &salida)
		var nombres []string
		for _, n := range salida.Notificados {
			nombres = append(nombres, n.Nombre)
		}
		if !r.Exito || salida.Origen != "registro" || strings.Join(nombres, ",") != strings.Join(c.want, ",") {
			t.Errorf("segmento %s: notified %v (origen %s), want %v", c.segmento, nombres, salida.Origen, c.want)
		}
		pt.Activos(t, p, saga, len(c.want))
	}
}

func TestInfluencerSinPlataformaEsUnFalloDeNegocioSinEfecto(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "influencer", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	saga := "saga-" + pt.Aleatorio(4)
	entrada := eventos.EntradaCampana{Nombre: "X", Influencers: []eventos.Influencer{{Nombre: "Ana", Plataforma: "instagram"}, {Nombre: "Sin"}}}
	r := e.Pedir(t, es, "influencer", pt.Comando(saga, "campana", "influencer", "NotificarInfluencer", eventos.Ejecutar, entrada, nil))
	if r.Exito || !strings.Contains(eventos.Valor(r.Error), "plataforma") {
		t.Fatalf("%+v", r.Respuesta)
	}
	if efs := pt.Activos(t, p, saga, 0); len(efs) != 0 {
		t.Fatalf("a refused notification left rows: %+v", efs)
	}
}

func TestRunValidaLaConfiguracionYLaDeclaracion(t *testing.T) {
	if err := participantes.Correr(t.Context(), []string{"influencer", "-check-config"}, func(string) string { return "" }, io.Discard, servicio()); err != nil {
		t.Fatal(err)
	}
	err := participantes.Correr(t.Context(), []string{"influencer", "-check-config"}, func(k string) string {
		return map[string]string{"SAGAS_FALLOS": "siempre"}[k]
	}, io.Discard, servicio())
	if err == nil || !strings.Contains(err.Error(), `SAGAS_FALLOS="siempre": allowed values are no, semillas`) {
		t.Fatalf("%v", err)
	}
}
