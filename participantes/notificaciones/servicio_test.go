package main

import (
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

func TestPreparaUnaNotificacionPorCanalYLaCompensacionLasCancela(t *testing.T) {
	for _, almacen := range pt.Almacenes() {
		t.Run(almacen, func(t *testing.T) {
			e := pt.Nuevo(t)
			p := e.Arrancar(t, e.Config(t, "notificaciones", almacen), servicio())
			es := e.EscucharRespuestas(t)
			saga := "saga-" + pt.Aleatorio(4)
			entrada := eventos.EntradaLanzamiento{CampaniaID: "c-1", Nombre: "L", CanalesNotificacion: []string{"email", "push", "email"}}
			previos := map[string]any{"solicitar_afiliados_elegibles": map[string]any{"afiliados_reservados": 9}}
			r := e.Pedir(t, es, "notificaciones", pt.Comando(saga, "lanzar-campania-completa", "preparar_notificaciones_campania", "PrepararNotificacionesCampania", eventos.Ejecutar, entrada, previos))
			var salida salidaPreparar
			pt.Datos(t, r, &salida)
			if !r.Exito || strings.Join(salida.Canales, ",") != "email,push" || salida.Destinatarios != 9 {
				t.Fatalf("preparar: %+v", r.Respuesta)
			}
			pt.Activos(t, p, saga, 2)
			r = e.Pedir(t, es, "notificaciones", pt.Comando(saga, "lanzar-campania-completa", "preparar_notificaciones_campania", "CancelarNotificacionesCampania", eventos.Compensar, entrada, previos))
			if !r.Exito || r.Datos != `{"notificaciones_canceladas":2}` {
				t.Fatalf("cancelar: %+v", r.Respuesta)
			}
			for _, ef := range pt.Activos(t, p, saga, 0) {
				if ef.Estado != cancelada {
					t.Fatalf("the notification must stay, cancelled: %+v", ef)
				}
			}
		})
	}
}

func TestCanalDesconocidoEsUnFalloDeNegocioSinEfecto(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "notificaciones", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	saga := "saga-" + pt.Aleatorio(4)
	entrada := eventos.EntradaLanzamiento{Nombre: "L", CanalesNotificacion: []string{"email", "paloma"}}
	r := e.Pedir(t, es, "notificaciones", pt.Comando(saga, "lanzar-campania-completa", "preparar_notificaciones_campania", "PrepararNotificacionesCampania", eventos.Ejecutar, entrada, nil))
	if r.Exito || !strings.Contains(eventos.Valor(r.Error), `canal de notificación "paloma" desconocido`) {
		t.Fatalf("%+v", r.Respuesta)
	}
	if efs := pt.Activos(t, p, saga, 0); len(efs) != 0 {
		t.Fatalf("a refused command left notifications: %+v", efs)
	}
}
