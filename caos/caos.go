package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/coordinador/saga"
)

// tasaSinPlan is the POST rate when there is no plan to spread the load over.
const tasaSinPlan = 20.0

// ejecutar drives the load and the fault plan at once, waits for every saga
// to end, and checks the stores.
func ejecutar(ctx context.Context, cfg config, m *mundo, b *bitacora) (*resultado, error) {
	plan := planDeFallas(cfg.Plan, m)
	tasa := cfg.Tasa
	if tasa == 0 {
		tasa = tasaSinPlan
		if d := duracionEstimada(plan, m); d > 0 {
			// Spread the sagas over the plan, so that every fault hits
			// sagas in flight and new ones keep arriving after the last.
			tasa = float64(cfg.N) / d.Seconds()
		}
	}
	imprimirPlan(b, plan)
	pedidos := generarPedidos(cfg.N, cfg.Lanzamientos, cfg.Semilla, cfg.Namespace)
	apis := []string{
		fmt.Sprintf("http://127.0.0.1:%d", cfg.PuertosAPI[0]),
		fmt.Sprintf("http://127.0.0.1:%d", cfg.PuertosAPI[1]),
	}
	b.Printf("carga: %d sagas a %.1f/s (%.0f%% lanzar-campania-completa) repartidas entre %s, cada POST con Idempotency-Key y reintentos",
		cfg.N, tasa, 100*cfg.Lanzamientos, strings.Join(apis, " y "))

	l := nuevoLanzador(apis, cfg.PlazoPost, b)
	inicio := time.Now()
	var ventanas []ventana
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ventanas = correrPlan(ctx, b, plan)
	}()
	iniciadas := l.Correr(ctx, pedidos, tasa)
	finCarga := time.Now()
	b.Printf("carga terminada en %.1fs: %d aceptadas, %d reintentos de POST", finCarga.Sub(inicio).Seconds(), l.aceptadas.Load(), l.reintentos.Load())
	if err := guardarIniciadas(filepath.Join(cfg.Estado, "sagas.tsv"), iniciadas); err != nil {
		b.Printf("guardar sagas.tsv: %v", err)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrumpido: %w", err)
	}
	for _, v := range ventanas {
		if v.ErrRomper != nil {
			return nil, fmt.Errorf("la falla %q no se inyectó: %w", v.Falla, v.ErrRomper)
		}
		if v.Err != nil {
			return nil, fmt.Errorf("el plan no pudo reparar %q: %w", v.Falla, v.Err)
		}
	}
	if len(ventanas) < len(plan) {
		return nil, fmt.Errorf("el plan se interrumpió tras %d de %d fallas", len(ventanas), len(plan))
	}

	// The bound runs from the later of the last repair and the last 202:
	// sagas started after the last fault need their ordinary time too.
	finFallas := inicio
	if len(ventanas) > 0 {
		finFallas = ventanas[len(ventanas)-1].Fin
	}
	referencia := finFallas
	for _, r := range iniciadas {
		if r.Aceptado.After(referencia) {
			referencia = r.Aceptado
		}
	}
	limite := referencia.Add(cfg.Cota)

	db, err := sql.Open("mysql", m.dsn(baseCoord))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ids := map[string]bool{}
	for _, r := range iniciadas {
		if r.Err == nil {
			ids[r.ID] = true
		}
	}
	b.Printf("esperando a que las %d sagas terminen y el outbox se vacíe (cota %s desde %s)", len(ids), cfg.Cota, referencia.Format("15:04:05"))
	terminadas, pendientes, err := esperarTerminales(ctx, db, ids, limite, b)
	if err != nil {
		return nil, err
	}
	// Late redeliveries of commands for ended sagas must change nothing:
	// give them a moment before reading the participants' tables.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	// The Pulsar client's own warnings go to a file, not to the summary.
	logPulsar, err := os.OpenFile(filepath.Join(m.dirLogs, "caos-pulsar.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logPulsar.Close()
	logger := slog.New(slog.NewTextHandler(logPulsar, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := comprobar(ctx, m, db, iniciadas, ventanas, pendientes, logger)
	if err != nil {
		return nil, err
	}
	if err := comprobarHistorias(ctx, m, db, ids, res, logger); err != nil {
		return nil, err
	}
	for _, v := range ventanas {
		res.API = append(res.API, l.registro.en(v.Inicio, v.Fin))
	}
	res.APITotal = l.registro.en(inicio, time.Now())
	medirRecuperacion(ctx, db, ventanas, b)
	if esPlanCluster(cfg.Plan) {
		medirDetencion(ctx, db, ventanas, b)
	}
	if cfg.Plan == planDesfase {
		comprobarReintentosPorPlazo(ctx, db, res)
	}
	res.Plan = ventanas
	res.TasaObjetivo = tasa
	res.Inicio, res.FinCarga, res.FinFallas, res.Referencia, res.Cota = inicio, finCarga, finFallas, referencia, cfg.Cota
	res.Terminadas = terminadas
	res.ReintentosPOST = l.reintentos.Load()
	res.Caidas = m.Caidas()
	res.completar(len(m.procesos))
	return res, nil
}

// esperarTerminales polls the coordinator's store until every saga in ids is
// terminal and the outbox is empty, or limite passes. It returns when that
// happened (the zero time if it did not) and, then, how many sagas were
// still not terminal at the limit.
func esperarTerminales(ctx context.Context, db *sql.DB, ids map[string]bool, limite time.Time, b *bitacora) (time.Time, int, error) {
	ultimoAviso := time.Now()
	for {
		pendientes, outbox, err := contarPendientes(ctx, db, ids)
		if err == nil && pendientes == 0 && outbox == 0 {
			b.Printf("todas las sagas terminales y outbox vacío")
			return time.Now(), 0, nil
		}
		if time.Now().After(limite) {
			b.Printf("cota vencida: %d sagas sin terminar, %d filas en el outbox (err %v)", pendientes, outbox, err)
			return time.Time{}, pendientes, nil
		}
		if time.Since(ultimoAviso) >= 10*time.Second {
			ultimoAviso = time.Now()
			if err != nil {
				b.Printf("esperando: error leyendo el almacén del coordinador: %v", err)
			} else {
				b.Printf("esperando: %d sagas sin terminar, %d filas en el outbox (quedan %s de cota)", pendientes, outbox, time.Until(limite).Round(time.Second))
			}
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return time.Time{}, 0, fmt.Errorf("interrumpido: %w", ctx.Err())
		}
	}
}

// contarPendientes counts the sagas of ids not terminal (missing ones
// included) and the outbox rows.
func contarPendientes(ctx context.Context, db *sql.DB, ids map[string]bool) (int, int, error) {
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	filas, err := db.QueryContext(qctx, "SELECT saga_id, estado FROM sagas")
	if err != nil {
		return len(ids), -1, err
	}
	defer filas.Close()
	terminales := 0
	for filas.Next() {
		var id, estado string
		if err := filas.Scan(&id, &estado); err != nil {
			return len(ids), -1, err
		}
		if ids[id] && esTerminal(estado) {
			terminales++
		}
	}
	if err := filas.Err(); err != nil {
		return len(ids), -1, err
	}
	var outbox int
	if err := db.QueryRowContext(qctx, "SELECT COUNT(*) FROM outbox").Scan(&outbox); err != nil {
		return len(ids) - terminales, -1, err
	}
	return len(ids) - terminales, outbox, nil
}

func esTerminal(estado string) bool {
	return saga.Estado(estado).Terminal()
}
