package bitacora

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
)

// The general log rotates at MaxGeneral, keeping Copias older files: the
// directory stays bounded however many lines are written, and no line is
// lost from the files kept.
func TestLogGeneralRotaYQuedaAcotado(t *testing.T) {
	dir := t.TempDir()
	const max = 4 << 10
	// Intervalo < 0: a batch per line or so, many rotations.
	b, err := Abrir(Opciones{Dir: dir, MaxGeneral: max, Copias: 2, Reloj: func() time.Time { return hora }, Intervalo: -1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000 // about 130 bytes each: many rotations
	for i := range n {
		b.Transicion(transicion(fmt.Sprintf("s%04d", i), saga.Iniciada, saga.EnProgreso, "x"))
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // several batches
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, ArchivoGeneral)
	var lineas int
	for _, f := range []string{base, base + ".1", base + ".2"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// A batch may cross the limit before the rotation that follows it.
		if st.Size() > max+loteMaximo*200 {
			t.Errorf("%s has %d bytes, limit %d", f, st.Size(), max)
		}
		lineas += len(leer(t, f))
	}
	if _, err := os.Stat(base + ".3"); !os.IsNotExist(err) {
		t.Errorf("a third rotated file exists with Copias 2: %v", err)
	}
	if lineas == 0 || lineas >= n {
		t.Errorf("the kept files hold %d of %d lines: rotation dropped none or kept all", lineas, n)
	}
	// The newest line is the last of the current file, or of .1 when the
	// last batch rotated it away.
	ult := leer(t, base)
	if ult[len(ult)-1] == "" {
		ult = leer(t, base+".1")
	}
	if !strings.Contains(ult[len(ult)-1], "saga_id=s0999") {
		t.Errorf("the last line is not the last written: %q", ult[len(ult)-1])
	}
}

func TestPurgarBorraSoloLosArchivosDeSagaViejos(t *testing.T) {
	dir := t.TempDir()
	b, err := Abrir(Opciones{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, id := range []string{"vieja", "nueva"} {
		b.Transicion(transicion(id, saga.Iniciada, saga.EnProgreso, "x"))
	}
	b.Close() // written
	viejo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, Archivo("vieja")), viejo, viejo); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, ArchivoGeneral), viejo, viejo); err != nil {
		t.Fatal(err)
	}
	n, err := b.Purgar(time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Purgar = %d, %v; want 1", n, err)
	}
	for nombre, debe := range map[string]bool{Archivo("vieja"): false, Archivo("nueva"): true, ArchivoGeneral: true} {
		_, err := os.Stat(filepath.Join(dir, nombre))
		if existe := err == nil; existe != debe {
			t.Errorf("%s: exists=%v, want %v", nombre, existe, debe)
		}
	}
}
