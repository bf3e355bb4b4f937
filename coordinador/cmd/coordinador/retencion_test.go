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
// 100 ms. At every sample no finished saga and no per-saga log file is
// older than the retention plus the interval plus slack for one purge, so
// what is held stays bounded by rate × (retention + interval + a saga's
// duration) at whatever rate the machine reaches; it drains to nothing once
// the load stops.
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

		const porTanda, tanda, duracion = 5, 100 * time.Millisecond, 6 * time.Second // up to 50 sagas/s
		// A finished saga, and its log file, must be gone once it is older
		// than the retention plus the interval plus slack for one purge
		// under load. Checked at every sample, this holds whatever rate the
		// machine reaches, unlike a fixed bound on the rows held.
		const retencion, intervalo, holgura = time.Second, 100 * time.Millisecond, 2 * time.Second
		vencidos := func() (sagas, archivos, retenidas int) {
			limite := time.Now().Add(-(retencion + intervalo + holgura))
			ss, err := db.Listar(context.Background(), almacen.Filtro{Estados: []saga.Estado{saga.Completada, saga.Compensada}, Limite: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if s.Fin.Before(limite) {
					sagas++
				}
			}
			r, err := db.Contar(context.Background(), almacen.Filtro{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range r {
				retenidas += n
			}
			entradas, _ := os.ReadDir(logs)
			for _, en := range entradas {
				if !strings.HasPrefix(en.Name(), "saga_") {
					continue
				}
				if info, err := en.Info(); err == nil && info.ModTime().Before(limite) {
					archivos++
				}
			}
			return sagas, archivos, retenidas
		}
		var iniciadas, maxVencidas, maxArchivos, muestras, retenidas int
		inicio := time.Now()
		for time.Since(inicio) < duracion {
			for range porTanda {
				e.iniciar(m, saga.TipoCampana, `{"nombre":"soak"}`)
				iniciadas++
			}
			if time.Since(inicio) > 2*time.Second { // past the first retention
				s, a, n := vencidos()
				maxVencidas, maxArchivos, retenidas = max(maxVencidas, s), max(maxArchivos, a), n
				muestras++
			}
			time.Sleep(tanda)
		}
		t.Logf("%s: %d sagas started in %s, %d held at the end; over %d samples at most %d finished sagas and %d per-saga files older than %s",
			tipo, iniciadas, duracion, retenidas, muestras, maxVencidas, maxArchivos, retencion+intervalo+holgura)
		if maxVencidas > 0 || maxArchivos > 0 {
			t.Errorf("%d finished sagas and %d per-saga files outlived the retention: the purge does not keep up", maxVencidas, maxArchivos)
		}
		if retenidas >= iniciadas {
			t.Errorf("held %d of %d sagas at the end of the load: nothing was purged", retenidas, iniciadas)
		}
		limite := time.Now().Add(15 * time.Second)
		for {
			_, _, s := vencidos()
			entradas, _ := os.ReadDir(logs)
			a := 0
			for _, en := range entradas {
				if strings.HasPrefix(en.Name(), "saga_") {
					a++
				}
			}
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
