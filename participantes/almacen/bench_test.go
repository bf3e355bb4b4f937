package almacen_test

import (
	"fmt"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes/almacen"
)

// BenchmarkAplicar applies one command at a time (a new saga each) to the
// test service, whose action writes one row: the participant's own cost of
// a lone command, its database's round trips included. -lote applies them
// in batches of 16 (AplicarLote), as a busy participant does.
func BenchmarkAplicar(b *testing.B) {
	for _, tipo := range []string{almacen.SQLite, almacen.MySQL} {
		b.Run(tipo, func(b *testing.B) {
			a := abrir(b, tipo)
			b.Run("uno", func(b *testing.B) {
				for i := range b.N {
					if _, err := a.Aplicar(b.Context(), comando(orden{saga: fmt.Sprint("u-", i), accion: eventos.Ejecutar})); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("lote", func(b *testing.B) {
				cs := make([]almacen.Comando, 0, 16)
				for i := range b.N {
					cs = append(cs, comando(orden{saga: fmt.Sprint("l-", i), accion: eventos.Ejecutar}))
					if len(cs) == cap(cs) || i == b.N-1 {
						if _, err := a.AplicarLote(b.Context(), cs); err != nil {
							b.Fatal(err)
						}
						cs = cs[:0]
					}
				}
			})
		})
	}
}
