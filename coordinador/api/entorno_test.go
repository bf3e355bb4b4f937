package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// entorno is the API on the real engine and a real SQLite store; a
// simulated participant (terminar) moves sagas forward.
type entorno struct {
	t         *testing.T
	e         *echo.Echo
	store     *almacen.DB
	motor     *motor.Motor
	avisos    *motor.Avisos
	iniciador *iniciadorProbado
	registro  *prometheus.Registry
	reloj     *reloj
	logs      *bufferSeguro
	token     string
}

// reloj is the engine's clock; tests advance it past backoff waits.
type reloj struct {
	mu sync.Mutex
	t  time.Time
}

func (r *reloj) ahora() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t = r.t.Add(time.Millisecond) // every reading moves on, so durations are > 0
	return r.t
}

func (r *reloj) avanzar(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t = r.t.Add(d)
}

// iniciadorProbado is the engine, counting Iniciar calls and running
// despues (if set) after each saga it starts; while falla is set, Iniciar
// returns it instead (a store that does not answer, say).
type iniciadorProbado struct {
	*motor.Motor
	llamadas atomic.Int32
	despues  func(id string)
	falla    error
}

func (i *iniciadorProbado) Iniciar(ctx context.Context, sol motor.Solicitud) (string, bool, error) {
	i.llamadas.Add(1)
	if i.falla != nil {
		return "", false, i.falla
	}
	id, creada, err := i.Motor.Iniciar(ctx, sol)
	if err == nil && creada && i.despues != nil {
		i.despues(id)
	}
	return id, creada, err
}

type bufferSeguro struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *bufferSeguro) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *bufferSeguro) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func nuevoEntorno(t *testing.T, ajustar ...func(*Opciones)) *entorno {
	t.Helper()
	ctx := context.Background()
	store, err := almacen.Abrir(ctx, almacen.Config{Tipo: "sqlite", Ruta: filepath.Join(t.TempDir(), "sagas.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	comandos, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		t.Fatal(err)
	}
	en := &entorno{
		t: t, store: store, avisos: motor.NuevosAvisos(), registro: prometheus.NewRegistry(),
		reloj: &reloj{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}, logs: &bufferSeguro{},
	}
	logger := slog.New(slog.NewJSONHandler(en.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	en.motor = motor.Nuevo(motor.Opciones{
		Store: store, Catalogo: catalogoConAviso(t), Topologia: eventos.TopologiaPorDefecto,
		Comandos: comandos, Eventos: evs, Logger: slog.New(slog.DiscardHandler), Observador: en.avisos, Reloj: en.reloj.ahora,
	})
	en.iniciador = &iniciadorProbado{Motor: en.motor}
	o := Opciones{
		Iniciador: en.iniciador, Consultas: store, Esperas: en.avisos, Outbox: store,
		BaseDatos: store.Ping, Broker: func(context.Context) error { return nil },
		Registro: en.registro, Logger: logger,
	}
	for _, f := range ajustar {
		f(&o)
	}
	en.token = o.Token
	en.e, err = Nuevo(o)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// respuesta is a recorded answer.
type respuesta struct {
	codigo   int
	cabecera http.Header
	cuerpo   []byte
}

func (r respuesta) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.cuerpo, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", r.codigo, err, r.cuerpo)
	}
	return m
}

// hacer sends a request; JSON content type when there is a body, and the
// environment's token unless a header says otherwise.
func (en *entorno) hacer(metodo, ruta, cuerpo string, cabeceras ...string) respuesta {
	en.t.Helper()
	var body io.Reader
	if cuerpo != "" {
		body = strings.NewReader(cuerpo)
	}
	req := httptest.NewRequest(metodo, ruta, body)
	if cuerpo != "" {
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	if en.token != "" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+en.token)
	}
	for i := 0; i+1 < len(cabeceras); i += 2 {
		if cabeceras[i+1] == "" {
			req.Header.Del(cabeceras[i])
			continue
		}
		req.Header.Set(cabeceras[i], cabeceras[i+1])
	}
	return en.enviar(req)
}

func (en *entorno) enviar(req *http.Request) respuesta {
	rec := httptest.NewRecorder()
	en.e.ServeHTTP(rec, req)
	return respuesta{codigo: rec.Code, cabecera: rec.Header(), cuerpo: rec.Body.Bytes()}
}

// sagas counts every saga in the store.
func (en *entorno) sagas() int {
	en.t.Helper()
	r, err := en.store.Contar(context.Background(), almacen.Filtro{})
	if err != nil {
		en.t.Fatal(err)
	}
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

// nadaCreado fails when a rejected request reached the engine or the store.
func (en *entorno) nadaCreado(antes int) {
	en.t.Helper()
	if n := en.sagas(); n != antes {
		en.t.Fatalf("a rejected request created a saga: %d sagas, want %d", n, antes)
	}
}

// terminar plays every participant until saga id is terminal: the action of
// step falla fails, the compensation of step fallaCompensacion always fails
// (so its retries run out after the engine's backoff, which the clock skips).
func (en *entorno) terminar(id, falla, fallaCompensacion string) (saga.Saga, error) {
	ctx := context.Background()
	for range 200 {
		s, err := en.store.Saga(ctx, id)
		if err != nil {
			return s, fmt.Errorf("terminar %s: %w", id, err)
		}
		if s.Estado.Terminal() {
			return s, nil
		}
		// Members of a parallel group are in flight together: answer the
		// last one first, so that their replies arrive out of order.
		p := s.Pasos[s.Actual]
		for j := len(s.Pasos) - 1; j >= 0; j-- {
			if e := s.Pasos[j].Estado; e == saga.PasoEjecutando || e == saga.PasoCompensando {
				p = s.Pasos[j]
				break
			}
		}
		r := eventos.Respuesta{ID: uuid.NewString(), SagaID: id, Paso: p.Nombre, Datos: `{"participante":"simulado"}`}
		switch {
		case p.Estado == saga.PasoEjecutando:
			r.Accion, r.Intento, r.Exito = eventos.Ejecutar, p.Intento, p.Nombre != falla
		case p.Estado == saga.PasoCompensando && s.EnEspera:
			// The relay's part: deadlines only run once the saga's commands
			// left the outbox.
			if _, err := en.store.DrenarOutbox(ctx, 1000, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
				ids := make([]int64, 0, len(ms))
				for _, m := range ms {
					ids = append(ids, m.ID)
				}
				return ids, nil
			}); err != nil {
				return s, fmt.Errorf("terminar %s: %w", id, err)
			}
			en.reloj.avanzar(time.Minute)
			if _, err := en.motor.VencerPlazos(ctx, 10); err != nil {
				return s, fmt.Errorf("terminar %s: %w", id, err)
			}
			continue
		case p.Estado == saga.PasoCompensando:
			r.Accion, r.Intento, r.Exito = eventos.Compensar, p.IntentoCompensacion, p.Nombre != fallaCompensacion
		default:
			return s, fmt.Errorf("terminar %s: paso %s en estado %s", id, p.Nombre, p.Estado)
		}
		if !r.Exito {
			r.Error = eventos.Opcional("fallo simulado en " + p.Nombre)
		}
		if err := en.motor.AplicarRespuesta(ctx, r); err != nil {
			return s, fmt.Errorf("terminar %s: %w", id, err)
		}
	}
	return saga.Saga{}, fmt.Errorf("terminar: la saga %s no termina", id)
}

// terminarYa is terminar for the test goroutine.
func (en *entorno) terminarYa(id, falla, fallaCompensacion string) saga.Saga {
	en.t.Helper()
	s, err := en.terminar(id, falla, fallaCompensacion)
	if err != nil {
		en.t.Fatal(err)
	}
	return s
}

const cuerpoSemillas = `{"nombre":"Campaña Demo","tipo":"influencer_marketing","presupuesto":50000,"marca":{"id_marca":"6f1c1f8e-2b5a-4b8e-9a43-1d2c3b4a5f60","nombre_marca":"Alpes"},"influencers":[{"nombre":"Tech","plataforma":"Instagram"}]}`

const cuerpoLanzamiento = `{"nombre":"Lanzamiento primavera","descripcion":"Afiliados de primavera","tipo":"afiliados","canal_publicidad":"redes_sociales","objetivo":"conversiones","fecha_inicio":"2025-03-01T00:00:00Z","fecha_fin":"2025-03-31T23:59:59-05:00","presupuesto":25000,"moneda":"COP","comision":{"tipo":"porcentaje","valor":12.5},"criterios_afiliados":{"segmento_audiencia":"jovenes","categorias":["tecnologia"],"min_seguidores":1000,"maximo":50},"canales_notificacion":["email","push"]}`

// con returns body with the fields of cambios set (null deletes a field).
func con(t *testing.T, body, cambios string) string {
	t.Helper()
	var m, c map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cambios), &c); err != nil {
		t.Fatal(err)
	}
	for k, v := range c {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
