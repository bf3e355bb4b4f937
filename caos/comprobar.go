package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// servicioEfectos says where a participant keeps the effects of its
// actions: one table, whose rows carry saga_id, paso, estado and creado_en,
// and the state of a row whose effect is in force. It mirrors the
// declarations in participantes/<servicio>/servicio.go.
type servicioEfectos struct {
	Servicio string
	Tabla    string
	Activo   string
}

// servicios are the six participants, in the order of their metrics ports.
func servicios() []servicioEfectos {
	return []servicioEfectos{
		{"influencer", "notificaciones_influencer", "ENVIADA"},
		{"marca", "notificaciones_marca", "ENVIADA"},
		{"tracking", "configuraciones_tracking", "ACTIVA"},
		{"afiliados", "reservas_afiliados", "RESERVADO"},
		{"comisiones", "comisiones_campania", "CONFIGURADA"},
		{"notificaciones", "notificaciones_campania", "PREPARADA"},
	}
}

func nombresServicios() []string {
	var ns []string
	for _, s := range servicios() {
		ns = append(ns, s.Servicio)
	}
	return ns
}

// pasosPorTipo is how many steps each flow has (coordinador/saga/definicion.go).
func pasosPorTipo() map[string]int { return map[string]int{tipoCampana: 3, tipoLanzamiento: 4} }

// Inbox accion values (eventos.Ejecutar, eventos.Compensar).
const (
	accionEjecutar  = "EJECUTAR"
	accionCompensar = "COMPENSAR"
)

// fila is one line of the table of checks.
type fila struct {
	Comprobacion string
	Revisados    int
	Fallos       int
	Nota         string
	Info         bool // informational: its Fallos are not violations
}

// resultado is everything a run found.
type resultado struct {
	Filas   []fila
	Detalle map[string][]string // check → examples of what failed

	Desenlaces     map[string]map[string]int // tipo → estado → sagas
	Plan           []ventana
	API            []apiEnVentana // POSTs sent during each fault of Plan
	APITotal       apiEnVentana   // every POST of the run
	Caidas         []caida
	TasaObjetivo   float64
	Aceptadas      int
	ReintentosPOST int64
	Inicio         time.Time
	FinCarga       time.Time
	FinFallas      time.Time
	Referencia     time.Time
	Cota           time.Duration
	Terminadas     time.Time // zero if the bound passed first
	UltimoFin      time.Time // latest timestamp_fin in the store
	PrimerInicio   time.Time
	PrimerPOST     time.Time
	UltimoAceptado time.Time
}

// Violaciones counts the failures of non-informational checks.
func (r *resultado) Violaciones() int {
	n := 0
	for _, f := range r.Filas {
		if !f.Info {
			n += f.Fallos
		}
	}
	return n
}

func (r *resultado) agregar(f fila, ejemplos []string) {
	r.Filas = append(r.Filas, f)
	if len(ejemplos) > 0 {
		r.Detalle[f.Comprobacion] = ejemplos
	}
}

// completar adds the rows that depend on what ejecutar filled in.
func (r *resultado) completar(procesos int) {
	f := fila{Comprobacion: "procesos caídos fuera del plan", Revisados: procesos, Fallos: len(r.Caidas)}
	var ej []string
	for _, c := range r.Caidas {
		ej = append(ej, fmt.Sprintf("%s a las %s: %s", c.Proceso, c.Cuando.Format("15:04:05"), c.Estado))
	}
	r.agregar(f, ej)
}

// sagaCoord is a row of the coordinator's sagas table with its steps.
type sagaCoord struct {
	ID, Tipo, Estado, Clave, PasoFallido, Error string
	Inicio                                      time.Time
	Fin                                         sql.NullTime
	Pasos                                       []pasoCoord
}

type pasoCoord struct {
	Nombre, Servicio, Estado, ErrorCompensacion string
	Intentos, IntentosCompensacion              int
}

// grupo is the effect rows of one (saga, paso) in one participant.
type grupo struct {
	Filas, Activas int
	Creados        map[string]bool
}

// registroInbox is a participant's inbox row.
type registroInbox struct {
	Resultado string
	Exito     bool
	Datos     string
}

// participanteLeido is what one participant's database holds.
type participanteLeido struct {
	efectos map[string]map[string]*grupo                   // saga → paso → rows
	inbox   map[string]map[string]map[string]registroInbox // saga → paso → accion → row
}

// comprobar reads the stores (the coordinator's database, each
// participant's database, the broker's dead-letter topics) and checks them.
func comprobar(ctx context.Context, m *mundo, db *sql.DB, iniciadas []iniciada, ventanas []ventana, pendientesAlVencer int, logger *slog.Logger) (*resultado, error) {
	r := &resultado{Detalle: map[string][]string{}, Desenlaces: map[string]map[string]int{}}
	sagas, err := leerCoordinador(ctx, db)
	if err != nil {
		return nil, err
	}
	parts := map[string]*participanteLeido{}
	for _, s := range servicios() {
		p, err := leerParticipante(ctx, m.dsn("participante_"+s.Servicio), s)
		if err != nil {
			return nil, fmt.Errorf("leer participante_%s: %w", s.Servicio, err)
		}
		parts[s.Servicio] = p
	}
	activasDe := func(sagaID string) (int, []string) {
		n := 0
		var donde []string
		for _, s := range servicios() {
			for paso, g := range parts[s.Servicio].efectos[sagaID] {
				if g.Activas > 0 {
					n += g.Activas
					donde = append(donde, fmt.Sprintf("%s/%s: %d", s.Servicio, paso, g.Activas))
				}
			}
		}
		return n, donde
	}

	// 1. Every saga got its 202.
	var ej []string
	f := fila{Comprobacion: "sagas iniciadas (202 tras reintentos)", Revisados: len(iniciadas)}
	nuestras := map[string]iniciada{}
	for _, x := range iniciadas {
		if x.Err != nil {
			f.Fallos++
			ej = append(ej, fmt.Sprintf("#%d %s: %v", x.I, x.Clave, x.Err))
			continue
		}
		if r.PrimerPOST.IsZero() || x.Enviado.Before(r.PrimerPOST) {
			r.PrimerPOST = x.Enviado
		}
		if x.Aceptado.After(r.UltimoAceptado) {
			r.UltimoAceptado = x.Aceptado
		}
		nuestras[x.ID] = x
	}
	r.Aceptadas = len(nuestras)
	r.agregar(f, ej)

	// 2. Each exists in the coordinator's store, under its Idempotency-Key;
	// and the store holds no saga we did not start (a doubled one).
	ej = nil
	f = fila{Comprobacion: "sagas en el almacén del coordinador, una por Idempotency-Key", Revisados: len(nuestras)}
	for id, x := range nuestras {
		s, ok := sagas[id]
		switch {
		case !ok:
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s (%s): no está en sagas", id, x.Clave))
		case s.Clave != x.Ruta+" "+x.Clave:
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s: clave_idempotencia %q, se esperaba %q", id, s.Clave, x.Ruta+" "+x.Clave))
		case s.Tipo != x.Tipo:
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s: tipo %s, se esperaba %s", id, s.Tipo, x.Tipo))
		}
	}
	r.agregar(f, ej)
	ej = nil
	f = fila{Comprobacion: "sagas en el almacén que nadie inició (dobles)", Revisados: len(sagas)}
	for id, s := range sagas {
		if _, ok := nuestras[id]; !ok {
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s %s %s clave %q", id, s.Tipo, s.Estado, s.Clave))
		}
	}
	r.agregar(f, ej)

	// 3. Terminal within the bound.
	ej = nil
	f = fila{Comprobacion: fmt.Sprintf("terminales dentro de la cota (%s)", m.cfg.Cota), Revisados: len(nuestras)}
	for id := range nuestras {
		s, ok := sagas[id]
		if !ok {
			continue // counted above
		}
		if !esTerminal(s.Estado) {
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s %s en %s; pasos %s", id, s.Tipo, s.Estado, resumenPasos(s.Pasos)))
			continue
		}
		if s.Fin.Valid && s.Fin.Time.After(r.UltimoFin) {
			r.UltimoFin = s.Fin.Time
		}
		if r.PrimerInicio.IsZero() || s.Inicio.Before(r.PrimerInicio) {
			r.PrimerInicio = s.Inicio
		}
		if r.Desenlaces[s.Tipo] == nil {
			r.Desenlaces[s.Tipo] = map[string]int{}
		}
		r.Desenlaces[s.Tipo][s.Estado]++
	}
	if pendientesAlVencer > f.Fallos {
		// Counted when the bound passed: some may have ended since.
		f.Fallos = pendientesAlVencer
	}
	if f.Fallos > 0 {
		f.Nota = fmt.Sprintf("%d sin terminar al vencer la cota", pendientesAlVencer)
	} else if len(ventanas) > 0 && !r.UltimoFin.IsZero() {
		f.Nota = fmt.Sprintf("la última terminó %.1fs tras la última reparación", r.UltimoFin.Sub(ventanas[len(ventanas)-1].Fin).Seconds())
	}
	r.agregar(f, ej)

	// 4. COMPLETADA: every step's participant holds its effects, all in force,
	// as many rows as one application makes.
	ej = nil
	f = fila{Comprobacion: "COMPLETADA: efectos de cada paso presentes y activos"}
	for id, x := range nuestras {
		s, ok := sagas[id]
		if !ok || s.Estado != "COMPLETADA" {
			continue
		}
		f.Revisados++
		var malos []string
		if n := pasosPorTipo()[s.Tipo]; len(s.Pasos) != n {
			malos = append(malos, fmt.Sprintf("%d pasos en pasos_saga, la definición tiene %d", len(s.Pasos), n))
		}
		for _, p := range s.Pasos {
			pl, ok := parts[p.Servicio]
			if !ok {
				malos = append(malos, fmt.Sprintf("paso %s: servicio desconocido %q", p.Nombre, p.Servicio))
				continue
			}
			g := pl.efectos[id][p.Nombre]
			esperado, conocido := cuantosEsperados(x, p, pl.inbox[id][p.Nombre])
			switch {
			case p.Estado != "COMPLETADO":
				malos = append(malos, fmt.Sprintf("paso %s en %s", p.Nombre, p.Estado))
			case g == nil || g.Activas == 0:
				malos = append(malos, fmt.Sprintf("%s/%s: sin efecto activo", p.Servicio, p.Nombre))
			case g.Activas != g.Filas:
				malos = append(malos, fmt.Sprintf("%s/%s: %d de %d filas activas", p.Servicio, p.Nombre, g.Activas, g.Filas))
			case conocido && g.Filas != esperado:
				malos = append(malos, fmt.Sprintf("%s/%s: %d filas, una aplicación deja %d", p.Servicio, p.Nombre, g.Filas, esperado))
			}
		}
		if len(malos) > 0 {
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s %s: %s", id, s.Tipo, strings.Join(malos, "; ")))
		}
	}
	r.agregar(f, ej)

	// 5. COMPENSADA: nothing in force anywhere.
	ej = nil
	f = fila{Comprobacion: "COMPENSADA: ningún efecto activo en ningún participante"}
	for id := range nuestras {
		s, ok := sagas[id]
		if !ok || s.Estado != "COMPENSADA" {
			continue
		}
		f.Revisados++
		if n, donde := activasDe(id); n > 0 {
			f.Fallos++
			ej = append(ej, fmt.Sprintf("%s %s (falló %s): activos %s", id, s.Tipo, s.PasoFallido, strings.Join(donde, ", ")))
		}
	}
	r.agregar(f, ej)

	// 6. COMPENSACION_FALLIDA: none expected (no request asks for a failing
	// compensation). One is explained when every failed compensation got no
	// reply (timeout), the saga overlapped a fault window (an outage longer
	// than the compensation's retry budget) and no effect of it is left in
	// force anywhere; any other is a violation.
	ej = nil
	var ejExplicadas []string
	f = fila{Comprobacion: "sin COMPENSACION_FALLIDA sin explicar", Revisados: len(nuestras)}
	fExplicadas := fila{Comprobacion: "COMPENSACION_FALLIDA explicadas por una falla (informativo)", Info: true}
	for id := range nuestras {
		s, ok := sagas[id]
		if !ok || s.Estado != "COMPENSACION_FALLIDA" {
			continue
		}
		fExplicadas.Revisados++
		n, donde := activasDe(id)
		var errs []string
		soloPlazos := true
		for _, p := range s.Pasos {
			if p.ErrorCompensacion != "" {
				errs = append(errs, fmt.Sprintf("%s: %s (%d intentos)", p.Nombre, p.ErrorCompensacion, p.IntentosCompensacion))
				soloPlazos = soloPlazos && strings.Contains(p.ErrorCompensacion, "timeout")
			}
		}
		fallas := solapadas(ventanas, s.Inicio, s.Fin)
		texto := fmt.Sprintf("%s %s: falló %s (%s); compensaciones fallidas [%s]; %d efectos activos %v; fallas durante la saga: %s",
			id, s.Tipo, s.PasoFallido, s.Error, strings.Join(errs, "; "), n, donde, fallas)
		if soloPlazos && len(errs) > 0 && n == 0 && fallas != "ninguna" {
			fExplicadas.Fallos++
			ejExplicadas = append(ejExplicadas, texto)
			continue
		}
		f.Fallos++
		ej = append(ej, texto)
	}
	r.agregar(f, ej)
	r.agregar(fExplicadas, ejExplicadas)

	// 7. Applied once: per (participant, saga, step) no more rows than one
	// application makes, all written by one transaction (one creado_en).
	// 8. Every effect has its action recorded as a success in the inbox, and
	// belongs to a saga that exists.
	ej = nil
	var ejInbox, ejHuerfanos []string
	f = fila{Comprobacion: "efectos aplicados una sola vez (filas y creado_en por saga y paso)"}
	fInbox := fila{Comprobacion: "cada efecto con su acción registrada con éxito en el inbox"}
	fHuerfanos := fila{Comprobacion: "efectos de sagas que no existen"}
	for _, sv := range servicios() {
		pl := parts[sv.Servicio]
		for id, pasos := range pl.efectos {
			x, nuestra := nuestras[id]
			for paso, g := range pasos {
				f.Revisados++
				fInbox.Revisados++
				fHuerfanos.Revisados++
				if !nuestra {
					fHuerfanos.Fallos++
					ejHuerfanos = append(ejHuerfanos, fmt.Sprintf("%s/%s saga %s: %d filas", sv.Servicio, paso, id, g.Filas))
					continue
				}
				reg := pl.inbox[id][paso]
				var pc pasoCoord
				if s, ok := sagas[id]; ok {
					for _, p := range s.Pasos {
						if p.Nombre == paso {
							pc = p
						}
					}
				}
				pc.Nombre, pc.Servicio = paso, sv.Servicio
				esperado, conocido := cuantosEsperados(x, pc, reg)
				if len(g.Creados) > 1 || (conocido && g.Filas > esperado) {
					f.Fallos++
					ej = append(ej, fmt.Sprintf("%s/%s saga %s: %d filas (una aplicación deja %d) de %d transacciones (creado_en %v)",
						sv.Servicio, paso, id, g.Filas, esperado, len(g.Creados), claves(g.Creados)))
				}
				if e, ok := reg[accionEjecutar]; !ok || !e.Exito {
					fInbox.Fallos++
					ejInbox = append(ejInbox, fmt.Sprintf("%s/%s saga %s: %d filas (%d activas) pero el inbox dice %+v", sv.Servicio, paso, id, g.Filas, g.Activas, reg))
				}
			}
		}
	}
	r.agregar(f, ej)
	r.agregar(fInbox, ejInbox)
	r.agregar(fHuerfanos, ejHuerfanos)

	// 9. The outbox is empty.
	var outbox int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&outbox); err != nil {
		return nil, fmt.Errorf("contar outbox: %w", err)
	}
	r.agregar(fila{Comprobacion: "outbox del coordinador vacío", Revisados: 1, Fallos: min(outbox, 1), Nota: fmt.Sprintf("%d filas", outbox)}, nil)

	// 10. No valid message in a dead-letter topic.
	dlq, err := leerDLQs(ctx, m.cfg.urlAdmin(), m.cfg.urlPulsar(), m.cfg.Seguridad, m.cfg.Namespace, logger)
	if err != nil {
		return nil, fmt.Errorf("leer dead letters: %w", err)
	}
	var cortos []string
	for _, t := range dlq.Topicos {
		cortos = append(cortos, fmt.Sprintf("%s=%d", t[strings.LastIndex(t, "/")+1:], dlq.PorTopico[t]))
	}
	r.agregar(fila{Comprobacion: fmt.Sprintf("DLQ sin mensajes válidos (%d tópicos *-DLQ)", len(dlq.Topicos)), Revisados: dlq.Mensajes, Fallos: len(dlq.Validos),
		Nota: fmt.Sprintf("%d veneno; %s", dlq.Veneno, strings.Join(cortos, " "))}, dlq.Validos)

	// Informational: how much the faults made the system retry.
	pasos, reintentados, compensados := 0, 0, 0
	for id := range nuestras {
		for _, p := range sagas[id].Pasos {
			pasos++
			if p.Intentos > 1 {
				reintentados++
			}
			if p.IntentosCompensacion > 1 {
				compensados++
			}
		}
	}
	r.agregar(fila{Comprobacion: "pasos reenviados por plazo vencido (informativo)", Revisados: pasos, Fallos: reintentados, Info: true,
		Nota: fmt.Sprintf("%d compensaciones reintentadas", compensados)}, nil)
	return r, nil
}

// cuantosEsperados is how many effect rows one application of step p leaves:
// from the saga's input, or (afiliados) from the reply the participant
// recorded. conocido is false when neither says.
func cuantosEsperados(x iniciada, p pasoCoord, reg map[string]registroInbox) (n int, conocido bool) {
	if n, ok := x.Esperado[p.Nombre]; ok {
		return n, true
	}
	if e, ok := reg[accionEjecutar]; ok && e.Exito {
		var d struct {
			AfiliadosReservados *int `json:"afiliados_reservados"`
		}
		if json.Unmarshal([]byte(e.Datos), &d) == nil && d.AfiliadosReservados != nil {
			return *d.AfiliadosReservados, true
		}
	}
	return 0, false
}

// leerCoordinador reads the sagas and their steps.
func leerCoordinador(ctx context.Context, db *sql.DB) (map[string]*sagaCoord, error) {
	sagas := map[string]*sagaCoord{}
	filas, err := db.QueryContext(ctx, `SELECT saga_id, tipo, estado, COALESCE(clave_idempotencia, ''), timestamp_inicio, timestamp_fin,
		COALESCE(paso_fallido, ''), COALESCE(error_mensaje, '') FROM sagas`)
	if err != nil {
		return nil, fmt.Errorf("leer sagas: %w", err)
	}
	for filas.Next() {
		s := &sagaCoord{}
		if err := filas.Scan(&s.ID, &s.Tipo, &s.Estado, &s.Clave, &s.Inicio, &s.Fin, &s.PasoFallido, &s.Error); err != nil {
			filas.Close()
			return nil, fmt.Errorf("leer sagas: %w", err)
		}
		sagas[s.ID] = s
	}
	filas.Close()
	if err := filas.Err(); err != nil {
		return nil, fmt.Errorf("leer sagas: %w", err)
	}
	filas, err = db.QueryContext(ctx, `SELECT saga_id, nombre, microservicio, estado, COALESCE(error_compensacion, ''),
		intento_numero, intento_compensacion FROM pasos_saga ORDER BY saga_id, orden`)
	if err != nil {
		return nil, fmt.Errorf("leer pasos_saga: %w", err)
	}
	defer filas.Close()
	for filas.Next() {
		var id string
		var p pasoCoord
		if err := filas.Scan(&id, &p.Nombre, &p.Servicio, &p.Estado, &p.ErrorCompensacion, &p.Intentos, &p.IntentosCompensacion); err != nil {
			return nil, fmt.Errorf("leer pasos_saga: %w", err)
		}
		if s := sagas[id]; s != nil {
			s.Pasos = append(s.Pasos, p)
		}
	}
	return sagas, filas.Err()
}

// leerParticipante reads one participant's table of effects and its inbox.
func leerParticipante(ctx context.Context, dsn string, s servicioEfectos) (*participanteLeido, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	p := &participanteLeido{efectos: map[string]map[string]*grupo{}, inbox: map[string]map[string]map[string]registroInbox{}}
	// The table name is a constant of servicios(), never input.
	filas, err := db.QueryContext(ctx, "SELECT saga_id, paso, estado, creado_en FROM "+s.Tabla)
	if err != nil {
		return nil, fmt.Errorf("leer %s: %w", s.Tabla, err)
	}
	for filas.Next() {
		var id, paso, estado, creado string
		if err := filas.Scan(&id, &paso, &estado, &creado); err != nil {
			filas.Close()
			return nil, fmt.Errorf("leer %s: %w", s.Tabla, err)
		}
		if p.efectos[id] == nil {
			p.efectos[id] = map[string]*grupo{}
		}
		g := p.efectos[id][paso]
		if g == nil {
			g = &grupo{Creados: map[string]bool{}}
			p.efectos[id][paso] = g
		}
		g.Filas++
		if estado == s.Activo {
			g.Activas++
		}
		g.Creados[creado] = true
	}
	filas.Close()
	if err := filas.Err(); err != nil {
		return nil, fmt.Errorf("leer %s: %w", s.Tabla, err)
	}
	filas, err = db.QueryContext(ctx, "SELECT saga_id, paso, accion, resultado, exito, datos FROM inbox")
	if err != nil {
		return nil, fmt.Errorf("leer inbox: %w", err)
	}
	defer filas.Close()
	for filas.Next() {
		var id, paso, accion string
		var r registroInbox
		var exito int
		if err := filas.Scan(&id, &paso, &accion, &r.Resultado, &exito, &r.Datos); err != nil {
			return nil, fmt.Errorf("leer inbox: %w", err)
		}
		r.Exito = exito == 1
		if p.inbox[id] == nil {
			p.inbox[id] = map[string]map[string]registroInbox{}
		}
		if p.inbox[id][paso] == nil {
			p.inbox[id][paso] = map[string]registroInbox{}
		}
		p.inbox[id][paso][accion] = r
	}
	return p, filas.Err()
}

// solapadas names the fault windows that overlap [inicio, fin].
func solapadas(vs []ventana, inicio time.Time, fin sql.NullTime) string {
	hasta := time.Now()
	if fin.Valid {
		hasta = fin.Time
	}
	var ns []string
	for _, v := range vs {
		if v.Inicio.Before(hasta) && v.Fin.After(inicio) {
			ns = append(ns, v.Falla)
		}
	}
	if len(ns) == 0 {
		return "ninguna"
	}
	return strings.Join(ns, ", ")
}

func resumenPasos(ps []pasoCoord) string {
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%s=%s(%d)", p.Nombre, p.Estado, p.Intentos))
	}
	return strings.Join(s, " ")
}

func claves(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
