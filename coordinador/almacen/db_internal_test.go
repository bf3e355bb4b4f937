package almacen

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/integracion"
)

func TestSQLiteConfiguraCadaConexion(t *testing.T) {
	db, err := Abrir(t.Context(), Config{Tipo: TipoSQLite, Ruta: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Several connections at once, so that more than one is opened.
	conns := make([]interface{ Close() error }, 3)
	for i := range conns {
		c, err := db.sql.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		var modo string
		var fk, espera, sincro int
		for q, dest := range map[string]any{
			"PRAGMA journal_mode": &modo, "PRAGMA foreign_keys": &fk,
			"PRAGMA busy_timeout": &espera, "PRAGMA synchronous": &sincro,
		} {
			if err := c.QueryRowContext(t.Context(), q).Scan(dest); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if modo != "wal" || fk != 1 || espera < 1000 || sincro != 2 {
			t.Fatalf("conexión %d: journal_mode %s foreign_keys %d busy_timeout %d synchronous %d", i, modo, fk, espera, sincro)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestMySQLConfiguraCadaConexion(t *testing.T) {
	dsn := integracion.MySQLDSN(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = false // Abrir must force it
	db, err := Abrir(t.Context(), Config{Tipo: TipoMySQL, DSN: cfg.FormatDSN(), MaxConexiones: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.sql.Stats().MaxOpenConnections; n != 4 {
		t.Fatalf("MaxOpenConnections %d, quiero 4", n)
	}
	var nivel string
	err = db.sql.QueryRowContext(t.Context(), "SELECT @@SESSION.tx_isolation").Scan(&nivel)
	if err != nil {
		err = db.sql.QueryRowContext(t.Context(), "SELECT @@SESSION.transaction_isolation").Scan(&nivel)
	}
	if err != nil || nivel != "READ-COMMITTED" {
		t.Fatalf("aislamiento %q, %v; quiero READ-COMMITTED", nivel, err)
	}
	var ahora any
	if err := db.sql.QueryRowContext(context.Background(), "SELECT NOW(6)").Scan(&ahora); err != nil {
		t.Fatal(err)
	}
	if _, ok := ahora.(interface{ UnixMicro() int64 }); !ok {
		t.Fatalf("DATETIME leído como %T: parseTime no está forzado", ahora)
	}
}

func TestSentenciasDeUnaMigracion(t *testing.T) {
	got := sentencias("-- comentario; con punto y coma\nCREATE TABLE a (\n  x INT -- dentro\n);\n\n  -- otro\nCREATE INDEX i ON a (x);\nSELECT 1")
	want := []string{"CREATE TABLE a (\n  x INT -- dentro\n)", "CREATE INDEX i ON a (x)", "SELECT 1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sentencias = %q, quiero %q", got, want)
	}
	for _, d := range []string{TipoSQLite, TipoMySQL} {
		ms, err := cargarMigraciones(d)
		if err != nil || len(ms) == 0 {
			t.Fatalf("%s: %d migraciones, %v", d, len(ms), err)
		}
		for _, m := range ms {
			for _, s := range sentencias(m.sql) {
				if strings.Contains(s, ";") {
					t.Errorf("%s: sentencia con ';' dentro: %.60q", m.nombre, s)
				}
			}
		}
	}
}

func TestPatronDePrefijoEscapaComodines(t *testing.T) {
	if got := dialectoSQLite.patron("a*b?c[d]"); got != "a[*]b[?]c[[]d]*" {
		t.Errorf("sqlite: %q", got)
	}
	if got := dialectoMySQL.patron("a%b_c!d"); got != "a!%b!_c!!d%" {
		t.Errorf("mysql: %q", got)
	}
}

// TestTransicionEscribeCadaEntradaUnaVez: the writes of a transition carry
// the saga's input and an unchanged step input zero times, a new step's
// input once, on both dialects and on the batch path (guarded or not).
func TestTransicionEscribeCadaEntradaUnaVez(t *testing.T) {
	grande := `{"influencers":"` + strings.Repeat("x", 10000) + `"}`
	ahora := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	viejo := saga.Saga{
		ID: "s1", Tipo: "campana", VersionDefinicion: 1, Estado: saga.EnProgreso, Inicio: ahora,
		Datos: json.RawMessage(grande), Compensaciones: []string{}, Version: 1,
		Pasos: []saga.EstadoDePaso{{Nombre: "influencer", Servicio: "influencer", Estado: saga.PasoEjecutando,
			Intento: 1, Inicio: ahora, Entrada: json.RawMessage(`{"entrada":` + grande + `}`)}},
	}
	nuevo := viejo.Clone()
	nuevo.Version = 2
	nuevo.Pasos[0].Estado, nuevo.Pasos[0].Fin, nuevo.Pasos[0].Salida = saga.PasoCompletado, ahora, json.RawMessage(`{"ok":1}`)
	nuevo.Pasos = append(nuevo.Pasos, saga.EstadoDePaso{Nombre: "marca", Servicio: "marca", Estado: saga.PasoEjecutando,
		Intento: 1, Inicio: ahora, Entrada: json.RawMessage(`{"entrada":` + grande + `,"previos":{"influencer":{"ok":1}}}`)})

	cuantas := func(ss []sentencia, valor []byte) int {
		n := 0
		for _, s := range ss {
			for _, a := range s.args {
				if v, ok := a.(string); ok && v == string(valor) {
					n++
				}
			}
		}
		return n
	}
	bytesDe := func(ss []sentencia) int {
		n := 0
		for _, s := range ss {
			n += len(s.q)
			for _, a := range s.args {
				if v, ok := a.(string); ok {
					n += len(v)
				}
			}
		}
		return n
	}
	for _, d := range []dialecto{dialectoMySQL, dialectoSQLite} {
		t.Run(d.nombre, func(t *testing.T) {
			db := &DB{d: d}
			originales := map[string]saga.Saga{"s1": viejo}
			actual := map[string]*saga.Saga{"s1": &nuevo}
			var ss []sentencia
			for _, saltos := range []int{0, 1} {
				if saltos > 0 && d.nombre != TipoMySQL {
					continue
				}
				s, err := db.sentenciaSagas([]string{"s1"}, originales, actual, saltos)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(s.q, "metadatos") {
					t.Errorf("saltos %d: la fila de la saga reescribe metadatos: %.200s", saltos, s.q)
				}
				ss = append(ss, s)
			}
			ss = append(ss, db.sentenciasPasosLote([]string{"s1"}, originales, actual)...)
			ss = append(ss, db.sentenciasPasos(&viejo, &nuevo, 0, 2)...)
			for que, valor := range map[string]json.RawMessage{
				"la entrada de la saga": viejo.Datos, "la entrada del paso terminado": viejo.Pasos[0].Entrada,
			} {
				if n := cuantas(ss, valor); n != 0 {
					t.Errorf("%s va %d veces; quiero 0", que, n)
				}
			}
			// Once per path: the batch's and the single one's.
			if n := cuantas(ss, nuevo.Pasos[1].Entrada); n != 2 {
				t.Errorf("la entrada del paso nuevo va %d veces; quiero 2", n)
			}
			if n, max := bytesDe(ss), 2*len(nuevo.Pasos[1].Entrada)+8000; n > max {
				t.Errorf("%d bytes escritos; quiero a lo sumo %d", n, max)
			}

			// A changed identity rewrites the input.
			otro := nuevo.Clone()
			otro.Datos = json.RawMessage(`{"otra":1}`)
			s, err := db.sentenciaSagas([]string{"s1"}, originales, map[string]*saga.Saga{"s1": &otro}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if cuantas([]sentencia{s}, otro.Datos) != 1 {
				t.Errorf("la entrada cambiada no se escribe: %.200s", s.q)
			}
		})
	}
}
