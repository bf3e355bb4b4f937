package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/go-sql-driver/mysql"
)

// entorno is one isolated test world: its own namespace and database.
type entorno struct {
	t      *testing.T
	vars   map[string]string
	store  *almacen.DB
	client pulsar.Client
	topo   eventos.Topologia
	// api is the address of the API of the last coordinator started in
	// process.
	api string
}

func aleatorio() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// nuevoEntorno prepares env vars for a coordinator on the given store type.
// Step deadlines are 1s, so timeouts are observable in seconds.
func nuevoEntorno(t *testing.T, tipo string) *entorno {
	return nuevoEntornoConPlazo(t, tipo, time.Second)
}

func nuevoEntornoConPlazo(t *testing.T, tipo string, plazo time.Duration) *entorno {
	t.Helper()
	purl, aurl := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ns := "t" + aleatorio()
	e := &entorno{t: t, topo: eventos.Topologia{Tenant: "alpespartner", Namespace: ns}, vars: map[string]string{
		"SAGAS_PULSAR_URL": purl, "SAGAS_PULSAR_ADMIN_URL": aurl, "SAGAS_PULSAR_NAMESPACE": ns,
		"SAGAS_API_HOST": "127.0.0.1", "SAGAS_API_PORT": "0", "SAGAS_LOG_DIR": "off", "SAGAS_LOG_LEVEL": "warn",
		"SAGAS_TIMER_INTERVAL": "50ms", "SAGAS_PUENTE": "off", "SAGAS_REPLICA_ID": "r1-" + ns,
	}}
	dir := t.TempDir()
	switch tipo {
	case "sqlite":
		e.vars["SAGAS_STORAGE_TYPE"] = "sqlite"
		e.vars["SAGAS_DB_PATH"] = filepath.Join(dir, "coordinador.db")
	case "mysql":
		dsn := integracion.MySQLDSN(t)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		nombre := "coord_" + ns
		admin, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec("CREATE DATABASE " + nombre); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP DATABASE " + nombre); admin.Close() })
		host, port, _ := strings.Cut(cfg.Addr, ":")
		for k, v := range map[string]string{"SAGAS_STORAGE_TYPE": "mysql", "SAGAS_DB_HOST": host, "SAGAS_DB_PORT": port,
			"SAGAS_DB_NAME": nombre, "SAGAS_DB_USER": cfg.User, "SAGAS_DB_PASSWORD": cfg.Passwd} {
			e.vars[k] = v
		}
	}
	defs := filepath.Join(dir, "definiciones")
	os.Mkdir(defs, 0o755)
	for _, d := range []*saga.Definicion{saga.Campana(), saga.LanzarCampaniaCompleta()} {
		for i := range d.Pasos {
			d.Pasos[i].Plazo = saga.Duracion(plazo)
		}
		// Compensations wait as long as steps (at least 2s): a compensation
		// timeout is a transition too, and a test that asks for long
		// deadlines must not get short ones here.
		d.PlazoCompensacion = saga.Duracion(max(2*time.Second, plazo))
		d.EsperaCompensacion = saga.Duracion(100 * time.Millisecond)
		d.EsperaMaxima = saga.Duracion(500 * time.Millisecond)
		b, _ := json.Marshal(d)
		os.WriteFile(filepath.Join(defs, d.Tipo+".json"), b, 0o644)
	}
	e.vars["SAGAS_DEFINICIONES"] = defs
	c, err := bus.Conectar(purl, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	t.Cleanup(c.Close)
	// The operator's step, as a user runs it.
	var salida strings.Builder
	if err := run(t.Context(), []string{"coordinador", "-preparar"}, e.getenv, &salida, nil); err != nil {
		t.Fatalf("coordinador -preparar: %v\n%s", err, salida.String())
	}
	return e
}

func (e *entorno) getenv(k string) string { return e.vars[k] }

// abrir opens the test's database to observe sagas from outside.
func (e *entorno) abrir() *almacen.DB {
	if e.store != nil {
		return e.store
	}
	cfg, err := leerConfig(e.getenv)
	if err != nil {
		e.t.Fatal(err)
	}
	db, err := almacen.Abrir(context.Background(), almacen.Config{Tipo: cfg.Almacen, Ruta: cfg.SQLitePath, DSN: cfg.dsn()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	e.store = db
	return db
}

// coordinadorEnProceso runs the coordinator in this process until the test ends.
func (e *entorno) coordinadorEnProceso(replica string) (detener func()) {
	e.t.Helper()
	vars := map[string]string{}
	for k, v := range e.vars {
		vars[k] = v
	}
	vars["SAGAS_REPLICA_ID"] = replica
	ctx, cancel := context.WithCancel(context.Background())
	listo := make(chan string, 1)
	fin := make(chan error, 1)
	go func() {
		var salida io.Writer = io.Discard
		if os.Getenv("SAGAS_TEST_LOGS") != "" {
			salida = os.Stderr
		}
		fin <- run(ctx, []string{"coordinador"}, func(k string) string { return vars[k] }, salida, listo)
	}()
	select {
	case e.api = <-listo:
	case err := <-fin:
		e.t.Fatalf("coordinator did not start: %v", err)
	case <-time.After(60 * time.Second):
		e.t.Fatal("coordinator did not start within 60s")
	}
	var once sync.Once
	detener = func() {
		once.Do(func() {
			cancel()
			if err := <-fin; err != nil {
				e.t.Errorf("coordinator: %v", err)
			}
		})
	}
	e.t.Cleanup(detener)
	return detener
}

// conducta decides a test participant's answer to a command: reply or stay
// silent, and success or failure.
type conducta func(c eventos.Comando) (responder, exito bool)

func siempreBien(eventos.Comando) (bool, bool) { return true, true }

// participantes runs test-only participants on every service topic, answering
// by conducta, and counts the commands received.
type participantes struct {
	mu        sync.Mutex
	recibidos map[string]int // clave:intento → deliveries
	efectos   map[string]int // saga:paso → +1 per successful action, -1 per compensation
}

func (e *entorno) participantes(servicios []string, c conducta) *participantes {
	e.t.Helper()
	p := &participantes{recibidos: map[string]int{}, efectos: map[string]int{}}
	cc, _ := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	rc, _ := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
	prod, err := bus.NuevoProductor(e.client, e.topo.Respuestas(), "", esquemas.MustAvro(esquemas.RespuestaSaga), bus.LotesMixtos)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var consumidores []*bus.Consumidor
	for _, s := range servicios {
		k, err := bus.Consumir(ctx, e.client, bus.OpcionesConsumidor{
			Topico: e.topo.Comandos(s), Suscripcion: "participante-" + s,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}, func(ctx context.Context, msg pulsar.Message) error {
			cmd, err := cc.Decodificar(msg.Payload())
			if err != nil {
				return bus.Permanente(err)
			}
			responder, exito := c(cmd)
			p.mu.Lock()
			p.recibidos[fmt.Sprintf("%s:%d", cmd.ClaveIdempotencia, cmd.Intento)]++
			if p.recibidos[fmt.Sprintf("%s:%d", cmd.ClaveIdempotencia, cmd.Intento)] > 1 && os.Getenv("SAGAS_TEST_LOGS") != "" {
				fmt.Fprintf(os.Stderr, "DUP %s id=%s msgid=%s redeliveries=%d\n", cmd.ClaveIdempotencia, cmd.ID, msg.ID(), msg.RedeliveryCount())
			}
			clave := cmd.SagaID + ":" + cmd.Paso
			if responder && exito && cmd.Accion == eventos.Ejecutar {
				p.efectos[clave]++
			}
			if responder && cmd.Accion == eventos.Compensar {
				p.efectos[clave] = 0
			}
			p.mu.Unlock()
			if !responder {
				return nil
			}
			errMsg := ""
			if !exito {
				errMsg = "fallo simulado en " + cmd.Paso
			}
			r := eventos.ResponderA(&cmd, s, exito, errMsg, json.RawMessage(`{"servicio":"`+s+`"}`), time.Now())
			b, err := rc.Codificar(r)
			if err != nil {
				return err
			}
			_, err = prod.Send(ctx, &pulsar.ProducerMessage{Payload: b, Key: cmd.SagaID})
			return err
		})
		if err != nil {
			e.t.Fatal(err)
		}
		consumidores = append(consumidores, k)
	}
	e.t.Cleanup(func() {
		cancel()
		for _, k := range consumidores {
			k.Close()
		}
		prod.Close()
	})
	return p
}

func (p *participantes) recibido(clave string, intento int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recibidos[fmt.Sprintf("%s:%d", clave, intento)]
}

// iniciar starts sagas through an engine on the test's own store connection,
// as any replica would.
func (e *entorno) motor() *motor.Motor {
	cc, _ := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	ec, _ := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	cat := saga.CatalogoPorDefecto()
	if err := cat.CargarDirectorio(os.DirFS(e.vars["SAGAS_DEFINICIONES"])); err != nil {
		e.t.Fatal(err)
	}
	return motor.Nuevo(motor.Opciones{
		Store: e.abrir(), Catalogo: cat, Topologia: e.topo, Comandos: cc, Eventos: ec,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func (e *entorno) iniciar(m *motor.Motor, tipo string, datos string) string {
	e.t.Helper()
	id, creada, err := m.Iniciar(context.Background(), motor.Solicitud{Tipo: tipo, Datos: json.RawMessage(datos)})
	if err != nil || !creada {
		e.t.Fatalf("iniciar: %v (creada %v)", err, creada)
	}
	return id
}

// esperarTerminal waits until the saga is terminal and returns it.
func (e *entorno) esperarTerminal(id string, limite time.Duration) saga.Saga {
	e.t.Helper()
	fin := time.Now().Add(limite)
	for {
		s, err := e.abrir().Saga(context.Background(), id)
		if err == nil && s.Estado.Terminal() {
			return s
		}
		if time.Now().After(fin) {
			e.t.Fatalf("saga %s not terminal after %v: %+v (err %v)", id, limite, s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// esperarTodas waits until n sagas are terminal (counted in the store).
func (e *entorno) esperarTodas(n int, limite time.Duration) almacen.Resumen {
	e.t.Helper()
	fin := time.Now().Add(limite)
	for {
		r, err := e.abrir().Contar(context.Background(), almacen.Filtro{})
		if err != nil {
			e.t.Fatal(err)
		}
		if r[saga.Completada]+r[saga.Compensada]+r[saga.CompensacionFallida] >= n {
			return r
		}
		if time.Now().After(fin) {
			e.t.Fatalf("only %v terminal of %d after %v", r, n, limite)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *entorno) outboxVacio(limite time.Duration) {
	e.t.Helper()
	fin := time.Now().Add(limite)
	for {
		n, _, err := e.abrir().Outbox(context.Background())
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(fin) {
			e.t.Fatalf("outbox still holds %d rows (err %v)", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var servicios = []string{"influencer", "marca", "tracking", "afiliados", "comisiones", "notificaciones"}

func almacenes(t *testing.T, f func(t *testing.T, tipo string)) {
	for _, tipo := range []string{"sqlite", "mysql"} {
		t.Run(tipo, func(t *testing.T) { f(t, tipo) })
	}
}

func TestCampanaCompletaYCompensaContraElBroker(t *testing.T) {
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntorno(t, tipo)
		e.participantes(servicios, func(c eventos.Comando) (bool, bool) {
			return true, !(c.Paso == "tracking" && c.Accion == eventos.Ejecutar && strings.Contains(c.Datos, "fallar"))
		})
		e.coordinadorEnProceso("r1")
		m := e.motor()

		ok := e.esperarTerminal(e.iniciar(m, saga.TipoCampana, `{"nombre":"bien"}`), 30*time.Second)
		if ok.Estado != saga.Completada || !slices.Equal(ok.PasosEjecutados(), []string{"influencer", "marca", "tracking"}) {
			t.Fatalf("happy path: %s %v", ok.Estado, ok.PasosEjecutados())
		}
		mal := e.esperarTerminal(e.iniciar(m, saga.TipoCampana, `{"nombre":"fallar"}`), 30*time.Second)
		if mal.Estado != saga.Compensada || mal.PasoFallido != "tracking" ||
			!slices.Equal(mal.Compensaciones, []string{"tracking", "marca", "influencer"}) {
			t.Fatalf("failure path: %s paso_fallido %q compensaciones %v", mal.Estado, mal.PasoFallido, mal.Compensaciones)
		}
		segundo := e.esperarTerminal(e.iniciar(m, saga.TipoLanzarCampaniaCompleta, `{"nombre":"l"}`), 30*time.Second)
		if segundo.Estado != saga.Completada || len(segundo.PasosEjecutados()) != 4 {
			t.Fatalf("second flow: %s %v", segundo.Estado, segundo.PasosEjecutados())
		}
		e.outboxVacio(10 * time.Second)
	})
}

func TestPasoSilenciosoVenceSeReintentaYCompensa(t *testing.T) {
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntorno(t, tipo)
		p := e.participantes(servicios, func(c eventos.Comando) (bool, bool) {
			// marca never answers its action; compensations are answered.
			return !(c.Paso == "marca" && c.Accion == eventos.Ejecutar), true
		})
		e.coordinadorEnProceso("r1")
		id := e.iniciar(e.motor(), saga.TipoCampana, `{}`)
		s := e.esperarTerminal(id, 30*time.Second)
		if s.Estado != saga.Compensada || s.PasoFallido != "marca" || !strings.Contains(s.Error, "timeout") ||
			!slices.Equal(s.Compensaciones, []string{"marca", "influencer"}) {
			t.Fatalf("%s paso_fallido %q error %q compensaciones %v", s.Estado, s.PasoFallido, s.Error, s.Compensaciones)
		}
		clave := saga.Clave(id, "marca", saga.Ejecutar)
		for intento := 1; intento <= 3; intento++ {
			if n := p.recibido(clave, intento); n < 1 {
				t.Fatalf("attempt %d of %s never reached the participant", intento, clave)
			}
		}
		// A reply that arrives after the saga ended changes nothing.
		rc, _ := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
		prod, err := bus.NuevoProductor(e.client, e.topo.Respuestas(), "", esquemas.MustAvro(esquemas.RespuestaSaga), bus.LotesMixtos)
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		cmd := eventos.Comando{ID: "x", SagaID: id, Paso: "marca", Accion: eventos.Ejecutar, Intento: 1, ClaveIdempotencia: clave, Type: eventos.Tipo("NotificarMarca")}
		b, _ := rc.Codificar(eventos.ResponderA(&cmd, "marca", true, "", nil, time.Now()))
		if _, err := prod.Send(context.Background(), &pulsar.ProducerMessage{Payload: b, Key: id}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		despues, err := e.abrir().Saga(context.Background(), id)
		if err != nil || despues.Version != s.Version || despues.Estado != saga.Compensada {
			t.Fatalf("late reply changed the saga: version %d → %d, estado %s (err %v)", s.Version, despues.Version, despues.Estado, err)
		}
	})
}

// TestDosReplicasMilSagas runs 1,000 sagas through two coordinator replicas on
// MariaDB: all end terminal and no transition is applied twice (each saga's
// version is exactly its number of transitions, each command was sent once).
func TestDosReplicasMilSagas(t *testing.T) {
	// Long deadlines keep retries rare; each saga's version must still be
	// exactly its number of transitions, retries included.
	e := nuevoEntornoConPlazo(t, "mysql", time.Minute)
	p := e.participantes(servicios[:3], func(c eventos.Comando) (bool, bool) {
		return true, !(c.Paso == "marca" && c.Accion == eventos.Ejecutar && strings.HasSuffix(c.SagaID, "7"))
	})
	e.coordinadorEnProceso("r1")
	e.coordinadorEnProceso("r2")
	m := e.motor()
	const n = 1000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08d-%s", i, aleatorio())
		if _, _, err := m.Iniciar(context.Background(), motor.Solicitud{Tipo: saga.TipoCampana, SagaID: ids[i], Datos: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	e.esperarTodas(n, 3*time.Minute)
	e.outboxVacio(30 * time.Second)
	sagas, err := e.abrir().Listar(context.Background(), almacen.Filtro{Limite: 1000})
	if err != nil || len(sagas) != n {
		t.Fatalf("listed %d sagas (err %v)", len(sagas), err)
	}
	for _, s := range sagas {
		var want int64 = 3 // three successful steps
		// plus one transition per retry after a deadline (a slow machine
		// can delay a first reply past it; the retry is a transition too)
		for _, p := range s.Pasos {
			want += int64(p.Intento-1) + 2*int64(max(p.IntentoCompensacion-1, 0))
		}
		if strings.HasSuffix(s.ID, "7") {
			want++ // influencer ok, marca fails, two compensations
			if s.Estado != saga.Compensada {
				t.Fatalf("saga %s: %s", s.ID, s.Estado)
			}
		} else if s.Estado != saga.Completada {
			t.Fatalf("saga %s: %s", s.ID, s.Estado)
		}
		if s.Version != want {
			t.Fatalf("saga %s: version %d, want %d: a transition was applied twice or lost", s.ID, s.Version, want)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.recibidos {
		if v != 1 && !strings.HasSuffix(k, ":2") {
			// Each command is published once; broker and Key_Shared deliver it once.
			t.Errorf("command %s delivered %d times", k, v)
		}
	}
}

// TestGrupoParaleloCompletaYCompensaContraElBroker runs lanzar-campania-completa
// version 2 (affiliates, then commissions, tracking and notifications at
// once) through a coordinator on the real broker: the group's commands leave
// together and the replies come back in whatever order the participants
// answer; when tracking fails, the members that answered, the member that
// answers late and the one that never answers are all compensated, then the
// affiliates step, and nothing is left applied.
func TestGrupoParaleloCompletaYCompensaContraElBroker(t *testing.T) {
	almacenes(t, func(t *testing.T, tipo string) {
		e := nuevoEntorno(t, tipo)
		p := e.participantes(servicios, func(c eventos.Comando) (bool, bool) {
			if c.Accion != eventos.Ejecutar {
				return true, true
			}
			switch {
			case c.Paso == "inicializar_tracking_conversiones" && strings.Contains(c.Datos, "fallar"):
				return true, false
			case c.Paso == "configurar_comisiones_campania" && strings.Contains(c.Datos, "fallar"):
				time.Sleep(300 * time.Millisecond) // answers after tracking failed
			case c.Paso == "preparar_notificaciones_campania" && strings.Contains(c.Datos, "silencio"):
				return false, false // never answers: its deadline (1s) runs out
			}
			return true, true
		})
		e.coordinadorEnProceso("r1")
		m := e.motor()
		miembros := []string{"configurar_comisiones_campania", "inicializar_tracking_conversiones", "preparar_notificaciones_campania"}

		ok := e.esperarTerminal(e.iniciar(m, saga.TipoLanzarCampaniaCompleta, `{"nombre":"bien"}`), 30*time.Second)
		want := append([]string{"solicitar_afiliados_elegibles"}, miembros...)
		if ok.Estado != saga.Completada || ok.VersionDefinicion != 2 || !slices.Equal(ok.PasosEjecutados(), want) {
			t.Fatalf("happy path: %s v%d %v", ok.Estado, ok.VersionDefinicion, ok.PasosEjecutados())
		}
		for _, s := range ok.Pasos[2:] {
			if !s.Inicio.Equal(ok.Pasos[1].Inicio) {
				t.Fatalf("members did not start together: %s at %v, %s at %v", s.Nombre, s.Inicio, ok.Pasos[1].Nombre, ok.Pasos[1].Inicio)
			}
		}

		id := e.iniciar(m, saga.TipoLanzarCampaniaCompleta, `{"nombre":"fallar silencio"}`)
		mal := e.esperarTerminal(id, 30*time.Second)
		if mal.Estado != saga.Compensada || mal.PasoFallido != "inicializar_tracking_conversiones" {
			t.Fatalf("failure path: %s paso_fallido %q error %q", mal.Estado, mal.PasoFallido, mal.Error)
		}
		if n := len(mal.Compensaciones); n != 4 || mal.Compensaciones[3] != "solicitar_afiliados_elegibles" {
			t.Fatalf("compensaciones %v: every member first, then the affiliates", mal.Compensaciones)
		}
		comp := slices.Clone(mal.Compensaciones[:3])
		slices.Sort(comp)
		if !slices.Equal(comp, miembros) {
			t.Fatalf("compensaciones %v", mal.Compensaciones)
		}
		if s := mal.Pasos[3]; s.Intento != 1 || !strings.Contains(s.Error, "timeout") {
			t.Fatalf("silent member: intento %d error %q; want one attempt, timed out", s.Intento, s.Error)
		}
		if p.recibido(saga.Clave(id, "preparar_notificaciones_campania", saga.Ejecutar), 2) != 0 {
			t.Fatal("the silent member was retried after its group failed")
		}
		p.mu.Lock()
		for _, paso := range want {
			if v := p.efectos[id+":"+paso]; v != 0 {
				t.Errorf("%s left applied (%d)", paso, v)
			}
		}
		p.mu.Unlock()
		e.outboxVacio(10 * time.Second)
	})
}
