package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
)

// TestRetencionAcotaLasFilasYLosArchivosConCargaConstante is the 24-hour
// soak with the ages shortened: sagas start at a steady rate while a
// retention of one second purges finished sagas and their log files every
// 100 ms. What the store and the log directory hold stops growing at about
// rate × (retention + interval + a saga's duration), far below what was
// started, and drains to nothing once the load stops.
func TestRetencionAcotaLasFilasYLosArchivosConCargaConstante(t *testing.T) {
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntorno(t, tipo)
		logs := t.TempDir()
		e.vars["SAGAS_LOG_DIR"] = logs
		e.vars["SAGAS_RETENTION"] = "1s"
		e.vars["SAGAS_RETENTION_INTERVAL"] = "100ms"
		e.participantes(servicios, siempreBien)
		e.coordinadorEnProceso("r1")
		m := e.motor()
		db := e.abrir()

		const porTanda, tanda, duracion = 5, 100 * time.Millisecond, 6 * time.Second // 50 sagas/s
		cota := 50 * 3                                                               // rate × (1s + 0.1s + ~1s of saga and slack)
		contar := func() (sagas, archivos int) {
			r, err := db.Contar(context.Background(), almacen.Filtro{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range r {
				sagas += n
			}
			entradas, _ := os.ReadDir(logs)
			for _, en := range entradas {
				if strings.HasPrefix(en.Name(), "saga_") {
					archivos++
				}
			}
			return sagas, archivos
		}
		var iniciadas, maxSagas, maxArchivos int
		inicio := time.Now()
		for time.Since(inicio) < duracion {
			for range porTanda {
				e.iniciar(m, saga.TipoCampana, `{"nombre":"soak"}`)
				iniciadas++
			}
			if time.Since(inicio) > 2*time.Second { // past the first retention
				s, a := contar()
				maxSagas, maxArchivos = max(maxSagas, s), max(maxArchivos, a)
			}
			time.Sleep(tanda)
		}
		t.Logf("%s: %d sagas started in %s; at most %d sagas and %d per-saga files held (bound %d)", tipo, iniciadas, duracion, maxSagas, maxArchivos, cota)
		if maxSagas > cota || maxArchivos > cota {
			t.Errorf("held up to %d sagas and %d files with a bound of %d: retention does not keep up", maxSagas, maxArchivos, cota)
		}
		if maxSagas >= iniciadas/2 {
			t.Errorf("held %d of %d sagas: nothing was purged", maxSagas, iniciadas)
		}
		limite := time.Now().Add(15 * time.Second)
		for {
			s, a := contar()
			if s == 0 && a == 0 {
				break
			}
			if time.Now().After(limite) {
				t.Fatalf("after the load: %d sagas and %d files left", s, a)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if b, err := os.ReadFile(filepath.Join(logs, "sagas_general.log")); err != nil || len(b) == 0 {
			t.Errorf("the general log is kept (rotation bounds it): %v", err)
		}
	})
}
