package almacen

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/internal/sqldialecto"
)

// Column lists. The order of each list is the order of the matching values
// and scan targets below.
var (
	colsSaga = []string{
		"saga_id", "tipo", "version_definicion", "campania_id", "usuario_id", "metadatos", "timestamp_inicio", "traceparent",
		// From here on, what transitions change (see updateSagaCorto).
		"estado", "paso_actual", "plazo", "en_espera", "paso_fallido", "compensaciones", "error_mensaje",
		"timestamp_fin", "duracion_total_segundos", "timestamp_cancelacion", "version",
	}
	// colsPasoLeidas are read back; paso_id, descripcion and
	// duracion_segundos are derived or not part of saga.EstadoDePaso.
	colsPasoLeidas = []string{
		"saga_id", "orden", "nombre", "microservicio", "estado", "intento_numero",
		"timestamp_inicio", "timestamp_fin", "datos_entrada", "datos_salida", "error_mensaje",
		"intento_compensacion", "timestamp_inicio_compensacion", "timestamp_fin_compensacion",
		"datos_salida_compensacion", "error_compensacion", "plazo",
	}
	colsPasoEscritas = append([]string{"paso_id", "saga_id", "orden", "descripcion"}, columnasActualizables...)
)

// colsMutables is the index in colsSaga of the first column a transition may
// change.
const colsMutables = 8

// lista joins columns, each prefixed with alias (e.g. "s.").
func lista(alias string, cols []string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(alias)
		b.WriteString(c)
	}
	return b.String()
}

var (
	selectSaga   = lista("", colsSaga)
	selectPasos  = lista("", colsPasoLeidas)
	consultaSaga = "SELECT " + selectSaga + " FROM sagas WHERE saga_id = ?"
	// selectSagaConPasos reads sagas with their steps, one row per step
	// (leerSagasConPasos); the caller adds WHERE and ORDER BY.
	selectSagaConPasos = "SELECT " + lista("s.", colsSaga) + ", " + lista("p.", colsPasoLeidas) +
		" FROM sagas s JOIN pasos_saga p ON p.saga_id = s.saga_id"
	consultaSagaConPasos = selectSagaConPasos + " WHERE s.saga_id = ? ORDER BY p.orden"
	// insertSagas and filaSagaCreada make the INSERT of new sagas, one row
	// per saga: the columns of colsSaga, the idempotency key and the
	// request's fingerprint.
	insertSagas    = "INSERT INTO sagas (" + selectSaga + ", clave_idempotencia, huella_idempotencia) VALUES "
	filaSagaCreada = "(" + sqldialecto.Marcadores(len(colsSaga)+2) + ")"
	updateSaga     = "UPDATE sagas SET " + asignaciones(colsSaga[1:]) + " WHERE saga_id = ? AND version = ?"
	// updateSagaCorto leaves out what a transition does not change (tipo,
	// definition version, campaign, user, input data, start): less to send
	// and to compare. Its columns are colsSaga[colsMutables:].
	updateSagaCorto = "UPDATE sagas SET " + asignaciones(colsSaga[colsMutables:]) + " WHERE saga_id = ? AND version = ?"
	// colsSagaLote are what a batch upsert writes of a saga whose identity
	// did not change: the key, the identity columns an INSERT cannot do
	// without (NOT NULL, no default) and the mutable ones. The input
	// (metadatos), the largest value, stays as stored, as with
	// updateSagaCorto. identidadLote are their indices in colsSaga.
	colsSagaLote  = append([]string{"saga_id", "tipo", "version_definicion", "timestamp_inicio"}, colsSaga[colsMutables:]...)
	identidadLote = []int{0, 1, 2, 6}
	insertPasos   = "INSERT INTO pasos_saga (" + lista("", colsPasoEscritas) + ") VALUES "
	filaPaso      = "(" + sqldialecto.Marcadores(len(colsPasoEscritas)) + ")"
)

func asignaciones(cols []string) string {
	partes := make([]string, len(cols))
	for i, c := range cols {
		partes[i] = c + " = ?"
	}
	return strings.Join(partes, ", ")
}

// valoresSaga are the values of colsSaga for s (version included).
func (d *dialecto) valoresSaga(s *saga.Saga, version int64) ([]any, error) {
	comp, err := json.Marshal(s.Compensaciones)
	if err != nil {
		return nil, fmt.Errorf("compensaciones: %w", err)
	}
	enEspera := 0
	if s.EnEspera {
		enEspera = 1
	}
	return []any{
		s.ID, s.Tipo, s.VersionDefinicion, nuloSiVacio(s.CampaniaID), nuloSiVacio(s.UsuarioID),
		jsonONulo(s.Datos), d.tiempo(s.Inicio), nuloSiVacio(s.Traceparent),
		string(s.Estado), s.Actual, d.tiempo(s.Plazo), enEspera, nuloSiVacio(s.PasoFallido), string(comp),
		nuloSiVacio(s.Error), d.tiempo(s.Fin), segundos(s.Inicio, s.Fin), d.tiempo(s.Cancelacion), version,
	}, nil
}

// valoresSagaLote are the values of colsSagaLote, taken from v, the values
// of colsSaga.
func valoresSagaLote(v []any) []any {
	r := make([]any, 0, len(colsSagaLote))
	for _, i := range identidadLote {
		r = append(r, v[i])
	}
	return append(r, v[colsMutables:]...)
}

// pasoID is the step's primary key: saga id, ":" and its 1-based position.
func pasoID(sagaID string, orden int) string { return sagaID + ":" + strconv.Itoa(orden) }

// valoresPaso appends the values of colsPasoEscritas for step i of s.
func (d *dialecto) valoresPaso(args []any, sagaID string, i int, p *saga.EstadoDePaso) []any {
	return d.valoresPasoCon(args, sagaID, i, p, jsonONulo(p.Entrada))
}

// valoresPasoCon is valoresPaso with entrada bound to datos_entrada.
func (d *dialecto) valoresPasoCon(args []any, sagaID string, i int, p *saga.EstadoDePaso, entrada any) []any {
	orden := i + 1
	return append(args,
		pasoID(sagaID, orden), sagaID, orden, "",
		p.Nombre, p.Servicio, string(p.Estado), p.Intento, d.tiempo(p.Inicio), d.tiempo(p.Fin),
		segundos(p.Inicio, p.Fin), entrada, jsonONulo(p.Salida), nuloSiVacio(p.Error),
		p.IntentoCompensacion, d.tiempo(p.InicioCompensacion), d.tiempo(p.FinCompensacion),
		jsonONulo(p.SalidaCompensacion), nuloSiVacio(p.ErrorCompensacion), d.tiempo(p.Plazo),
	)
}

// filaSaga holds the scan targets of colsSaga.
type filaSaga struct {
	id, tipo, estado                          texto
	versionDef, actual, enEspera, version     entero
	campania, usuario, pasoFallido, errorSaga texto
	traceparent                               texto
	datos, compensaciones                     crudo
	plazo, inicio, fin, cancelacion           instante
	duracion                                  sql.NullFloat64
}

func (f *filaSaga) destinos() []any {
	return []any{
		&f.id, &f.tipo, &f.versionDef, &f.campania, &f.usuario, &f.datos, &f.inicio, &f.traceparent,
		&f.estado, &f.actual, &f.plazo, &f.enEspera, &f.pasoFallido, &f.compensaciones, &f.errorSaga,
		&f.fin, &f.duracion, &f.cancelacion, &f.version,
	}
}

func (f *filaSaga) saga() (saga.Saga, error) {
	s := saga.Saga{
		ID: string(f.id), Tipo: string(f.tipo), VersionDefinicion: int(f.versionDef),
		Estado: saga.Estado(f.estado), CampaniaID: string(f.campania), UsuarioID: string(f.usuario),
		Datos: json.RawMessage(f.datos), Actual: int(f.actual), Plazo: f.plazo.tiempo(),
		EnEspera: f.enEspera != 0, PasoFallido: string(f.pasoFallido), Error: string(f.errorSaga),
		Inicio: f.inicio.tiempo(), Fin: f.fin.tiempo(), Cancelacion: f.cancelacion.tiempo(), Version: int64(f.version), Traceparent: string(f.traceparent),
	}
	if len(f.compensaciones) > 0 {
		if err := json.Unmarshal(f.compensaciones, &s.Compensaciones); err != nil {
			return saga.Saga{}, fmt.Errorf("saga %s: compensaciones: %w", s.ID, err)
		}
	}
	return s, nil
}

// filaPasoLeida holds the scan targets of colsPasoLeidas.
type filaPasoLeida struct {
	sagaID                                  texto
	orden, intento, intentoComp             entero
	nombre, servicio, estado, err, errComp  texto
	inicio, fin, inicioComp, finComp, plazo instante
	entrada, salida, salidaComp             crudo
}

func (f *filaPasoLeida) destinos() []any {
	return []any{
		&f.sagaID, &f.orden, &f.nombre, &f.servicio, &f.estado, &f.intento, &f.inicio, &f.fin,
		&f.entrada, &f.salida, &f.err, &f.intentoComp, &f.inicioComp, &f.finComp, &f.salidaComp, &f.errComp,
		&f.plazo,
	}
}

func (f *filaPasoLeida) paso() saga.EstadoDePaso {
	return saga.EstadoDePaso{
		Nombre: string(f.nombre), Servicio: string(f.servicio), Estado: saga.EstadoPaso(f.estado),
		Intento: int(f.intento), Inicio: f.inicio.tiempo(), Fin: f.fin.tiempo(),
		Entrada: json.RawMessage(f.entrada), Salida: json.RawMessage(f.salida), Error: string(f.err),
		IntentoCompensacion: int(f.intentoComp), InicioCompensacion: f.inicioComp.tiempo(),
		FinCompensacion: f.finComp.tiempo(), SalidaCompensacion: json.RawMessage(f.salidaComp),
		ErrorCompensacion: string(f.errComp), Plazo: f.plazo.tiempo(),
	}
}

// leerSagas reads rows of selectSaga.
func leerSagas(rows *sql.Rows) ([]saga.Saga, error) {
	defer rows.Close()
	var out []saga.Saga
	var f filaSaga
	destinos := f.destinos()
	for rows.Next() {
		if err := rows.Scan(destinos...); err != nil {
			return nil, fmt.Errorf("leer saga: %w", err)
		}
		s, err := f.saga()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leer sagas: %w", err)
	}
	return out, nil
}

// leerSagasConPasos reads rows of consultaSagaConPasos: one row per step,
// a saga's rows consecutive and in step order.
func leerSagasConPasos(rows *sql.Rows) ([]saga.Saga, error) {
	defer rows.Close()
	var out []saga.Saga
	var fs filaSaga
	var fp filaPasoLeida
	destinos := append(fs.destinos(), fp.destinos()...)
	for rows.Next() {
		if err := rows.Scan(destinos...); err != nil {
			return nil, fmt.Errorf("leer saga: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != string(fs.id) {
			s, err := fs.saga()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		s := &out[len(out)-1]
		s.Pasos = append(s.Pasos, fp.paso())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leer sagas: %w", err)
	}
	return out, nil
}

// leerPasos reads rows of selectPasos, ordered by orden within each saga,
// into the sagas they belong to.
func leerPasos(rows *sql.Rows, sagas []saga.Saga) error {
	defer rows.Close()
	indice := make(map[string]int, len(sagas))
	for i := range sagas {
		indice[sagas[i].ID] = i
	}
	var fp filaPasoLeida
	destinos := fp.destinos()
	for rows.Next() {
		if err := rows.Scan(destinos...); err != nil {
			return fmt.Errorf("leer paso: %w", err)
		}
		if i, ok := indice[string(fp.sagaID)]; ok {
			sagas[i].Pasos = append(sagas[i].Pasos, fp.paso())
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("leer pasos: %w", err)
	}
	return nil
}

// mismaIdentidad reports whether a and b agree on the columns before
// colsMutables, so that updateSagaCorto suffices.
func mismaIdentidad(a, b *saga.Saga) bool {
	return a.Tipo == b.Tipo && a.VersionDefinicion == b.VersionDefinicion && a.CampaniaID == b.CampaniaID &&
		a.UsuarioID == b.UsuarioID && bytes.Equal(a.Datos, b.Datos) && normalizar(a.Inicio).Equal(normalizar(b.Inicio)) &&
		a.Traceparent == b.Traceparent
}

// pasoIgual reports whether two step states would be stored identically.
func pasoIgual(a, b *saga.EstadoDePaso) bool {
	return a.Nombre == b.Nombre && a.Servicio == b.Servicio && a.Estado == b.Estado &&
		a.Intento == b.Intento && normalizar(a.Inicio).Equal(normalizar(b.Inicio)) &&
		normalizar(a.Fin).Equal(normalizar(b.Fin)) && bytes.Equal(a.Entrada, b.Entrada) &&
		bytes.Equal(a.Salida, b.Salida) && a.Error == b.Error &&
		a.IntentoCompensacion == b.IntentoCompensacion &&
		normalizar(a.InicioCompensacion).Equal(normalizar(b.InicioCompensacion)) &&
		normalizar(a.FinCompensacion).Equal(normalizar(b.FinCompensacion)) &&
		bytes.Equal(a.SalidaCompensacion, b.SalidaCompensacion) && a.ErrorCompensacion == b.ErrorCompensacion &&
		normalizar(a.Plazo).Equal(normalizar(b.Plazo))
}

// Column limits of the MySQL schema, checked for both stores so that they
// behave alike.
const (
	maxID     = 191
	maxClave  = 255
	maxHuella = 64
	// maxTraceparent is a W3C traceparent's length (version 00).
	maxTraceparent = 55
)

// invalido is an ErrInvalido error with its detail.
func invalido(formato string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalido, fmt.Sprintf(formato, args...))
}

// validarClave checks an inbox or idempotency key.
func validarClave(campo, clave string) error {
	if utf8.RuneCountInString(clave) > maxClave {
		return invalido("%s de %d caracteres (máximo %d)", campo, utf8.RuneCountInString(clave), maxClave)
	}
	return nil
}

// validarSaga checks what the schema cannot hold or what would break the
// machine later (invalid raw JSON). Raw JSON equal to viejo's is not checked
// again: it was valid when it was written.
func validarSaga(s *saga.Saga, viejo *saga.Saga) error {
	switch {
	case s.ID == "":
		return invalido("saga sin id")
	case utf8.RuneCountInString(s.ID) > maxID:
		return invalido("saga %.40s…: id de más de %d caracteres", s.ID, maxID)
	case s.Tipo == "":
		return invalido("saga %s sin tipo", s.ID)
	case s.Estado == "":
		return invalido("saga %s sin estado", s.ID)
	case s.Inicio.IsZero():
		return invalido("saga %s sin inicio", s.ID)
	case len(s.Traceparent) > maxTraceparent:
		return invalido("saga %s: traceparent de %d caracteres (máximo %d)", s.ID, len(s.Traceparent), maxTraceparent)
	}
	jsonValido := func(campo string, nuevo, anterior []byte) error {
		if len(nuevo) == 0 || (anterior != nil && bytes.Equal(nuevo, anterior)) || json.Valid(nuevo) {
			return nil
		}
		return invalido("saga %s: %s no es JSON válido", s.ID, campo)
	}
	var datosViejos []byte
	if viejo != nil {
		datosViejos = viejo.Datos
	}
	if err := jsonValido("datos", s.Datos, datosViejos); err != nil {
		return err
	}
	for i := range s.Pasos {
		p := &s.Pasos[i]
		var a saga.EstadoDePaso
		if viejo != nil && i < len(viejo.Pasos) {
			a = viejo.Pasos[i]
		}
		for _, c := range []struct {
			campo           string
			nuevo, anterior []byte
		}{
			{"entrada de " + p.Nombre, p.Entrada, a.Entrada},
			{"salida de " + p.Nombre, p.Salida, a.Salida},
			{"salida de la compensación de " + p.Nombre, p.SalidaCompensacion, a.SalidaCompensacion},
		} {
			if err := jsonValido(c.campo, c.nuevo, c.anterior); err != nil {
				return err
			}
		}
	}
	return nil
}
