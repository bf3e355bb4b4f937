package almacen_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/participantes/almacen"
	"github.com/alpespartner/sagas/participantes/bandeja"
	"github.com/alpespartner/sagas/participantes/internal/prueba"
	"github.com/alpespartner/sagas/participantes/servicio"
)

// abrir opens a fresh store of the test service on tipo.
func abrir(t testing.TB, tipo string) *almacen.Almacen {
	t.Helper()
	o := almacen.Opciones{Tipo: tipo, Conexiones: 4, Reloj: func() time.Time { return time.UnixMilli(1_800_000_000_000) }}
	switch tipo {
	case almacen.SQLite:
		o.RutaSQLite = filepath.Join(t.TempDir(), "p.db")
	case almacen.MySQL:
		cfg := integracion.BaseMySQL(t, "pa_")
		o.MySQL = almacen.ServidorMySQL{Config: cfg, BaseDatos: cfg.DBName}
	}
	s := prueba.Servicio()
	a, err := almacen.Abrir(t.Context(), o, &s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func enCadaAlmacen(t *testing.T, prueba func(t *testing.T, a *almacen.Almacen)) {
	for _, tipo := range []string{almacen.SQLite, almacen.MySQL} {
		t.Run(tipo, func(t *testing.T) { prueba(t, abrir(t, tipo)) })
	}
}

// abrirEn opens a store of the test service on the MySQL database of cfg
// (integracion.BaseMySQL) with at most conexiones connections.
func abrirEn(t *testing.T, cfg *mysql.Config, conexiones int) *almacen.Almacen {
	t.Helper()
	s := prueba.Servicio()
	a, err := almacen.Abrir(t.Context(), almacen.Opciones{Tipo: almacen.MySQL, Conexiones: conexiones,
		MySQL: almacen.ServidorMySQL{Config: cfg, BaseDatos: cfg.DBName}}, &s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// orden is a command of the test service for step paso1 of saga.
type orden struct {
	saga, accion string
	entrada      string // the saga input, JSON
	fallo        string // injected failure
	primera      bool   // almacen.Comando.Primera
}

func comando(o orden) almacen.Comando {
	s := prueba.Servicio()
	nombre := "Hacer"
	if o.accion == eventos.Compensar {
		nombre = "Deshacer"
	}
	entrada := o.entrada
	if entrada == "" {
		entrada = "{}"
	}
	cmd := &eventos.Comando{
		ID: "m", Type: eventos.Tipo(nombre), SagaID: o.saga, Paso: "paso1", Accion: o.accion, Intento: 1,
		ClaveIdempotencia: o.saga + ":paso1:" + o.accion,
	}
	return almacen.Comando{
		Operacion: &s.Operaciones[0],
		Peticion:  servicio.Peticion{Comando: cmd, SagaID: o.saga, Paso: "paso1", Entrada: []byte(entrada)},
		Fallo:     o.fallo,
		Primera:   o.primera,
	}
}

// aplicarUnoAUno applies ordenes one by one and returns their cases,
// separated by spaces.
func aplicarUnoAUno(t *testing.T, a *almacen.Almacen, ordenes []orden) string {
	t.Helper()
	var casos []string
	for _, o := range ordenes {
		d, err := a.Aplicar(t.Context(), comando(o))
		if err != nil {
			t.Fatal(err)
		}
		casos = append(casos, d.Caso.String())
	}
	return strings.Join(casos, " ")
}

func activos(t *testing.T, a *almacen.Almacen, saga string) int {
	t.Helper()
	efs, err := a.Efectos(t.Context(), saga)
	if err != nil {
		t.Fatal(err)
	}
	return servicio.Activos(efs)
}

func TestAplicarUnoAUno(t *testing.T) {
	hacer := orden{saga: "s1", accion: eventos.Ejecutar}
	deshacer := orden{saga: "s1", accion: eventos.Compensar}
	rechazar := orden{saga: "s1", accion: eventos.Ejecutar, entrada: `{"rechazar":true}`}
	for _, c := range []struct {
		nombre  string
		ordenes []orden
		casos   string
		activos int
	}{
		{"una acción deja su efecto y su reentrega no lo repite",
			[]orden{hacer, hacer}, "accion_hecha reenvio", 1},
		{"una acción que rechaza no deja lo que escribió y su fallo queda registrado",
			[]orden{rechazar, rechazar, deshacer}, "accion_rechazada reenvio compensacion_sin_efecto", 0},
		{"una compensación antes de su acción bloquea la acción tardía",
			[]orden{deshacer, hacer, hacer}, "compensacion_anticipada accion_tardia reenvio", 0},
		{"una compensación que falla no se registra y su reintento deshace",
			[]orden{hacer, {saga: "s1", accion: eventos.Compensar, fallo: "x"}, deshacer, deshacer}, "accion_hecha compensacion_inyectada compensacion_hecha reenvio", 0},
		{"un fallo inyectado en la acción no deja efecto",
			[]orden{{saga: "s1", accion: eventos.Ejecutar, fallo: "x"}, hacer}, "accion_inyectada reenvio", 0},
	} {
		// Every command again as a first delivery: on MySQL an action then
		// bets that its step has no inbox row (one round trip), and must
		// decide the same when it loses.
		for _, primera := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/primera=%v", c.nombre, primera), func(t *testing.T) {
				enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
					ordenes := slices.Clone(c.ordenes)
					for i := range ordenes {
						ordenes[i].primera = primera
					}
					if got := aplicarUnoAUno(t, a, ordenes); got != c.casos {
						t.Errorf("casos %q, want %q", got, c.casos)
					}
					if n := activos(t, a, "s1"); n != c.activos {
						t.Errorf("%d efectos activos, want %d", n, c.activos)
					}
				})
			})
		}
	}
}

func TestErrorTecnicoNoDejaNadaYSeDevuelve(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
		romper := orden{saga: "s1", accion: eventos.Ejecutar, entrada: `{"romper":true}`}
		if _, err := a.Aplicar(t.Context(), comando(romper)); err == nil || !strings.Contains(err.Error(), "Hacer: fallo técnico simulado") {
			t.Fatalf("err = %v", err)
		}
		d, err := a.Aplicar(t.Context(), comando(orden{saga: "s1", accion: eventos.Ejecutar}))
		if err != nil || d.Caso != bandeja.AccionHecha || activos(t, a, "s1") != 1 {
			t.Fatalf("the retry after a technical error: %+v %v", d, err)
		}
	})
}

// TestEfectoVeYCuentaSusEscrituras: a service's statements behave as if each
// ran when it was executed, on both stores, though MySQL holds them back
// until the inbox row goes: a query after them sees them, and each one's
// affected rows are its own, alone or in a batch.
func TestEfectoVeYCuentaSusEscrituras(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
		d, err := a.Aplicar(t.Context(), comando(orden{saga: "s1", accion: eventos.Ejecutar, entrada: `{"consultar":true,"filas":true}`}))
		if err != nil || d.Caso != bandeja.AccionHecha {
			t.Fatalf("%+v %v", d, err)
		}
		if want := `{"hecho":true,"insertadas":1,"vistos":1}`; d.Registro.Datos != want {
			t.Errorf("reply data %s, want %s", d.Registro.Datos, want)
		}
		ds, err := a.AplicarLote(t.Context(), []almacen.Comando{
			comando(orden{saga: "s2", accion: eventos.Ejecutar}),
			comando(orden{saga: "s3", accion: eventos.Ejecutar, entrada: `{"filas":true,"literal":true}`}),
			comando(orden{saga: "s2", accion: eventos.Compensar}),
		})
		if err != nil {
			t.Fatal(err)
		}
		var datos []string
		for _, d := range ds {
			datos = append(datos, d.Registro.Datos)
		}
		want := `{"hecho":true} {"hecho":true,"insertadas":1} {"deshechos":1}`
		if got := strings.Join(datos, " "); got != want {
			t.Errorf("batch reply data %s, want %s", got, want)
		}
		if activos(t, a, "s1") != 1 || activos(t, a, "s2") != 0 || activos(t, a, "s3") != 1 {
			t.Error("effects other than those replied")
		}
	})
}

// TestEfectoQueFallaAlEnviarseNoDejaNada: a statement of the effect that
// fails (a duplicate key) rolls the command back with an error, also when
// the store sent it only with the inbox row; the command then runs anew.
// Refused after a query (its writes already on the server), the effect is
// undone too.
func TestEfectoQueFallaAlEnviarseNoDejaNada(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
		if d, err := a.Aplicar(t.Context(), comando(orden{saga: "s1", accion: eventos.Ejecutar, entrada: `{"duplicar":true}`})); err == nil {
			t.Fatalf("a duplicate key in the effect: %+v, no error", d)
		}
		if activos(t, a, "s1") != 0 {
			t.Fatal("the failed command left an effect")
		}
		// Held back on MySQL, the failing INSERT is sent by the query, whose
		// Scan returns its error.
		_, err := a.Aplicar(t.Context(), comando(orden{saga: "s3", accion: eventos.Ejecutar, entrada: `{"duplicar":true,"consultar":true}`}))
		if err == nil || !strings.Contains(err.Error(), "1062") && !strings.Contains(err.Error(), "UNIQUE") || activos(t, a, "s3") != 0 {
			t.Fatalf("a duplicate key sent by a query: %v, %d effects; want the key's error and none", err, activos(t, a, "s3"))
		}
		if d, err := a.Aplicar(t.Context(), comando(orden{saga: "s1", accion: eventos.Ejecutar})); err != nil || d.Caso != bandeja.AccionHecha || activos(t, a, "s1") != 1 {
			t.Fatalf("the command again: %+v %v", d, err)
		}
		d, err := a.Aplicar(t.Context(), comando(orden{saga: "s2", accion: eventos.Ejecutar, entrada: `{"consultar":true,"rechazar":true}`}))
		if err != nil || d.Caso != bandeja.AccionRechazada || activos(t, a, "s2") != 0 {
			t.Fatalf("refused after a query: %+v %v, %d effects", d, err, activos(t, a, "s2"))
		}
	})
}

func TestLoteConFalloDeNegocioNoDejaNadaYUnoAUnoSiSale(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
		lote := []almacen.Comando{
			comando(orden{saga: "a", accion: eventos.Ejecutar}),
			comando(orden{saga: "b", accion: eventos.Ejecutar, entrada: `{"rechazar":true}`}),
		}
		if _, err := a.AplicarLote(t.Context(), lote); !errors.Is(err, almacen.ErrNegocioEnLote) {
			t.Fatalf("err = %v, want ErrNegocioEnLote", err)
		}
		if activos(t, a, "a") != 0 {
			t.Fatal("the aborted batch left an effect")
		}
		var casos []string
		for _, c := range lote {
			d, err := a.Aplicar(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			casos = append(casos, d.Caso.String())
		}
		if got := strings.Join(casos, " "); got != "accion_hecha accion_rechazada" || activos(t, a, "a") != 1 || activos(t, a, "b") != 0 {
			t.Fatalf("one by one: %s", got)
		}
	})
}

func TestLoteVeLoQueRegistraronLosComandosAnterioresDelPaso(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
		ds, err := a.AplicarLote(t.Context(), []almacen.Comando{
			comando(orden{saga: "s1", accion: eventos.Ejecutar}),
			comando(orden{saga: "s1", accion: eventos.Ejecutar}),
			comando(orden{saga: "s1", accion: eventos.Compensar}),
			comando(orden{saga: "s2", accion: eventos.Compensar}),
			comando(orden{saga: "s2", accion: eventos.Ejecutar}),
		})
		if err != nil {
			t.Fatal(err)
		}
		var casos []string
		for _, d := range ds {
			casos = append(casos, d.Caso.String())
		}
		want := "accion_hecha reenvio compensacion_hecha compensacion_anticipada accion_tardia"
		if got := strings.Join(casos, " "); got != want {
			t.Fatalf("casos %q, want %q", got, want)
		}
		if activos(t, a, "s1") != 0 || activos(t, a, "s2") != 0 {
			t.Fatal("effects left in force")
		}
	})
}

// TestValoresQueNoCabenSonErrInvalidoYNoDejanNada: a command whose values
// the inbox columns cannot hold is refused before any write, alone or in a
// batch, on both stores, with an error wrapping ErrInvalido (the consumer
// dead-letters it at once instead of retrying it).
func TestValoresQueNoCabenSonErrInvalidoYNoDejanNada(t *testing.T) {
	enCadaAlmacen(t, func(t *testing.T, a *almacen.Almacen) {
		largos := map[string]func(*eventos.Comando){
			"clave_idempotencia": func(c *eventos.Comando) { c.ClaveIdempotencia = strings.Repeat("ñ", almacen.MaxClave+1) },
			"saga_id":            func(c *eventos.Comando) { c.SagaID = strings.Repeat("s", almacen.MaxSagaID+1) },
			"paso":               func(c *eventos.Comando) { c.Paso = strings.Repeat("p", almacen.MaxPaso+1) },
		}
		for campo, alargar := range largos {
			c := comando(orden{saga: "s1", accion: eventos.Ejecutar})
			alargar(c.Peticion.Comando)
			if _, err := a.Aplicar(t.Context(), c); !errors.Is(err, almacen.ErrInvalido) || !strings.Contains(err.Error(), campo) {
				t.Errorf("%s too long: Aplicar = %v, want ErrInvalido naming it", campo, err)
			}
			if _, err := a.AplicarLote(t.Context(), []almacen.Comando{comando(orden{saga: "s2", accion: eventos.Ejecutar}), c}); !errors.Is(err, almacen.ErrInvalido) {
				t.Errorf("%s too long in a batch: AplicarLote = %v, want ErrInvalido", campo, err)
			}
		}
		if n := activos(t, a, "s1") + activos(t, a, "s2"); n != 0 {
			t.Errorf("%d effects left by refused commands", n)
		}
	})
}

// The command path runs through prepared statements on SQLite (the
// services' own included) once they are ready: the outcomes are the same as
// with the statements run as text, the savepoint of a refused action
// included.
func TestSentenciasPreparadasDecidenIgual(t *testing.T) {
	a := abrir(t, almacen.SQLite)
	rondas := 0
	ronda := func() {
		t.Helper()
		i := rondas
		rondas++
		for j, c := range []struct {
			ordenes []orden
			casos   string
			activos int
		}{
			{[]orden{{accion: eventos.Ejecutar}, {accion: eventos.Ejecutar}}, "accion_hecha reenvio", 1},
			{[]orden{{accion: eventos.Ejecutar, entrada: `{"rechazar":true}`}, {accion: eventos.Compensar}}, "accion_rechazada compensacion_sin_efecto", 0},
			{[]orden{{accion: eventos.Ejecutar}, {accion: eventos.Compensar}, {accion: eventos.Compensar}}, "accion_hecha compensacion_hecha reenvio", 0},
		} {
			saga := fmt.Sprintf("s%d-%d", i, j)
			ordenes := slices.Clone(c.ordenes)
			for i := range ordenes {
				ordenes[i].saga = saga
			}
			if got := aplicarUnoAUno(t, a, ordenes); got != c.casos {
				t.Fatalf("round %d, saga %s: casos %q, want %q", i, saga, got, c.casos)
			}
			if n := activos(t, a, saga); n != c.activos {
				t.Fatalf("round %d, saga %s: %d efectos activos, want %d", i, saga, n, c.activos)
			}
		}
	}
	// A round's statements are prepared in the background after their
	// first use: wait for those preparations to end.
	preparadas := func() int {
		t.Helper()
		limite := time.Now().Add(5 * time.Second)
		for a.PreparandoSentencias() > 0 {
			if time.Now().After(limite) {
				t.Fatalf("%d statements still being prepared after 5 s", a.PreparandoSentencias())
			}
			time.Sleep(time.Millisecond)
		}
		return a.Preparadas()
	}
	ronda() // as text; the statements are prepared meanwhile
	antes := preparadas()
	if antes < 6 {
		t.Fatalf("%d statements prepared after a round, want at least 6 (lock, inbox read, savepoint and its rollback, effect, inbox row)", antes)
	}
	for range 5 {
		ronda()
	}
	if preparadas() != antes {
		t.Errorf("the same statements again prepared %d more", a.Preparadas()-antes)
	}
}

// A lone command on MySQL costs two round trips: the step's lock, the
// effect's savepoint and the inbox read; the service's effect (held back),
// the inbox row and COMMIT. A query in the effect sends what it wrote
// before it. An action on its first delivery (Comando.Primera) costs one:
// its step's lock, the check that the step has no inbox row, the savepoint,
// the effect, the inbox row and COMMIT. When the step has rows (a
// redelivery taken for a first one, a compensation that came first) the
// check fails the text before the effect, and the command is decided the
// usual way on the rows read.
func TestViajesDeUnComandoMySQL(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "pa_")
	n := integracion.ContarComandos(t, cfg)
	a := abrirEn(t, cfg, 1)
	const ganada, perdida = "ganada", "perdida"
	for i, c := range []struct {
		o       orden
		caso    string
		viajes  int64
		apuesta string // "": none was made
	}{
		// Lock, savepoint and inbox read; the effect's INSERT with the inbox
		// row and COMMIT.
		{orden{saga: "s1", accion: eventos.Ejecutar}, "accion_hecha", 2, ""},
		{orden{saga: "s1", accion: eventos.Ejecutar}, "reenvio", 2, ""},
		// The INSERT held back is dropped: nothing to roll back.
		{orden{saga: "s2", accion: eventos.Ejecutar, entrada: `{"rechazar":true}`}, "accion_rechazada", 2, ""},
		// A query sends the INSERT first; the refusal rolls it back.
		{orden{saga: "s3", accion: eventos.Ejecutar, entrada: `{"consultar":true,"rechazar":true}`}, "accion_rechazada", 5, ""},
		{orden{saga: "s4", accion: eventos.Ejecutar, entrada: `{"consultar":true}`}, "accion_hecha", 4, ""},

		{orden{saga: "p1", accion: eventos.Ejecutar, primera: true}, "accion_hecha", 1, ganada},
		// The bet lost: the text, its ROLLBACK, then the usual two.
		{orden{saga: "p1", accion: eventos.Ejecutar, primera: true}, "reenvio", 4, perdida},
		// The INSERT held back is dropped; the lock and the check still go.
		{orden{saga: "p2", accion: eventos.Ejecutar, primera: true, entrada: `{"rechazar":true}`}, "accion_rechazada", 1, ganada},
		// A query sends what is held, the check first; the refusal rolls
		// the INSERT back to the savepoint.
		{orden{saga: "p3", accion: eventos.Ejecutar, primera: true, entrada: `{"consultar":true,"rechazar":true}`}, "accion_rechazada", 4, ganada},
		{orden{saga: "p4", accion: eventos.Ejecutar, primera: true, entrada: `{"consultar":true}`}, "accion_hecha", 3, ganada},
		// A compensation never bets.
		{orden{saga: "p5", accion: eventos.Compensar, primera: true}, "compensacion_anticipada", 2, ""},
		{orden{saga: "p5", accion: eventos.Ejecutar, primera: true}, "accion_tardia", 4, perdida},
	} {
		antesN := n.Load()
		antesG, antesP := a.UnViaje()
		d, err := a.Aplicar(t.Context(), comando(c.o))
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Load() - antesN; d.Caso.String() != c.caso || got != c.viajes {
			t.Errorf("command %d: %s in %d round trips, want %s in %d", i, d.Caso, got, c.caso, c.viajes)
		}
		g, p := a.UnViaje()
		apuesta := map[[2]int64]string{{0, 0}: "", {1, 0}: ganada, {0, 1}: perdida}[[2]int64{g - antesG, p - antesP}]
		if apuesta != c.apuesta {
			t.Errorf("command %d: bets won %d and lost %d, want %q", i, g-antesG, p-antesP, c.apuesta)
		}
	}
	for saga, want := range map[string]int{"s1": 1, "s2": 0, "s3": 0, "s4": 1, "p1": 1, "p2": 0, "p3": 0, "p4": 1, "p5": 0} {
		if got := activos(t, a, saga); got != want {
			t.Errorf("%s: %d active effects, want %d", saga, got, want)
		}
	}
}

// A batch of actions on their first delivery, each of its own step, costs
// one round trip on MySQL too. When one of its steps has an inbox row the
// whole bet is lost, nothing of it is kept, and the batch is decided the
// usual way on the rows read.
func TestLoteMySQLEnUnViaje(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "pa_")
	n := integracion.ContarComandos(t, cfg)
	a := abrirEn(t, cfg, 1)
	lote := func(ordenes ...orden) (string, int64) {
		t.Helper()
		var cs []almacen.Comando
		for _, o := range ordenes {
			o.primera = true
			cs = append(cs, comando(o))
		}
		antes := n.Load()
		ds, err := a.AplicarLote(t.Context(), cs)
		if err != nil {
			t.Fatal(err)
		}
		var casos []string
		for _, d := range ds {
			casos = append(casos, d.Caso.String())
		}
		return strings.Join(casos, " "), n.Load() - antes
	}
	hacer := func(saga string) orden { return orden{saga: saga, accion: eventos.Ejecutar} }

	if casos, viajes := lote(hacer("a"), hacer("b"), orden{saga: "c", accion: eventos.Ejecutar, fallo: "x"}); casos != "accion_hecha accion_hecha accion_inyectada" || viajes != 1 {
		t.Errorf("first deliveries: %s in %d round trips, want 1", casos, viajes)
	}
	if ganadas, perdidas := a.UnViaje(); ganadas != 3 || perdidas != 0 {
		t.Errorf("bets won %d and lost %d, want 3 and 0", ganadas, perdidas)
	}
	// "d" was compensated first (the check catches it); "a" is a
	// redelivery taken for a first one (so would its inbox row's key).
	if _, err := a.Aplicar(t.Context(), comando(orden{saga: "d", accion: eventos.Compensar})); err != nil {
		t.Fatal(err)
	}
	// The text and its ROLLBACK, then the usual batch: lock and read, then
	// the effect, the inbox rows and COMMIT.
	if casos, viajes := lote(hacer("e"), hacer("d")); casos != "accion_hecha accion_tardia" || viajes != 4 {
		t.Errorf("a lost bet: %s in %d round trips, want 4", casos, viajes)
	}
	if casos, viajes := lote(hacer("f"), hacer("a")); casos != "accion_hecha reenvio" || viajes != 4 {
		t.Errorf("a lost bet: %s in %d round trips, want 4", casos, viajes)
	}
	if ganadas, perdidas := a.UnViaje(); ganadas != 3 || perdidas != 4 {
		t.Errorf("bets won %d and lost %d, want 3 and 4", ganadas, perdidas)
	}
	for saga, want := range map[string]int{"a": 1, "b": 1, "c": 0, "d": 0, "e": 1, "f": 1} {
		if got := activos(t, a, saga); got != want {
			t.Errorf("%s: %d active effects, want %d", saga, got, want)
		}
	}
}

// Two instances (two stores on one database) applying the same actions on
// their first delivery at once, alone and in batches, while each also
// compensates every step: each step's action is decided once (done, or late
// if its compensation came first), takes effect at most once, and ends
// undone; every other copy is answered with the recorded reply.
func TestApuestasConcurrentesNoDuplicanEfectos(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "pa_")
	instancias := []*almacen.Almacen{abrirEn(t, cfg, 8), abrirEn(t, cfg, 8)}
	const sagas, copias = 20, 4
	nombre := func(i int) string { return fmt.Sprintf("c%d", i) }
	hacer := func(i int) almacen.Comando {
		return comando(orden{saga: nombre(i), accion: eventos.Ejecutar, primera: true})
	}
	var mu sync.Mutex
	casos := map[string][]string{}
	anotar := func(i int, d bandeja.Decision) {
		mu.Lock()
		defer mu.Unlock()
		casos[nombre(i)] = append(casos[nombre(i)], d.Caso.String())
	}
	var wg sync.WaitGroup
	for _, a := range instancias {
		wg.Go(func() {
			// From the last saga, so that some compensations come first.
			for i := sagas - 1; i >= 0; i-- {
				d, err := a.Aplicar(t.Context(), comando(orden{saga: nombre(i), accion: eventos.Compensar, primera: true}))
				if err != nil {
					t.Error(err)
					return
				}
				anotar(i, d)
			}
		})
		for k := range copias {
			wg.Go(func() {
				for i := range sagas {
					// Even copies apply each saga alone, odd ones two sagas
					// (i, i+1) in a batch.
					if k%2 == 0 {
						d, err := a.Aplicar(t.Context(), hacer(i))
						if err != nil {
							t.Error(err)
							return
						}
						anotar(i, d)
						continue
					}
					if i%2 == 1 {
						continue
					}
					ds, err := a.AplicarLote(t.Context(), []almacen.Comando{hacer(i), hacer(i + 1)})
					if err != nil {
						// A batch that loses a race is run one by one by its
						// caller; do the same.
						ds = nil
						for _, x := range []int{i, i + 1} {
							d, err := a.Aplicar(t.Context(), hacer(x))
							if err != nil {
								t.Error(err)
								return
							}
							ds = append(ds, d)
						}
					}
					anotar(i, ds[0])
					anotar(i+1, ds[1])
				}
			})
		}
	}
	wg.Wait()
	for i := range sagas {
		saga := nombre(i)
		n := map[string]int{}
		for _, c := range casos[saga] {
			n[c]++
		}
		efs, err := instancias[0].Efectos(t.Context(), saga)
		if err != nil {
			t.Fatal(err)
		}
		decidida := n["accion_hecha"] + n["accion_tardia"]
		despues := n["compensacion_hecha"] == 1 && n["accion_hecha"] == 1
		antes := n["compensacion_anticipada"] == 1 && n["accion_tardia"] == 1
		if decidida != 1 || !(despues || antes) || len(efs) != n["accion_hecha"] || servicio.Activos(efs) != 0 {
			t.Errorf("%s: casos %v, %d effect rows (%d active)", saga, n, len(efs), servicio.Activos(efs))
		}
	}
	ganadas, perdidas := int64(0), int64(0)
	for _, a := range instancias {
		g, p := a.UnViaje()
		ganadas, perdidas = ganadas+g, perdidas+p
	}
	tardias := 0
	for _, cs := range casos {
		tardias += strings.Count(strings.Join(cs, " "), "accion_tardia")
	}
	t.Logf("bets won %d, lost %d; %d of %d actions came after their compensation", ganadas, perdidas, tardias, sagas)
}

// The bet takes the step's lock before its check: while another instance
// holds it, having recorded the step's compensation but not yet committed,
// an action on its first delivery waits, then sees that row and is
// rejected as late, without effect.
func TestApuestaEsperaElBloqueoDelPaso(t *testing.T) {
	integracion.MySQLDSN(t)
	cfg := integracion.BaseMySQL(t, "pa_")
	a := abrirEn(t, cfg, 2)
	otra, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otra.Close() })
	tx, err := otra.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`INSERT INTO bloqueos_paso (saga_id, paso, ultimo_comando, actualizado_en) VALUES ('s1', 'paso1', 'Deshacer', 'x')`,
		`INSERT INTO inbox (saga_id, paso, accion, comando, clave_idempotencia, resultado, exito, error, datos, respondido_ms, procesado_en)
			VALUES ('s1', 'paso1', 'COMPENSAR', 'Deshacer', 's1:paso1:COMPENSAR', 'exito', 1, NULL, '{}', 1, 'x')`,
	} {
		if _, err := tx.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	type resultado struct {
		d   bandeja.Decision
		err error
	}
	hecho := make(chan resultado, 1)
	go func() {
		d, err := a.Aplicar(t.Context(), comando(orden{saga: "s1", accion: eventos.Ejecutar, primera: true}))
		hecho <- resultado{d, err}
	}()
	select {
	case r := <-hecho:
		t.Fatalf("the action did not wait for the step's lock: %s, %v", r.d.Caso, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-hecho
	if r.err != nil || r.d.Caso != bandeja.AccionTardia || activos(t, a, "s1") != 0 {
		t.Fatalf("after the compensation committed: %s, %v, %d active effects; want accion_tardia and none", r.d.Caso, r.err, activos(t, a, "s1"))
	}
	if ganadas, perdidas := a.UnViaje(); ganadas != 0 || perdidas != 1 {
		t.Errorf("bets won %d and lost %d, want 0 and 1", ganadas, perdidas)
	}
}
