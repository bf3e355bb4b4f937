package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// --- each saga's history is a valid path of the state machine ---------------

// pasoHistoria is one step row as the history check reads it.
type pasoHistoria struct {
	Orden                       int
	Nombre, Estado              string
	Inicio, Fin                 sql.NullTime
	InicioComp, FinComp         sql.NullTime
	rango                       int // position of the step's group in the definition
	accionTerminada, compensado bool
}

// sagaHistoria is one saga row as the history check reads it.
type sagaHistoria struct {
	ID, Tipo, Estado string
	VersionDef       int
	Version          int64
	Compensaciones   []string
	Pasos            []pasoHistoria
}

// resumenEventos is what eventos-saga holds: the outcome events per saga.
type resumenEventos struct {
	Mensajes  int
	PorSaga   map[string][]eventos.Evento
	Ilegibles int
}

// leerEventosSaga reads every message of the namespace's eventos-saga topic
// (each partition when it is partitioned) from the earliest.
func leerEventosSaga(ctx context.Context, adminURL, pulsarURL string, seg bus.Seguridad, ns string, logger *slog.Logger) (resumenEventos, error) {
	r := resumenEventos{PorSaga: map[string][]eventos.Evento{}}
	todos, err := topicosDe(ctx, adminURL, seg, ns)
	if err != nil {
		return r, err
	}
	var topicos []string
	for _, t := range todos {
		corto := t[strings.LastIndex(t, "/")+1:]
		if corto == "eventos-saga" || strings.HasPrefix(corto, "eventos-saga-partition-") {
			topicos = append(topicos, t)
		}
	}
	if len(topicos) == 0 {
		return r, fmt.Errorf("no hay tópico eventos-saga en %s/%s", tenant, ns)
	}
	codec, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		return r, err
	}
	cliente, err := bus.Conectar(pulsarURL, logger, bus.ConSeguridad(seg))
	if err != nil {
		return r, err
	}
	defer cliente.Close()
	err = leerDesdeElPrincipio(ctx, cliente, seg, topicos, func(_ string, msg pulsar.Message) {
		r.Mensajes++
		ev, err := codec.Decodificar(msg.Payload())
		if err != nil || ev.SagaID == "" {
			r.Ilegibles++
			return
		}
		r.PorSaga[ev.SagaID] = append(r.PorSaga[ev.SagaID], ev)
	})
	if err != nil {
		return r, err
	}
	return r, nil
}

// leerHistorias reads the sagas and their steps with what the history check
// needs: versions, recorded compensations and the step timestamps.
func leerHistorias(ctx context.Context, db *sql.DB) (map[string]*sagaHistoria, error) {
	sagas := map[string]*sagaHistoria{}
	filas, err := db.QueryContext(ctx, `SELECT saga_id, tipo, version_definicion, estado, version, compensaciones FROM sagas`)
	if err != nil {
		return nil, fmt.Errorf("leer sagas: %w", err)
	}
	for filas.Next() {
		s := &sagaHistoria{}
		var comp string
		if err := filas.Scan(&s.ID, &s.Tipo, &s.VersionDef, &s.Estado, &s.Version, &comp); err != nil {
			filas.Close()
			return nil, fmt.Errorf("leer sagas: %w", err)
		}
		if comp != "" {
			if err := json.Unmarshal([]byte(comp), &s.Compensaciones); err != nil {
				filas.Close()
				return nil, fmt.Errorf("saga %s: compensaciones %q: %w", s.ID, comp, err)
			}
		}
		sagas[s.ID] = s
	}
	filas.Close()
	if err := filas.Err(); err != nil {
		return nil, fmt.Errorf("leer sagas: %w", err)
	}
	filas, err = db.QueryContext(ctx, `SELECT saga_id, orden, nombre, estado, timestamp_inicio, timestamp_fin,
		timestamp_inicio_compensacion, timestamp_fin_compensacion FROM pasos_saga ORDER BY saga_id, orden`)
	if err != nil {
		return nil, fmt.Errorf("leer pasos_saga: %w", err)
	}
	defer filas.Close()
	for filas.Next() {
		var id string
		var p pasoHistoria
		if err := filas.Scan(&id, &p.Orden, &p.Nombre, &p.Estado, &p.Inicio, &p.Fin, &p.InicioComp, &p.FinComp); err != nil {
			return nil, fmt.Errorf("leer pasos_saga: %w", err)
		}
		if s := sagas[id]; s != nil {
			s.Pasos = append(s.Pasos, p)
		}
	}
	return sagas, filas.Err()
}

// rangos maps each step name of a definition to the position of its group
// (steps of one parallel group share it; a step alone is its own group).
func rangos(d *saga.Definicion) map[string]int {
	out := map[string]int{}
	r := -1
	for i, p := range d.Pasos {
		if i == 0 || p.Grupo == "" || p.Grupo != d.Pasos[i-1].Grupo {
			r++
		}
		out[p.Nombre] = r
	}
	return out
}

// validarHistoria returns what is wrong with one terminal saga's history,
// or "" when it is a valid path of the state machine:
//   - steps started in definition order (a later group never before an
//     earlier one), and none started after an unfinished earlier group;
//   - COMPLETADA: every step COMPLETADO, nothing compensated;
//   - COMPENSADA: every started step COMPENSADO, the others PENDIENTE;
//   - compensations newest first: the recorded order (sagas.compensaciones)
//     names exactly the compensated steps, later groups before earlier ones,
//     and their start times agree;
//   - the version is at least the transitions the steps show (one per
//     group whose action ended, one per group compensated): a stale write
//     that went back in version leaves fewer;
//   - exactly one outcome event on eventos-saga, with the saga's estado and
//     compensations.
func validarHistoria(s *sagaHistoria, cat saga.Catalogo, evs []eventos.Evento) string {
	d, err := cat.BuscarVersion(s.Tipo, s.VersionDef)
	if err != nil {
		return fmt.Sprintf("definición %s v%d desconocida: %v", s.Tipo, s.VersionDef, err)
	}
	rango := rangos(d)
	if len(s.Pasos) != len(d.Pasos) {
		return fmt.Sprintf("%d pasos en pasos_saga, la definición tiene %d", len(s.Pasos), len(d.Pasos))
	}
	var problemas []string
	mal := func(f string, a ...any) { problemas = append(problemas, fmt.Sprintf(f, a...)) }
	for i := range s.Pasos {
		p := &s.Pasos[i]
		r, ok := rango[p.Nombre]
		if !ok || d.Pasos[i].Nombre != p.Nombre {
			mal("paso %d es %q, la definición dice %q", i, p.Nombre, d.Pasos[i].Nombre)
			continue
		}
		p.rango = r
		p.accionTerminada = p.Estado == string(saga.PasoCompletado) || p.Fin.Valid && p.Estado != string(saga.PasoEjecutando)
		p.compensado = p.Estado == string(saga.PasoCompensado)
	}
	if len(problemas) > 0 {
		return strings.Join(problemas, "; ")
	}
	// Forward path: a step of a later group starts only after every step of
	// the earlier groups ended its action.
	for i, p := range s.Pasos {
		if !p.Inicio.Valid {
			continue
		}
		for _, q := range s.Pasos[:i] {
			if q.rango == p.rango {
				continue
			}
			switch {
			case !q.Inicio.Valid:
				mal("%s empezó sin que empezara %s", p.Nombre, q.Nombre)
			case q.Estado != string(saga.PasoCompletado) && q.Estado != string(saga.PasoCompensado) && q.Estado != string(saga.PasoCompensando):
				mal("%s empezó con %s en %s", p.Nombre, q.Nombre, q.Estado)
			case q.Fin.Valid && p.Inicio.Time.Before(q.Fin.Time.Add(-time.Millisecond)):
				mal("%s empezó (%s) antes de que terminara %s (%s)", p.Nombre, p.Inicio.Time.Format("15:04:05.000"), q.Nombre, q.Fin.Time.Format("15:04:05.000"))
			}
		}
	}
	switch s.Estado {
	case string(saga.Completada):
		for _, p := range s.Pasos {
			if p.Estado != string(saga.PasoCompletado) || p.InicioComp.Valid {
				mal("COMPLETADA con %s en %s", p.Nombre, p.Estado)
			}
		}
		if len(s.Compensaciones) > 0 {
			mal("COMPLETADA con compensaciones %v", s.Compensaciones)
		}
	case string(saga.Compensada):
		for _, p := range s.Pasos {
			if p.Inicio.Valid && !p.compensado || !p.Inicio.Valid && p.Estado != string(saga.PasoPendiente) {
				mal("COMPENSADA con %s en %s", p.Nombre, p.Estado)
			}
		}
	}
	// Compensations newest first.
	var compensados []string
	for _, p := range s.Pasos {
		if p.compensado {
			compensados = append(compensados, p.Nombre)
		}
	}
	if a, b := slices.Sorted(slices.Values(compensados)), slices.Sorted(slices.Values(s.Compensaciones)); !slices.Equal(a, b) {
		mal("compensaciones registradas %v, pasos compensados %v", s.Compensaciones, compensados)
	}
	for i := 1; i < len(s.Compensaciones); i++ {
		if rango[s.Compensaciones[i]] > rango[s.Compensaciones[i-1]] {
			mal("compensaciones %v no van de la más nueva a la más antigua", s.Compensaciones)
			break
		}
	}
	porNombre := map[string]pasoHistoria{}
	for _, p := range s.Pasos {
		porNombre[p.Nombre] = p
	}
	for i := 1; i < len(s.Compensaciones); i++ {
		a, b := porNombre[s.Compensaciones[i-1]], porNombre[s.Compensaciones[i]]
		if a.rango != b.rango && a.InicioComp.Valid && b.InicioComp.Valid && b.InicioComp.Time.Before(a.InicioComp.Time.Add(-time.Millisecond)) {
			mal("la compensación de %s empezó antes que la de %s", b.Nombre, a.Nombre)
		}
	}
	// Version: at least one transition per group whose action ended and one
	// per group compensated.
	terminados, compensadosR := map[int]bool{}, map[int]bool{}
	for _, p := range s.Pasos {
		if p.accionTerminada {
			terminados[p.rango] = true
		}
		if p.compensado {
			compensadosR[p.rango] = true
		}
	}
	if minimo := int64(len(terminados) + len(compensadosR)); s.Version < minimo {
		mal("versión %d menor que las %d transiciones que muestran sus pasos", s.Version, minimo)
	}
	// One outcome event, agreeing with the store (re-sends of one event were
	// folded by unicos). A saga whose compensation gave up
	// (COMPENSACION_FALLIDA, which waits for an operator) resumes when a late
	// reply or a retry arrives, so it may have announced that state before
	// its final outcome; any other second outcome is a defect.
	previos, ultimo := evs, eventos.Evento{}
	if len(evs) > 0 {
		previos, ultimo = evs[:len(evs)-1], evs[len(evs)-1]
	}
	switch {
	case len(evs) == 0:
		mal("ningún evento en eventos-saga")
	case slices.ContainsFunc(previos, func(e eventos.Evento) bool { return e.Estado != string(saga.CompensacionFallida) }):
		var es []string
		for _, e := range evs {
			es = append(es, e.Estado)
		}
		mal("%d eventos en eventos-saga: %v", len(evs), es)
	default:
		if ultimo.Estado != s.Estado {
			mal("el evento dice %s, el almacén %s", ultimo.Estado, s.Estado)
		}
		if !slices.Equal(ultimo.Compensaciones, s.Compensaciones) && !(len(ultimo.Compensaciones) == 0 && len(s.Compensaciones) == 0) {
			mal("el evento lleva compensaciones %v, el almacén %v", ultimo.Compensaciones, s.Compensaciones)
		}
	}
	return strings.Join(problemas, "; ")
}

// comprobarHistorias checks every saga of ids against validarHistoria and
// adds the row to r.
func comprobarHistorias(ctx context.Context, m *mundo, db *sql.DB, ids map[string]bool, r *resultado, logger *slog.Logger) error {
	hs, err := leerHistorias(ctx, db)
	if err != nil {
		return err
	}
	evs, err := leerEventosSaga(ctx, m.cfg.urlAdmin(), m.cfg.urlPulsar(), m.cfg.Seguridad, m.cfg.Namespace, logger)
	if err != nil {
		return fmt.Errorf("leer eventos-saga: %w", err)
	}
	cat := saga.CatalogoPorDefecto()
	var ejemplos []string
	revisadas, reenviados := 0, 0
	for id := range ids {
		s := hs[id]
		if s == nil || !esTerminal(s.Estado) {
			continue // the earlier checks already count it
		}
		revisadas++
		propios, n := unicos(evs.PorSaga[id])
		reenviados += n
		if p := validarHistoria(s, cat, propios); p != "" {
			ejemplos = append(ejemplos, fmt.Sprintf("saga %s (%s, %s, versión %d): %s", id, s.Tipo, s.Estado, s.Version, p))
		}
	}
	ajenos := 0
	for id := range evs.PorSaga {
		if !ids[id] {
			ajenos++
			ejemplos = append(ejemplos, fmt.Sprintf("evento en eventos-saga de la saga %s, que nadie inició", id))
		}
	}
	r.agregar(fila{Comprobacion: "historia: camino válido de la máquina de estados, un evento terminal", Revisados: revisadas, Fallos: len(ejemplos),
		Nota: fmt.Sprintf("%d eventos en eventos-saga, %d ilegibles, %d de sagas ajenas, %d re-envíos de un mismo evento (al menos una vez, mismo id)", evs.Mensajes, evs.Ilegibles, ajenos, reenviados)}, ejemplos)
	return nil
}

// --- the API during each fault ----------------------------------------------

// intentoPOST is one POST attempt of the load: when it was sent, how long
// it took and its status (0: no answer).
type intentoPOST struct {
	Enviado  time.Time
	Duracion time.Duration
	Codigo   int
}

// registroPOST collects the load's POST attempts.
type registroPOST struct {
	mu       sync.Mutex
	intentos []intentoPOST
}

func (r *registroPOST) anotar(i intentoPOST) {
	r.mu.Lock()
	r.intentos = append(r.intentos, i)
	r.mu.Unlock()
}

// apiEnVentana summarises the POST attempts sent in [desde, hasta).
type apiEnVentana struct {
	Intentos, Errores5xx, SinRespuesta int
	P50, P99, Max                      time.Duration
}

func (r *registroPOST) en(desde, hasta time.Time) apiEnVentana {
	r.mu.Lock()
	defer r.mu.Unlock()
	var a apiEnVentana
	var ds []time.Duration
	for _, i := range r.intentos {
		if i.Enviado.Before(desde) || !i.Enviado.Before(hasta) {
			continue
		}
		a.Intentos++
		switch {
		case i.Codigo == 0:
			a.SinRespuesta++
		case i.Codigo >= 500:
			a.Errores5xx++
		}
		ds = append(ds, i.Duracion)
	}
	if len(ds) > 0 {
		sort.Slice(ds, func(x, y int) bool { return ds[x] < ds[y] })
		a.P50, a.P99, a.Max = ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
	}
	return a
}

func (a apiEnVentana) String() string {
	if a.Intentos == 0 {
		return "API: ningún POST"
	}
	return fmt.Sprintf("API: %d POSTs, %d 5xx, %d sin respuesta, latencia p50 %s p99 %s máx %s", a.Intentos, a.Errores5xx, a.SinRespuesta,
		a.P50.Round(time.Millisecond), a.P99.Round(time.Millisecond), a.Max.Round(time.Millisecond))
}

// unicos folds re-sends of one event (same id) into one and counts them:
// eventos-saga is at least once with stable ids (docs/architecture.md), so a
// re-send after a replica takeover is allowed; two different outcomes are not.
func unicos(evs []eventos.Evento) ([]eventos.Evento, int) {
	vistos := make(map[string]bool, len(evs))
	out := make([]eventos.Evento, 0, len(evs))
	for _, e := range evs {
		if vistos[e.ID] {
			continue
		}
		vistos[e.ID] = true
		out = append(out, e)
	}
	return out, len(evs) - len(out)
}
