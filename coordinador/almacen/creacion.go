package almacen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/mysqltx"
)

// Group commit of creations: concurrent CrearSaga calls queue up, and up to
// maxLideres of the callers (the leaders) commit what is queued, several
// sagas per transaction. Nobody waits for company: a lone call is committed
// at once, alone; batches form only while a commit is already under way.
const (
	maxLideres           = 2
	maxCreacionesPorLote = 64
	plazoLoteCreacion    = 30 * time.Second
	// bytesPorLote bounds the JSON and payloads one batch transaction
	// writes (creations and ActualizarLote alike): on MySQL a batch travels
	// as one text query, which must fit max_allowed_packet (16 MiB by
	// default on MariaDB) even when escaping doubles every byte. A single
	// saga is bounded by eventos.MaximoCarga and always fits alone.
	bytesPorLote = 4 << 20
)

// pesoCreacion is what creating c writes in bulk: input, step inputs and
// outbox payloads.
func pesoCreacion(c *creacion) int {
	n := len(c.s.Datos)
	for i := range c.s.Pasos {
		n += len(c.s.Pasos[i].Entrada)
	}
	for i := range c.msgs {
		n += len(c.msgs[i].Carga)
	}
	return n
}

type grupoCreacion struct {
	mu      sync.Mutex
	cola    []*creacion
	lideres int
}

// creacion is one queued CrearSaga call and, once hecho is closed, its
// outcome.
type creacion struct {
	s      saga.Saga
	idem   Idempotencia
	msgs   []Mensaje
	id     string
	creada bool
	err    error
	hecho  chan struct{}
}

// CrearSaga inserts s with its steps and msgs in one transaction, which may
// be shared with concurrent calls (group commit). See Store. The saga is
// stored with s.Version as given (normally 0).
//
// When ctx ends first, CrearSaga returns its error, and the saga may still be
// created (as when a commit succeeds and its reply is lost); a retry with
// the same idempotency key finds it.
func (db *DB) CrearSaga(ctx context.Context, s saga.Saga, idem Idempotencia, msgs []Mensaje) (string, bool, error) {
	if err := validarSaga(&s, nil); err != nil {
		return "", false, fmt.Errorf("crear saga: %w", err)
	}
	if err := validarClave("clave de idempotencia", idem.Clave); err != nil {
		return "", false, fmt.Errorf("crear saga %s: %w", s.ID, err)
	}
	if utf8.RuneCountInString(idem.Huella) > maxHuella {
		return "", false, fmt.Errorf("crear saga %s: %w", s.ID, invalido("huella de idempotencia de más de %d caracteres", maxHuella))
	}
	c := &creacion{s: s, idem: idem, msgs: msgs, hecho: make(chan struct{})}
	g := &db.creaciones
	g.mu.Lock()
	g.cola = append(g.cola, c)
	liderar := g.lideres < maxLideres
	if liderar {
		g.lideres++
	}
	g.mu.Unlock()
	if liderar {
		db.liderar(context.WithoutCancel(ctx), c)
	}
	select {
	case <-c.hecho:
		return c.id, c.creada, c.err
	case <-ctx.Done():
		return "", false, fmt.Errorf("crear saga %s: %w", s.ID, ctx.Err())
	}
}

// liderar commits queued creations until propia is done (or, with propia
// nil, until none is queued). If creations are still queued when propia is
// done, it hands the leadership to a goroutine, so that its own caller is not
// kept waiting for the others.
func (db *DB) liderar(ctx context.Context, propia *creacion) {
	g := &db.creaciones
	for {
		g.mu.Lock()
		if len(g.cola) == 0 {
			g.lideres--
			g.mu.Unlock()
			return
		}
		if propia != nil {
			select {
			case <-propia.hecho:
				g.mu.Unlock()
				go db.liderar(ctx, nil)
				return
			default:
			}
		}
		n, peso := 1, pesoCreacion(g.cola[0])
		for n < min(len(g.cola), maxCreacionesPorLote) {
			if peso += pesoCreacion(g.cola[n]); peso > bytesPorLote {
				break
			}
			n++
		}
		lote := append([]*creacion(nil), g.cola[:n]...)
		g.cola = append(g.cola[:0], g.cola[n:]...)
		g.mu.Unlock()

		bctx, cancel := context.WithTimeout(ctx, plazoLoteCreacion)
		db.crearLote(bctx, lote)
		cancel()
		for _, c := range lote {
			close(c.hecho)
		}
	}
}

// crearLote commits lote in one transaction: one multi-row INSERT per table,
// sent together. If it fails (a taken id or idempotency key, a deadlock, a
// database error), each creation runs alone through crearSaga, which tells
// duplicates apart and retries; the outcome is the same.
func (db *DB) crearLote(ctx context.Context, lote []*creacion) {
	if len(lote) > 1 {
		var escritos []Mensaje
		if err := db.transaccion(ctx, func(tx *sql.Tx) error {
			ss, err := db.sentenciasCreacion(lote)
			if err != nil {
				return err
			}
			creado := time.Now()
			res, err := db.ejecutarJuntas(mysqltx.ConCommit(ctx), tx, ss)
			if err != nil {
				return err
			}
			var msgs []Mensaje
			for _, c := range lote {
				msgs = append(msgs, c.msgs...)
			}
			escritos = db.conIDs(res, msgs, creado)
			return nil
		}); err == nil {
			for _, c := range lote {
				c.id, c.creada = c.s.ID, true
				if db.d.nombre == TipoMySQL {
					db.cache.recordar(&c.s)
				}
			}
			db.confirmados(escritos)
			return
		}
	}
	for _, c := range lote {
		c.id, c.creada, c.err = db.crearSaga(ctx, c)
	}
}

// sentenciasCreacion are the INSERTs of a batch of creations.
func (db *DB) sentenciasCreacion(lote []*creacion) ([]sentencia, error) {
	var sagas, pasos strings.Builder
	var argsSagas, argsPasos []any
	var msgs []Mensaje
	sagas.WriteString(insertSagas)
	pasos.WriteString(insertPasos)
	nPasos := 0
	for i, c := range lote {
		v, err := db.d.valoresSaga(&c.s, c.s.Version)
		if err != nil {
			return nil, fmt.Errorf("crear saga %s: %w", c.s.ID, err)
		}
		if i > 0 {
			sagas.WriteString(", ")
		}
		sagas.WriteString(filaSagaCreada)
		argsSagas = append(append(argsSagas, v...), nuloSiVacio(c.idem.Clave), nuloSiVacio(c.idem.Huella))
		for j := range c.s.Pasos {
			if nPasos > 0 {
				pasos.WriteString(", ")
			}
			pasos.WriteString(filaPaso)
			argsPasos = db.d.valoresPaso(argsPasos, c.s.ID, j, &c.s.Pasos[j])
			nPasos++
		}
		msgs = append(msgs, c.msgs...)
	}
	ss := []sentencia{{sagas.String(), argsSagas}}
	if nPasos > 0 {
		ss = append(ss, sentencia{pasos.String(), argsPasos})
	}
	mensajes, err := db.sentenciasMensajes(msgs)
	if err != nil {
		return nil, err
	}
	return append(ss, mensajes...), nil
}
