package almacen

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
)

func sagaDePeso(id string, version int64, datos int) saga.Saga {
	return saga.Saga{
		ID: id, Tipo: "campana", Estado: saga.EnProgreso, Version: version, Inicio: time.Now(),
		Datos: []byte(`"` + strings.Repeat("x", datos) + `"`),
		Pasos: []saga.EstadoDePaso{{Nombre: "influencer", Estado: saga.PasoEjecutando, Inicio: time.Now()}},
	}
}

// pesoReal is what c.bytes must be: the sum over what it holds.
func pesoReal(c *cacheSagas) int {
	n := 0
	for _, s := range c.m {
		n += pesoSaga(&s)
	}
	return n
}

func TestCacheAcotadaEnSagasYEnBytes(t *testing.T) {
	var c cacheSagas
	for i := range maxEnCache + 100 {
		s := sagaDePeso(fmt.Sprintf("s%d", i), 1, 10)
		c.recordar(&s)
	}
	if len(c.m) != maxEnCache || c.bytes != pesoReal(&c) {
		t.Fatalf("%d sagas, %d bytes counted, %d held; want %d sagas", len(c.m), c.bytes, pesoReal(&c), maxEnCache)
	}
	// Heavy sagas: the byte bound holds before the count bound.
	c = cacheSagas{}
	pesada := maxPesoEnCache - 2048
	for i := range 2 * maxBytesCache / pesada {
		s := sagaDePeso(fmt.Sprintf("p%d", i), 1, pesada)
		c.recordar(&s)
	}
	if c.bytes > maxBytesCache || c.bytes != pesoReal(&c) || len(c.m) == 0 {
		t.Fatalf("%d sagas, %d bytes counted, %d held; the bound is %d", len(c.m), c.bytes, pesoReal(&c), maxBytesCache)
	}
}

func TestCacheGuardaSoloLoQueSirve(t *testing.T) {
	var c cacheSagas
	s := sagaDePeso("a", 3, 10)
	c.recordar(&s)
	vieja := sagaDePeso("a", 2, 10)
	c.recordar(&vieja)
	if got, _ := c.tomar("a"); got.Version != 3 {
		t.Fatalf("an older version replaced a newer one: version %d", got.Version)
	}
	pesada := sagaDePeso("b", 1, maxPesoEnCache)
	c.recordar(&pesada)
	if _, ok := c.tomar("b"); ok {
		t.Fatal("a saga over maxPesoEnCache is remembered")
	}
	s.Version, s.Estado = 4, saga.Compensada
	c.recordar(&s)
	if _, ok := c.tomar("a"); ok {
		t.Fatal("a terminal saga is remembered")
	}
	if c.bytes != 0 || len(c.m) != 0 {
		t.Fatalf("empty cache counts %d bytes, %d sagas", c.bytes, len(c.m))
	}
	// What is remembered is a copy at the columns' precision: the caller's
	// saga changing later does not change it.
	s = sagaDePeso("c", 1, 10)
	c.recordar(&s)
	s.Pasos[0].Estado = saga.PasoCompletado
	got, _ := c.tomar("c")
	if got.Pasos[0].Estado != saga.PasoEjecutando || got.Inicio.Nanosecond()%1000 != 0 || got.Inicio.Location() != time.UTC {
		t.Fatalf("remembered %+v", got)
	}
}
