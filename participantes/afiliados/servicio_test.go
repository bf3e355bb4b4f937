package main

import (
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

func TestReservaLosAfiliadosElegiblesYLaCompensacionLosLibera(t *testing.T) {
	for _, almacen := range pt.Almacenes() {
		t.Run(almacen, func(t *testing.T) {
			e := pt.Nuevo(t)
			p := e.Arrancar(t, e.Config(t, "afiliados", almacen), servicio())
			es := e.EscucharRespuestas(t)
			saga := "saga-" + pt.Aleatorio(4)
			entrada := eventos.EntradaLanzamiento{CampaniaID: "c-1", Nombre: "Lanzamiento", CriteriosAfiliados: eventos.CriteriosAfiliados{
				Categorias: []string{"moda", "tecnologia"}, MinSeguidores: 50000, Maximo: 4,
			}}
			r := e.Pedir(t, es, "afiliados", pt.Comando(saga, "lanzar-campania-completa", "solicitar_afiliados_elegibles", "SolicitarAfiliadosElegibles", eventos.Ejecutar, entrada, nil))
			var salida salidaSolicitar
			pt.Datos(t, r, &salida)
			if !r.Exito || salida.AfiliadosReservados != 4 || len(salida.Afiliados) != 4 {
				t.Fatalf("solicitar: %+v", r.Respuesta)
			}
			for i, a := range salida.Afiliados {
				if (a.Categoria != "moda" && a.Categoria != "tecnologia") || a.Seguidores < 50000 || (i > 0 && a.Seguidores > salida.Afiliados[i-1].Seguidores) {
					t.Fatalf("affiliate %d does not meet the criteria or the order: %+v", i, salida.Afiliados)
				}
			}
			pt.Activos(t, p, saga, 4)
			r = e.Pedir(t, es, "afiliados", pt.Comando(saga, "lanzar-campania-completa", "solicitar_afiliados_elegibles", "LiberarAfiliadosElegibles", eventos.Compensar, entrada, nil))
			if !r.Exito || r.Datos != `{"afiliados_liberados":4}` {
				t.Fatalf("liberar: %+v", r.Respuesta)
			}
			for _, ef := range pt.Activos(t, p, saga, 0) {
				if ef.Estado != liberado {
					t.Fatalf("the reservation must stay, released: %+v", ef)
				}
			}
		})
	}
}

func TestSinAfiliadosElegiblesEsUnFalloDeNegocioSinEfecto(t *testing.T) {
	e := pt.Nuevo(t)
	p := e.Arrancar(t, e.Config(t, "afiliados", "sqlite"), servicio())
	es := e.EscucharRespuestas(t)
	saga := "saga-" + pt.Aleatorio(4)
	entrada := eventos.EntradaLanzamiento{Nombre: "X", CriteriosAfiliados: eventos.CriteriosAfiliados{SegmentoAudiencia: "gamers", MinSeguidores: 10_000_000}}
	r := e.Pedir(t, es, "afiliados", pt.Comando(saga, "lanzar-campania-completa", "solicitar_afiliados_elegibles", "SolicitarAfiliadosElegibles", eventos.Ejecutar, entrada, nil))
	if r.Exito || !strings.Contains(eventos.Valor(r.Error), "no hay afiliados elegibles") {
		t.Fatalf("%+v", r.Respuesta)
	}
	pt.Activos(t, p, saga, 0)
}

func TestElRegistroSembradoCubreCadaSegmentoYCategoria(t *testing.T) {
	s := registro()
	if len(s.Filas) != 36 {
		t.Fatalf("%d affiliates seeded", len(s.Filas))
	}
	vistos := map[string]bool{}
	for _, f := range s.Filas {
		vistos[f[2].(string)+"/"+f[3].(string)] = true
	}
	if len(vistos) != 36 {
		t.Fatalf("%d segment/category pairs, want 36", len(vistos))
	}
}
