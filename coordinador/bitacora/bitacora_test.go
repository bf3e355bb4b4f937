package bitacora

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/prometheus/client_golang/prometheus"
)

var hora = time.Date(2025, 3, 1, 10, 0, 0, 123e6, time.UTC)

func transicion(id string, antes, despues saga.Estado, motivo string) (saga.Saga, saga.Saga, saga.Transicion) {
	pasos := []saga.EstadoDePaso{{Nombre: "influencer"}, {Nombre: "marca"}}
	a := saga.Saga{ID: id, Tipo: saga.TipoCampana, Estado: antes, Pasos: pasos}
	d := saga.Saga{ID: id, Tipo: saga.TipoCampana, Estado: despues, Pasos: pasos, Actual: 1}
	return a, d, saga.Transicion{Saga: d, Cambio: true, Motivo: motivo}
}

func leer(t *testing.T, ruta string) []string {
	t.Helper()
	b, err := os.ReadFile(ruta)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestEscribeLogGeneralYUnArchivoPorSagaEnOrden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "sagas")
	b, err := Abrir(Opciones{Dir: dir, Reloj: func() time.Time { return hora }})
	if err != nil {
		t.Fatal(err)
	}
	const sagas, porSaga = 20, 5
	var wg sync.WaitGroup
	for i := range sagas {
		wg.Go(func() {
			for j := range porSaga {
				b.Transicion(transicion(fmt.Sprintf("s%02d", i), saga.Iniciada, saga.EnProgreso, fmt.Sprintf("paso %d", j)))
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Descartadas() != 0 {
		t.Fatalf("dropped %d lines with a queue large enough", b.Descartadas())
	}
	if general := leer(t, filepath.Join(dir, ArchivoGeneral)); len(general) != sagas*porSaga {
		t.Fatalf("general log has %d lines, want %d", len(general), sagas*porSaga)
	}
	for i := range sagas {
		id := fmt.Sprintf("s%02d", i)
		lineas := leer(t, filepath.Join(dir, "saga_"+id+".log"))
		if len(lineas) != porSaga {
			t.Fatalf("saga %s: %d lines, want %d", id, len(lineas), porSaga)
		}
		for j, l := range lineas {
			want := fmt.Sprintf(`2025-03-01T10:00:00.123Z saga_id=%s tipo=campana estado=EN_PROGRESO anterior=INICIADA paso=marca motivo="paso %d"`, id, j)
			if l != want {
				t.Fatalf("saga %s line %d:\n got %s\nwant %s", id, j, l, want)
			}
		}
	}
}

func TestColaLlenaDescartaSinBloquearYCuenta(t *testing.T) {
	retener := make(chan struct{})
	dentro := make(chan struct{}, 1)
	reg := prometheus.NewRegistry()
	b, err := Abrir(Opciones{Dir: t.TempDir(), Capacidad: 2, Registro: reg, antesDeEscribir: func() {
		select {
		case dentro <- struct{}{}:
		default:
		}
		<-retener
	}})
	if err != nil {
		t.Fatal(err)
	}
	b.Transicion(transicion("s1", saga.Iniciada, saga.EnProgreso, "primera"))
	<-dentro // the writer holds the first line and is stuck on the "disk"
	inicio := time.Now()
	for i := range 10 {
		b.Transicion(transicion("s1", saga.EnProgreso, saga.EnProgreso, fmt.Sprint(i)))
	}
	if d := time.Since(inicio); d > time.Second {
		t.Fatalf("Transicion blocked for %v with a full queue", d)
	}
	if got := b.Descartadas(); got != 8 {
		t.Fatalf("Descartadas = %d, want 8 (10 sent, 2 queued)", got)
	}
	if v := valorContador(t, reg, "sagas_bitacora_descartadas_total"); v != 8 {
		t.Fatalf("metric sagas_bitacora_descartadas_total = %v, want 8", v)
	}
	close(retener)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if lineas := leer(t, filepath.Join(b.dir, ArchivoGeneral)); len(lineas) != 3 {
		t.Fatalf("general log has %d lines, want 3 (the held one and the 2 queued)", len(lineas))
	}
	b.Transicion(transicion("s1", saga.EnProgreso, saga.Completada, "tras cerrar"))
	if got := b.Descartadas(); got != 9 {
		t.Fatalf("a line after Close was not counted as dropped: Descartadas = %d", got)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// valorContador reads a registered counter by name.
func valorContador(t *testing.T, reg *prometheus.Registry, nombre string) float64 {
	t.Helper()
	familias, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range familias {
		if f.GetName() == nombre {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", nombre)
	return 0
}

func TestDesactivadaNoCreaNiEscribeNada(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-debe-existir")
	b, err := Abrir(Opciones{Dir: dir, Desactivada: true})
	if err != nil {
		t.Fatal(err)
	}
	b.Transicion(transicion("s1", saga.Iniciada, saga.EnProgreso, "x"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a disabled Bitacora touched %s: %v", dir, err)
	}
	if b.Descartadas() != 0 {
		t.Fatalf("a disabled Bitacora counts drops: %d", b.Descartadas())
	}
}

func TestArchivoNuncaSaleDelDirectorio(t *testing.T) {
	for _, id := range []string{"../../etc/passwd", `a\b`, "/abs", "id con espacios\n", strings.Repeat("x", 500)} {
		nombre := Archivo(id)
		if filepath.Base(nombre) != nombre || strings.ContainsAny(nombre, `/\ `+"\n") || len(nombre) > 140 {
			t.Errorf("Archivo(%q) = %q: not a plain, bounded file name", id, nombre)
		}
	}
	if got := Archivo("6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60"); got != "saga_6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60.log" {
		t.Errorf("a UUID's file is %q", got)
	}
	dir := t.TempDir()
	b, err := Abrir(Opciones{Dir: filepath.Join(dir, "sagas")})
	if err != nil {
		t.Fatal(err)
	}
	b.Transicion(transicion("../fuera", saga.Iniciada, saga.EnProgreso, "x"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fuera.log")); !os.IsNotExist(err) {
		t.Fatal("a saga id escaped the log directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "sagas", "saga_.._fuera.log")); err != nil {
		t.Fatalf("the sanitised file is missing: %v", err)
	}
}

func TestLineaConValoresRarosSigueSiendoUnaLinea(t *testing.T) {
	l := string(formatear(entrada{hora: hora, sagaID: "a b", tipo: "", despues: saga.Completada, motivo: "dos\nlineas"}))
	want := `2025-03-01T10:00:00.123Z saga_id="a b" tipo="" estado=COMPLETADA motivo="dos\nlineas"` + "\n"
	if l != want {
		t.Fatalf("got  %q\nwant %q", l, want)
	}
}

func TestLineaLlevaElTraceIDDeLaSaga(t *testing.T) {
	l := string(formatear(entrada{hora: hora, sagaID: "s1", tipo: "campana", despues: saga.EnProgreso, paso: "marca",
		motivo: "m", traceID: "4bf92f3577b34da6a3ce929d0e0e4736"}))
	want := `2025-03-01T10:00:00.123Z saga_id=s1 tipo=campana estado=EN_PROGRESO paso=marca trace_id=4bf92f3577b34da6a3ce929d0e0e4736 motivo="m"` + "\n"
	if l != want {
		t.Fatalf("got  %q\nwant %q", l, want)
	}
}

func TestArchivosAbiertosAcotados(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd")
	}
	abiertos := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	antes := abiertos()
	b, err := Abrir(Opciones{Dir: t.TempDir(), Capacidad: 10000})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		b.Transicion(transicion(fmt.Sprint("s", i), saga.Iniciada, saga.EnProgreso, "x"))
	}
	// Wait for the writer to drain while the Bitacora is still open.
	for deadline := time.Now().Add(10 * time.Second); len(b.cola) > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := abiertos() - antes; n > 2 {
		t.Fatalf("%d more files open after writing 2000 sagas, want at most 2 (general log and one saga file)", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := abiertos() - antes; n > 0 {
		t.Fatalf("%d files left open after Close", n)
	}
}

// The writer gathers an interval's lines into one batch: a saga's
// transitions, a few milliseconds apart, share one write of its file.
func TestUnIntervaloSeEscribeEnUnLote(t *testing.T) {
	var lotes atomic.Int32
	dir := t.TempDir()
	b, err := Abrir(Opciones{Dir: dir, Intervalo: time.Hour, Capacidad: 1000, antesDeEscribir: func() { lotes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		for s := range 50 {
			b.Transicion(transicion(fmt.Sprint("s", s), saga.EnProgreso, saga.EnProgreso, fmt.Sprint(i)))
		}
	}
	// An hour's interval: nothing is written before Close, which writes all.
	time.Sleep(50 * time.Millisecond)
	if n := lotes.Load(); n != 0 {
		t.Fatalf("%d batches written within the interval, want 0", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := lotes.Load(); n != 1 {
		t.Fatalf("%d batches, want 1", n)
	}
	if lineas := leer(t, filepath.Join(dir, "saga_s7.log")); len(lineas) != 4 {
		t.Fatalf("saga s7 has %d lines, want 4", len(lineas))
	}
}

// A queue half full is written at once, whatever the interval: lines are
// not dropped for waiting.
func TestColaAMediasSeEscribeSinEsperar(t *testing.T) {
	var lotes atomic.Int32
	dir := t.TempDir()
	b, err := Abrir(Opciones{Dir: dir, Intervalo: time.Hour, Capacidad: 8, antesDeEscribir: func() { lotes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 5 {
		b.Transicion(transicion("s1", saga.EnProgreso, saga.EnProgreso, fmt.Sprint(i)))
	}
	for limite := time.Now().Add(5 * time.Second); lotes.Load() == 0; {
		if time.Now().After(limite) {
			t.Fatal("a half-full queue was not written within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	if d := b.Descartadas(); d != 0 {
		t.Fatalf("%d lines dropped", d)
	}
}
