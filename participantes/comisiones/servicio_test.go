package main

import (
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

func TestConfiguraLaComisionYLaCompensacionLaRevierte(t *testing.T) {
	for _, almacen := range pt.Almacenes() {
		t.Run(almacen, func(t *testing.T) {
			e := pt.Nuevo(t)
			p := e.Arrancar(t, e.Config(t, "comisiones", almacen), servicio())
			es := e.EscucharRespuestas(t)
			saga := "saga-" + pt.Aleatorio(4)
			entrada := eventos.EntradaLanzamiento{CampaniaID: "c-1", Nombre: "L", Presupuesto: 1000, Moneda: "EUR", Comision: eventos.Comision{Tipo: "porcentaje", Valor: 12.5}}
			previos := map[string]any{"solicitar_afiliados_elegibles": map[string]any{"afiliados_reservados": 5}}
			r := e.Pedir(t, es, "comisiones", pt.Comando(saga, "lanzar-campania-completa", "configurar_comisiones_campania", "ConfigurarComisionesCampania", eventos.Ejecutar, entrada, previos))
			var salida salidaConfigurar
			pt.Datos(t, r, &salida)
			if !r.Exito || salida != (salidaConfigurar{Tipo: "porcentaje", Valor: 12.5, Moneda: "EUR", Afiliados: 5}) {
				t.Fatalf("configurar: %+v %+v", r.Respuesta, salida)
			}
			pt.Activos(t, p, saga, 1)
			r = e.Pedir(t, es, "comisiones", pt.Comando(saga, "lanzar-campania-completa", "configurar_comisiones_campania", "RevertirComisionesCampania", eventos.Compensar, entrada, previos))
			if !r.Exito || r.Datos != `{"comisiones_revertidas":1}` {
				t.Fatalf("revertir: %+v", r.Respuesta)
			}
			if efs := pt.Activos(t, p, saga, 0); len(efs) != 1 || efs[0].Estado != revertida {
				t.Fatalf("the configuration must stay, reverted: %+v", efs)
			}
		})
	}
}

func TestComisionNoValidaEsUnFalloDeNegocioYSinComisionSeUsaLaDeDefecto(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "comisiones", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	for _, c := range []struct {
		comision eventos.Comision
		error    string
	}{
		{eventos.Comision{Tipo: "porcentaje", Valor: 150}, "un porcentaje debe estar en (0, 100]"},
		{eventos.Comision{Tipo: "fijo", Valor: 5000}, "supera el presupuesto"},
		{eventos.Comision{Tipo: "trueque", Valor: 1}, `tipo de comisión "trueque"`},
		{eventos.Comision{}, ""},
	} {
		saga := "saga-" + pt.Aleatorio(4)
		entrada := eventos.EntradaLanzamiento{Nombre: "L", Presupuesto: 1000, Comision: c.comision}
		r := e.Pedir(t, es, "comisiones", pt.Comando(saga, "lanzar-campania-completa", "configurar_comisiones_campania", "ConfigurarComisionesCampania", eventos.Ejecutar, entrada, nil))
		if c.error == "" {
			var salida salidaConfigurar
			pt.Datos(t, r, &salida)
			if !r.Exito || !salida.PorDefecto || salida.Valor != porcentajePorDefecto {
				t.Errorf("no commission in the input: %+v", r.Respuesta)
			}
			pt.Activos(t, p, saga, 1)
			continue
		}
		if r.Exito || !strings.Contains(eventos.Valor(r.Error), c.error) {
			t.Errorf("%+v: %+v", c.comision, r.Respuesta)
		}
		pt.Activos(t, p, saga, 0)
	}
}
