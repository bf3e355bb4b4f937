// Package bitacora writes the seeds' saga log files: <dir>/sagas_general.log
// (one line per transition of every saga) and <dir>/saga_{id}.log (the lines
// of one saga). It is a coordinador.Observador.
//
// The engine's hot path never waits for the disk: Transicion puts the entry
// on a bounded queue and returns; one writer goroutine drains the queue in
// batches, at most one batch per Intervalo, so that the lines one saga
// writes within it share one open, append and close of its file. When the
// queue is full the entry is dropped and counted. Open files stay bounded:
// the general log is held open, each saga's file is opened, appended to and
// closed once per batch.
package bitacora

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Opciones.
const (
	DirPorDefecto       = "logs/sagas"
	CapacidadPorDefecto = 4096
	// IntervaloPorDefecto is how long the writer gathers lines before it
	// writes them. A saga's transitions come a few milliseconds apart, so
	// most sagas get one open of their file instead of one per transition;
	// at 100 sagas/s that was 8 % of the coordinator's CPU time.
	IntervaloPorDefecto = 200 * time.Millisecond
	// ArchivoGeneral is the log of every saga.
	ArchivoGeneral = "sagas_general.log"
	loteMaximo     = 512
)

// Opciones configure Abrir. The zero value writes to DirPorDefecto.
type Opciones struct {
	// Dir holds the files; default DirPorDefecto. It is created if missing.
	Dir string
	// Desactivada turns the files off: Transicion does nothing.
	Desactivada bool
	// Capacidad bounds the queue of entries not yet written; default
	// CapacidadPorDefecto.
	Capacidad int
	// Intervalo is how long the writer gathers lines before it writes them
	// (sooner when the queue is half full); default IntervaloPorDefecto,
	// negative writes each line as soon as the writer gets it. Close writes
	// what is queued without waiting.
	Intervalo time.Duration
	// Registro, when set, receives the counters of dropped entries and write
	// errors.
	Registro prometheus.Registerer
	Logger   *slog.Logger
	// Reloj stamps the lines; default time.Now.
	Reloj func() time.Time
	// MaxGeneral rotates the general log once it reaches this many bytes:
	// sagas_general.log becomes .1, .1 becomes .2, up to Copias files; the
	// oldest is removed. 0 never rotates.
	MaxGeneral int64
	// Copias is how many rotated general logs are kept; default 3.
	Copias int

	// antesDeEscribir lets tests hold the writer to fill the queue.
	antesDeEscribir func()
}

// Bitacora is the file-log Observador. Safe for concurrent use.
type Bitacora struct {
	dir       string
	cola      chan entrada
	intervalo time.Duration
	apurar    chan struct{} // the queue is half full: write now
	fin       chan struct{}
	hecho     chan struct{}
	cerrada   atomic.Bool
	cierre    sync.Once
	errCierre error

	descartadas atomic.Uint64
	errores     atomic.Uint64
	logger      *slog.Logger
	ahora       func() time.Time

	general         *os.File
	tamano          int64 // of the general log, for rotation
	maxGeneral      int64
	copias          int
	antesDeEscribir func()
}

// entrada is one transition, formatted by the writer, not on the hot path.
type entrada struct {
	hora           time.Time
	sagaID, tipo   string
	antes, despues saga.Estado
	paso, motivo   string
	traceID        string
}

// Abrir creates the directory, opens the general log and starts the writer.
// With Desactivada it returns a Bitacora that writes nothing.
func Abrir(o Opciones) (*Bitacora, error) {
	b := &Bitacora{dir: o.Dir, logger: o.Logger, ahora: o.Reloj, antesDeEscribir: o.antesDeEscribir,
		maxGeneral: o.MaxGeneral, copias: o.Copias, intervalo: o.Intervalo}
	if b.intervalo == 0 {
		b.intervalo = IntervaloPorDefecto
	}
	if b.copias <= 0 {
		b.copias = 3
	}
	if b.dir == "" {
		b.dir = DirPorDefecto
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	if b.ahora == nil {
		b.ahora = time.Now
	}
	if o.Desactivada {
		b.cerrada.Store(true)
		return b, nil
	}
	capacidad := o.Capacidad
	if capacidad <= 0 {
		capacidad = CapacidadPorDefecto
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("bitácora: crear %s: %w", b.dir, err)
	}
	f, err := os.OpenFile(filepath.Join(b.dir, ArchivoGeneral), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bitácora: abrir %s: %w", ArchivoGeneral, err)
	}
	if o.Registro != nil {
		for _, c := range []prometheus.Collector{
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sagas_bitacora_descartadas_total",
				Help: "Saga log lines dropped because the writer's queue was full.",
			}, func() float64 { return float64(b.descartadas.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sagas_bitacora_errores_total",
				Help: "Saga log batches that could not be written completely.",
			}, func() float64 { return float64(b.errores.Load()) }),
		} {
			if err := o.Registro.Register(c); err != nil {
				f.Close()
				return nil, fmt.Errorf("bitácora: registrar métricas: %w", err)
			}
		}
	}
	if st, err := f.Stat(); err == nil {
		b.tamano = st.Size()
	}
	b.general = f
	b.cola = make(chan entrada, capacidad)
	b.apurar = make(chan struct{}, 1)
	b.fin = make(chan struct{})
	b.hecho = make(chan struct{})
	go b.escritor()
	return b, nil
}

// Transicion queues one line for the saga; it never blocks. When the queue
// is full, or the Bitacora is closed or off, the line is dropped (counted
// unless off).
func (b *Bitacora) Transicion(antes, despues saga.Saga, t saga.Transicion) {
	if b.cola == nil {
		return
	}
	e := entrada{
		hora: b.ahora(), sagaID: despues.ID, tipo: despues.Tipo, antes: antes.Estado, despues: despues.Estado,
		motivo: t.Motivo, traceID: traza.TraceID(despues.Traceparent),
	}
	if despues.Actual >= 0 && despues.Actual < len(despues.Pasos) {
		e.paso = despues.Pasos[despues.Actual].Nombre
	}
	if b.cerrada.Load() {
		b.descartadas.Add(1)
		return
	}
	select {
	case b.cola <- e:
		if 2*len(b.cola) >= cap(b.cola) {
			select {
			case b.apurar <- struct{}{}:
			default:
			}
		}
	default:
		b.descartadas.Add(1)
	}
}

// Descartadas returns how many lines were dropped.
func (b *Bitacora) Descartadas() uint64 { return b.descartadas.Load() }

// Close writes what is queued, stops the writer and closes the general log.
// Close it after the engine stopped: a transition racing with Close may be
// lost. Later calls return the first result.
func (b *Bitacora) Close() error {
	b.cierre.Do(func() {
		if b.cola == nil {
			return
		}
		b.cerrada.Store(true)
		close(b.fin)
		<-b.hecho
		b.errCierre = b.general.Close()
		if b.errCierre != nil {
			b.errCierre = fmt.Errorf("bitácora: cerrar %s: %w", ArchivoGeneral, b.errCierre)
		}
	})
	return b.errCierre
}

// escritor drains the queue in batches until Close: once a line comes, it
// waits for the interval's other lines, then writes everything queued.
func (b *Bitacora) escritor() {
	defer close(b.hecho)
	general := bufio.NewWriterSize(b.general, 64<<10)
	lote := make([]entrada, 0, loteMaximo)
	espera := time.NewTimer(time.Hour)
	espera.Stop()
	for {
		select {
		case e := <-b.cola:
			if b.intervalo > 0 {
				espera.Reset(b.intervalo)
				select {
				case <-espera.C:
				case <-b.apurar:
					espera.Stop()
				case <-b.fin:
					espera.Stop()
				}
			}
			lote = append(lote[:0], e)
			for {
				lote = b.drenar(lote, loteMaximo)
				b.escribir(general, lote)
				if len(lote) < loteMaximo {
					break
				}
				lote = lote[:0]
			}
		case <-b.fin:
			// Entries queued before Close are written, in batches.
			for {
				lote = b.drenar(lote[:0], loteMaximo)
				if len(lote) == 0 {
					return
				}
				b.escribir(general, lote)
			}
		}
	}
}

// drenar appends queued entries without waiting, up to max.
func (b *Bitacora) drenar(lote []entrada, max int) []entrada {
	for len(lote) < max {
		select {
		case e := <-b.cola:
			lote = append(lote, e)
		default:
			return lote
		}
	}
	return lote
}

// escribir appends the batch to the general log and to each saga's file.
func (b *Bitacora) escribir(general *bufio.Writer, lote []entrada) {
	if b.antesDeEscribir != nil {
		b.antesDeEscribir()
	}
	var errs []error
	porSaga := map[string][]byte{}
	var orden []string
	for _, e := range lote {
		linea := formatear(e)
		n, err := general.Write(linea)
		b.tamano += int64(n)
		if err != nil {
			errs = append(errs, err)
		}
		if _, ok := porSaga[e.sagaID]; !ok {
			orden = append(orden, e.sagaID)
		}
		porSaga[e.sagaID] = append(porSaga[e.sagaID], linea...)
	}
	if err := general.Flush(); err != nil {
		errs = append(errs, err)
	}
	if b.maxGeneral > 0 && b.tamano >= b.maxGeneral {
		if err := b.rotar(general); err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range orden {
		if err := anexar(filepath.Join(b.dir, Archivo(id)), porSaga[id]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		b.errores.Add(1)
		b.logger.Error("bitácora: no se pudo escribir un lote", "lineas", len(lote), "error", err)
	}
}

// rotar moves the general log aside (sagas_general.log.1, .2, …, keeping
// Copias) and starts a new one; w then writes to it. Only the writer calls it.
func (b *Bitacora) rotar(w *bufio.Writer) error {
	base := filepath.Join(b.dir, ArchivoGeneral)
	if err := b.general.Close(); err != nil {
		return fmt.Errorf("rotar %s: %w", ArchivoGeneral, err)
	}
	os.Remove(fmt.Sprintf("%s.%d", base, b.copias))
	for i := b.copias - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", base, i), fmt.Sprintf("%s.%d", base, i+1))
	}
	errRename := os.Rename(base, base+".1")
	f, err := os.OpenFile(base, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		// Nothing to write to: the next batches count as errors until a
		// later rotation succeeds.
		return fmt.Errorf("rotar %s: %w", ArchivoGeneral, errors.Join(errRename, err))
	}
	b.general, b.tamano = f, 0
	w.Reset(f)
	if errRename != nil {
		return fmt.Errorf("rotar %s: %w", ArchivoGeneral, errRename)
	}
	return nil
}

// Purgar removes the per-saga files last written before antes and returns
// how many. The general log is bounded by rotation instead.
func (b *Bitacora) Purgar(antes time.Time) (int, error) {
	if b.cola == nil {
		return 0, nil
	}
	entradas, err := os.ReadDir(b.dir)
	if err != nil {
		return 0, fmt.Errorf("bitácora: purgar %s: %w", b.dir, err)
	}
	var n int
	var errs []error
	for _, e := range entradas {
		nombre := e.Name()
		if e.IsDir() || !strings.HasPrefix(nombre, "saga_") || !strings.HasSuffix(nombre, ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(antes) {
			continue
		}
		if err := os.Remove(filepath.Join(b.dir, nombre)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func anexar(ruta string, datos []byte) error {
	f, err := os.OpenFile(ruta, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("abrir %s: %w", ruta, err)
	}
	_, err = f.Write(datos)
	return errors.Join(err, f.Close())
}

// Archivo is the name of a saga's file: saga_{id}.log, with every character
// that is not a letter, digit, '-', '_' or '.' replaced by '_' so an id can
// never leave the directory.
func Archivo(sagaID string) string {
	var sb strings.Builder
	sb.WriteString("saga_")
	for i, r := range sagaID {
		if i >= 128 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	sb.WriteString(".log")
	return sb.String()
}

// formatear writes one logfmt line:
//
//	2025-03-01T10:00:00.123Z saga_id=… tipo=campana estado=EN_PROGRESO anterior=INICIADA paso=marca motivo="paso influencer completado"
func formatear(e entrada) []byte {
	b := make([]byte, 0, 160+len(e.motivo))
	b = e.hora.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, " saga_id="...)
	b = appendValor(b, e.sagaID)
	b = append(b, " tipo="...)
	b = appendValor(b, e.tipo)
	b = append(b, " estado="...)
	b = appendValor(b, string(e.despues))
	if e.antes != "" {
		b = append(b, " anterior="...)
		b = appendValor(b, string(e.antes))
	}
	if e.paso != "" {
		b = append(b, " paso="...)
		b = appendValor(b, e.paso)
	}
	if e.traceID != "" {
		b = append(b, " trace_id="...)
		b = append(b, e.traceID...)
	}
	b = append(b, " motivo="...)
	b = strconv.AppendQuote(b, e.motivo)
	return append(b, '\n')
}

// appendValor quotes a value only when it needs it, so a line stays one line.
func appendValor(b []byte, v string) []byte {
	if v != "" && !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == '=' || r > '~' }) {
		return append(b, v...)
	}
	return strconv.AppendQuote(b, v)
}
