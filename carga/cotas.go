package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/go-sql-driver/mysql"
)

// pasosDe is the number of steps of each flow.
var pasosDe = map[string]int{"campana": 3, "lanzar-campania-completa": 4}

// medirCotas measures the broker and database bounds and the ratios.
func medirCotas(ctx context.Context, o opciones, client pulsar.Client, admin *bus.Admin, topo eventos.Topologia, r *Resultado) (*Cotas, error) {
	k := float64(pasosDe[o.flujo])
	terminadas := float64(r.Completadas + r.Compensadas)
	c := &Cotas{}
	if terminadas > 0 {
		// A completed saga: a command and a reply per step, one outcome. A
		// compensated one (failure forced at the last step) also sends a
		// compensation and gets its reply for every step.
		c.MensajesPorSaga = (float64(r.Completadas)*(2*k+1) + float64(r.Compensadas)*(4*k+1)) / terminadas
		// Design estimate of commits: the coordinator's create plus one per
		// reply, the participants' one per command, and the relay's batched
		// deletes (not counted). Replaced by the measured value on MySQL.
		c.CommitsPorSaga = (float64(r.Completadas)*(2*k+1) + float64(r.Compensadas)*(4*k+1)) / terminadas
	}
	var err error
	if c.BrokerPipelineMsgsPorS, err = cotaBroker(ctx, client, topo, admin); err != nil {
		return nil, err
	}
	if c.BrokerMsgsPorS, err = cotaIdaYVuelta(ctx, client, topo, admin, o.concurrencia); err != nil {
		return nil, err
	}
	if o.almacen != "" {
		if c.DBCommitsPorS, err = cotaDB(ctx, o); err != nil {
			return nil, err
		}
	}
	if o.almacen == "mysql" && r.commits > 0 && terminadas > 0 {
		c.CommitsPorSaga, c.CommitsMedidos = float64(r.commits)/terminadas, true
	}
	if c.BrokerMsgsPorS > 0 {
		c.RatioBroker = r.SagasPorS * c.MensajesPorSaga / c.BrokerMsgsPorS
	}
	c.RatioCotaInferior = c.RatioBroker
	if c.DBCommitsPorS > 0 {
		c.RatioDB = r.SagasPorS * c.CommitsPorSaga / c.DBCommitsPorS
		// The lower bound is the smaller capacity in sagas/s; the ratio to it
		// is the larger of the two ratios.
		c.RatioCotaInferior = max(c.RatioBroker, c.RatioDB)
	}
	return c, nil
}

func aleatorio() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// borrarTopico deletes a topic a bound created, through the broker's admin
// API, so that runs leave no topics behind; it only warns on failure, as the
// measurement is already taken.
func borrarTopico(ctx context.Context, admin *bus.Admin, topico string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := admin.BorrarTopico(ctx, topico); err != nil {
		fmt.Fprintf(os.Stderr, "carga: could not delete the bound's topic %s: %v\n", topico, err)
	}
}

// cotaBroker measures keyed produce → Key_Shared consume round trips with the
// producer and consumer settings the system uses.
func cotaBroker(ctx context.Context, client pulsar.Client, topo eventos.Topologia, admin *bus.Admin) (float64, error) {
	const n, claves = 20000, 1000
	topico := fmt.Sprintf("persistent://%s/cota-broker-%s", topo.NS(), aleatorio())
	defer borrarTopico(ctx, admin, topico) // deferred first: runs after the closes
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topico, SubscriptionName: "cota", Type: pulsar.KeyShared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, ReceiverQueueSize: 1000,
	})
	if err != nil {
		return 0, fmt.Errorf("suscribir cota: %w", bus.Causa(client, "consumir", topico, err))
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: topico, BatcherBuilderType: pulsar.KeyBasedBatchBuilder, BatchingMaxPublishDelay: bus.DemoraLote,
		MaxPendingMessages: 4000,
	})
	if err != nil {
		return 0, fmt.Errorf("productor cota: %w", bus.Causa(client, "producir", topico, err))
	}
	defer prod.Close()
	carga := []byte(strings.Repeat("x", 400)) // about the size of a command
	recibidos := make(chan struct{})
	var fallos atomic.Int64
	go func() {
		defer close(recibidos)
		for i := 0; i < n; i++ {
			m, err := cons.Receive(ctx)
			if err != nil {
				return
			}
			cons.Ack(m)
		}
	}()
	inicio := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		prod.SendAsync(ctx, &pulsar.ProducerMessage{Payload: carga, Key: fmt.Sprintf("clave-%d", i%claves)},
			func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					fallos.Add(1)
				}
				wg.Done()
			})
	}
	prod.FlushWithCtx(ctx) // as the relay does after a round of sends
	wg.Wait()
	select {
	case <-recibidos:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("cota broker: mensajes sin recibir tras 2 minutos")
	}
	if f := fallos.Load(); f > 0 {
		return 0, fmt.Errorf("cota broker: %d envíos fallaron", f)
	}
	return n / time.Since(inicio).Seconds(), nil
}

// cotaIdaYVuelta measures broker round trips the way the system uses the
// broker: concurrencia workers each send one keyed message and wait until the
// Key_Shared consumer has received it, then send the next (a participant
// replies and waits for the ack; the coordinator answers a reply with the next
// command). Messages per second of completed round trips.
func cotaIdaYVuelta(ctx context.Context, client pulsar.Client, topo eventos.Topologia, admin *bus.Admin, concurrencia int) (float64, error) {
	const duracion = 5 * time.Second
	topico := fmt.Sprintf("persistent://%s/cota-ida-vuelta-%s", topo.NS(), aleatorio())
	defer borrarTopico(ctx, admin, topico) // deferred first: runs after the closes
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topico, SubscriptionName: "cota", Type: pulsar.KeyShared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, ReceiverQueueSize: 1000,
	})
	if err != nil {
		return 0, fmt.Errorf("suscribir cota: %w", bus.Causa(client, "consumir", topico, err))
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: topico, BatcherBuilderType: pulsar.KeyBasedBatchBuilder, BatchingMaxPublishDelay: bus.DemoraLote,
		MaxPendingMessages: 4000,
	})
	if err != nil {
		return 0, fmt.Errorf("productor cota: %w", bus.Causa(client, "producir", topico, err))
	}
	defer prod.Close()
	var mu sync.Mutex
	esperas := map[string]chan struct{}{}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			m, err := cons.Receive(rctx)
			if err != nil {
				return
			}
			cons.Ack(m)
			mu.Lock()
			if c, ok := esperas[string(m.Payload())]; ok {
				close(c)
				delete(esperas, string(m.Payload()))
			}
			mu.Unlock()
		}
	}()
	carga := strings.Repeat("x", 400)
	var hechos atomic.Int64
	var primerError atomic.Value
	fin := time.Now().Add(duracion)
	inicio := time.Now()
	var wg sync.WaitGroup
	for w := range concurrencia {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(fin) && ctx.Err() == nil; i++ {
				id := fmt.Sprintf("%d-%d-%s", w, i, carga)
				c := make(chan struct{})
				mu.Lock()
				esperas[id] = c
				mu.Unlock()
				if _, err := prod.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(id), Key: fmt.Sprintf("clave-%d-%d", w, i)}); err != nil {
					primerError.CompareAndSwap(nil, err)
					return
				}
				select {
				case <-c:
					hechos.Add(1)
				case <-time.After(30 * time.Second):
					primerError.CompareAndSwap(nil, fmt.Errorf("mensaje no recibido en 30 s"))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := primerError.Load().(error); ok {
		return 0, fmt.Errorf("cota de ida y vuelta: %w", err)
	}
	return float64(hechos.Load()) / time.Since(inicio).Seconds(), nil
}

// cotaCommits runs one-row transactions through the store's own code path
// (RegistrarInbox) with the given concurrency.
func cotaCommits(ctx context.Context, db *almacen.DB, concurrencia int) (float64, error) {
	const duracion = 5 * time.Second
	var hechos atomic.Int64
	var primerError atomic.Value
	fin := time.Now().Add(duracion)
	inicio := time.Now()
	var wg sync.WaitGroup
	prefijo := "cota-" + aleatorio()
	for w := range concurrencia {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(fin) && ctx.Err() == nil; i++ {
				if err := db.RegistrarInbox(ctx, fmt.Sprintf("%s-%d-%d", prefijo, w, i)); err != nil {
					primerError.CompareAndSwap(nil, err)
					return
				}
				hechos.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := primerError.Load().(error); ok {
		return 0, fmt.Errorf("cota de commits: %w", err)
	}
	return float64(hechos.Load()) / time.Since(inicio).Seconds(), nil
}

// baseDePrueba opens a scratch store of o.almacen: a new database on the
// MySQL server of o.dsn, or the SQLite file o.sqlite (same settings as the
// store's, same disk). cerrar drops or removes it.
func baseDePrueba(ctx context.Context, o opciones, conexiones int) (db *almacen.DB, cerrar func(), err error) {
	switch o.almacen {
	case "mysql":
		cfg, err := mysql.ParseDSN(o.dsn)
		if err != nil {
			return nil, nil, err
		}
		admin, err := sql.Open("mysql", o.dsn)
		if err != nil {
			return nil, nil, err
		}
		nombre := cfg.DBName + "_cota_" + aleatorio()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+nombre); err != nil {
			admin.Close()
			return nil, nil, fmt.Errorf("crear base de prueba: %w", err)
		}
		soltar := func() {
			admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE "+nombre)
			admin.Close()
		}
		cfg.DBName = nombre
		db, err := almacen.Abrir(ctx, almacen.Config{Tipo: "mysql", DSN: cfg.FormatDSN(), MaxConexiones: conexiones})
		if err != nil {
			soltar()
			return nil, nil, err
		}
		return db, func() { db.Close(); soltar() }, nil
	case "sqlite":
		borrar := func() {
			os.Remove(o.sqlite)
			os.Remove(o.sqlite + "-wal")
			os.Remove(o.sqlite + "-shm")
		}
		db, err := almacen.Abrir(ctx, almacen.Config{Tipo: "sqlite", Ruta: o.sqlite})
		if err != nil {
			borrar()
			return nil, nil, err
		}
		return db, func() { db.Close(); borrar() }, nil
	}
	return nil, nil, fmt.Errorf("almacen %q sin base de prueba", o.almacen)
}

// cotaDB measures commits/s on a scratch store (baseDePrueba).
func cotaDB(ctx context.Context, o opciones) (float64, error) {
	db, cerrar, err := baseDePrueba(ctx, o, o.concurrencia)
	if err != nil {
		return 0, err
	}
	defer cerrar()
	return cotaCommits(ctx, db, o.concurrencia)
}

// comCommit reads the MySQL server's Com_commit counter.
func comCommit(ctx context.Context, dsn string) (int64, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var nombre string
	var v int64
	err = db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Com_commit'").Scan(&nombre, &v)
	return v, err
}
