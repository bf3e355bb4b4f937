package motor_test

import (
	"path/filepath"
	"testing"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/integracion"
)

// enCadaAlmacen runs f as a subtest on a fresh SQLite store and on a fresh
// MySQL database named after prefijo (integracion.BaseMySQL).
func enCadaAlmacen(t *testing.T, prefijo string, f func(t *testing.T, db *almacen.DB)) {
	almacenes := map[string]func(t *testing.T) almacen.Config{
		"sqlite": func(t *testing.T) almacen.Config {
			return almacen.Config{Tipo: almacen.TipoSQLite, Ruta: filepath.Join(t.TempDir(), "sagas.db")}
		},
		"mysql": func(t *testing.T) almacen.Config {
			return almacen.Config{Tipo: almacen.TipoMySQL, DSN: integracion.BaseMySQL(t, prefijo).FormatDSN()}
		},
	}
	for nombre, config := range almacenes {
		t.Run(nombre, func(t *testing.T) {
			db, err := almacen.Abrir(t.Context(), config(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f(t, db)
		})
	}
}

// codecs are the coordinator's command and event codecs.
func codecs() (*eventos.Codec[eventos.Comando], *eventos.Codec[eventos.Evento]) {
	cc, _ := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	ec, _ := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	return cc, ec
}
