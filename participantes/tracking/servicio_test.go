package main

import (
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

func TestInicializaAmbosTrackingsYLasCompensacionesLosDesactivan(t *testing.T) {
	for _, almacen := range pt.Almacenes() {
		t.Run(almacen, func(t *testing.T) {
			e := pt.Nuevo(t)
			p := e.Arrancar(t, e.Config(t, "tracking", almacen), servicio())
			es := e.EscucharRespuestas(t)
			casos := []struct {
				tipoSaga, paso, accion, compensacion, tipo string
				entrada                                    any
				previos                                    map[string]any
				afiliados                                  int
			}{
				{"campana", "tracking", "InicializarTracking", "CompensarInicializacionTracking", tipoCampana,
					eventos.EntradaCampana{CampaniaID: "c-1", Nombre: "Verano"}, nil, 0},
				{"lanzar-campania-completa", "inicializar_tracking_conversiones", "InicializarTrackingConversiones", "DesactivarTrackingConversiones", tipoConversiones,
					eventos.EntradaLanzamiento{CampaniaID: "c-2", Nombre: "Lanzamiento"},
					map[string]any{"solicitar_afiliados_elegibles": map[string]any{"afiliados_reservados": 7}, "configurar_comisiones_campania": map[string]any{"tipo": "fijo"}}, 7},
			}
			for _, c := range casos {
				saga := "saga-" + pt.Aleatorio(4)
				r := e.Pedir(t, es, "tracking", pt.Comando(saga, c.tipoSaga, c.paso, c.accion, eventos.Ejecutar, c.entrada, c.previos))
				var salida salidaTracking
				pt.Datos(t, r, &salida)
				if !r.Exito || salida.Tipo != c.tipo || !strings.HasPrefix(salida.CodigoSeguimiento, "TRK-") || salida.AfiliadosRastreados != c.afiliados {
					t.Fatalf("%s: %+v", c.accion, r.Respuesta)
				}
				pt.Activos(t, p, saga, 1)
				r = e.Pedir(t, es, "tracking", pt.Comando(saga, c.tipoSaga, c.paso, c.compensacion, eventos.Compensar, c.entrada, c.previos))
				if !r.Exito || r.Datos != `{"configuraciones_desactivadas":1}` {
					t.Fatalf("%s: %+v", c.compensacion, r.Respuesta)
				}
				if efs := pt.Activos(t, p, saga, 0); len(efs) != 1 || efs[0].Estado != desactivada || efs[0].Clave != c.tipo {
					t.Fatalf("the configuration must stay, deactivated: %+v", efs)
				}
			}
		})
	}
}

func TestSimularFalloTrackingAlcanzaTambienAlTrackingDeConversiones(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "tracking", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	saga := "saga-" + pt.Aleatorio(4)
	entrada := map[string]any{"campania_id": "c-3", "nombre": "X", "simular_fallo": "tracking"}
	r := e.Pedir(t, es, "tracking", pt.Comando(saga, "lanzar-campania-completa", "inicializar_tracking_conversiones", "InicializarTrackingConversiones", eventos.Ejecutar, entrada, nil))
	if r.Exito || !strings.Contains(eventos.Valor(r.Error), "fallo simulado en el paso inicializar_tracking_conversiones") {
		t.Fatalf("%+v", r.Respuesta)
	}
	pt.Activos(t, p, saga, 0)
}

func TestTrackingDeclaraElFalloDeLasSemillas(t *testing.T) {
	if f := servicio().FalloSemilla; f.Tasa != 0.15 || !strings.HasPrefix(f.Mensaje, "Error de base de datos") {
		t.Fatalf("%+v", f)
	}
}
