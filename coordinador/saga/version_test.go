package saga

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// campanaVersion is the campana flow at version v, with its steps in another
// order so that two versions are told apart by their steps.
func campanaVersion(v int) *Definicion {
	d := Campana()
	d.Version = v
	if v%2 == 0 {
		d.Pasos = []Paso{d.Pasos[2], d.Pasos[0]}
	}
	return d
}

func archivo(t *testing.T, d *Definicion) *fstest.MapFile {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return &fstest.MapFile{Data: b}
}

func TestUnaSagaEnCursoExigeLaVersionConLaQueEmpezo(t *testing.T) {
	c := CatalogoPorDefecto()
	if err := c.CargarDirectorio(fstest.MapFS{"v2.json": archivo(t, campanaVersion(2)), "v3.json": archivo(t, campanaVersion(3))}); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Buscar(TipoCampana); d.Version != 3 {
		t.Fatalf("current campana %d, want 3", d.Version)
	}
	d, err := c.BuscarVersion(TipoCampana, 2)
	if err != nil || d.Version != 2 || len(d.Pasos) != 2 || d.Pasos[0].Nombre != "tracking" {
		t.Fatalf("version 2: %v %+v", err, d)
	}
	enCurso := []EnCurso{{TipoCampana, 2, 4}, {TipoCampana, 1, 1}, {TipoLanzarCampaniaCompleta, 1, 2}}
	if err := c.ComprobarEnCurso(enCurso); err != nil {
		t.Fatalf("every version in flight is known: %v", err)
	}

	// The file of version 2 left the directory: the sagas on it are named.
	c = CatalogoPorDefecto()
	if err := c.CargarDirectorio(fstest.MapFS{"v3.json": archivo(t, campanaVersion(3))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BuscarVersion(TipoCampana, 2); !errors.Is(err, ErrVersionDesconocida) {
		t.Fatalf("version 2 after its file went: %v", err)
	}
	enCurso = append(enCurso, EnCurso{"otro-flujo", 1, 3}, EnCurso{TipoCampana, 7, 0})
	err = c.ComprobarEnCurso(enCurso)
	if !errors.Is(err, ErrVersionDesconocida) {
		t.Fatalf("missing version 2 not reported: %v", err)
	}
	for _, frase := range []string{"7 sagas en curso", "campana versión 2 (4 sagas; conocidas: 3, 1)",
		"otro-flujo versión 1 (3 sagas; tipo desconocido)", "SAGAS_DEFINICIONES"} {
		if !strings.Contains(err.Error(), frase) {
			t.Errorf("the error does not say %q: %v", frase, err)
		}
	}
	if strings.Contains(err.Error(), "versión 7") {
		t.Errorf("a version without sagas is no problem: %v", err)
	}
}

func TestEsquemaEntradaEsUnObjetoJSON(t *testing.T) {
	d := campanaVersion(1)
	d.EsquemaEntrada = json.RawMessage(`{"type":"object","required":["nombre"]}`)
	b, _ := json.Marshal(d)
	leida, err := Leer(strings.NewReader(string(b)))
	if err != nil || string(leida.EsquemaEntrada) != `{"type":"object","required":["nombre"]}` {
		t.Fatalf("%v %s", err, leida.EsquemaEntrada)
	}
	for _, malo := range []string{`[1]`, `"x"`, `true`} {
		d.EsquemaEntrada = json.RawMessage(malo)
		if err := d.Validar(); err == nil || !strings.Contains(err.Error(), "esquema_entrada debe ser un objeto JSON") {
			t.Errorf("esquema_entrada %s: %v", malo, err)
		}
	}
}
