package api

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/labstack/echo/v4"
)

// Listing limits: the store's own default and ceiling.
const (
	limitePorDefecto = almacen.LimitePorDefecto
	limiteMaximo     = almacen.LimiteMaximo
)

// listar is GET /api/v1/sagas?estado=&tipo=&campania_id=&q=&desde=&hasta=&limite=.
func (s *servidor) listar(c echo.Context) error {
	f, cs := s.leerFiltro(c.QueryParams())
	if err := cs.error(); err != nil {
		return err
	}
	return s.responderLista(c, f)
}

// activas is GET /api/v1/sagas/activas: the sagas still running, with the
// same filters as the listing but estado.
func (s *servidor) activas(c echo.Context) error {
	f, cs := s.leerFiltro(c.QueryParams())
	if c.QueryParams().Has("estado") {
		cs.falla("estado", "no se admite aquí: /activas lista INICIADA, EN_PROGRESO y COMPENSANDO")
	}
	if err := cs.error(); err != nil {
		return err
	}
	f.Estados = activos
	return s.responderLista(c, f)
}

func (s *servidor) responderLista(c echo.Context, f almacen.Filtro) error {
	ctx := c.Request().Context()
	sagas, err := s.consultas.Listar(ctx, f)
	if err != nil {
		return fmt.Errorf("listar sagas: %w", err)
	}
	todos := f
	todos.Estados, todos.Limite = nil, 0
	resumen, err := s.consultas.Contar(ctx, todos)
	if err != nil {
		return fmt.Errorf("contar sagas: %w", err)
	}
	lista := listaSagas{Sagas: make([]resumenSaga, 0, len(sagas)), Conteos: make(map[saga.Estado]int, len(estadosSaga))}
	for _, sg := range sagas {
		lista.Sagas = append(lista.Sagas, resumenDe(sg))
	}
	for _, e := range estadosSaga {
		lista.Conteos[e] = resumen[e]
		if len(f.Estados) == 0 || slices.Contains(f.Estados, e) {
			lista.Total += resumen[e]
		}
	}
	return c.JSON(http.StatusOK, lista)
}

// campanias is GET /api/v1/campanias: the campaigns named by the newest
// sagas (at most limiteMaximo of them), newest first, each with its
// latest saga.
func (s *servidor) campanias(c echo.Context) error {
	sagas, err := s.consultas.Listar(c.Request().Context(), almacen.Filtro{Limite: limiteMaximo})
	if err != nil {
		return fmt.Errorf("listar sagas: %w", err)
	}
	porID := map[string]*campania{}
	for _, sg := range sagas {
		if sg.CampaniaID == "" {
			continue
		}
		cp, ok := porID[sg.CampaniaID]
		if !ok {
			cp = &campania{CampaniaID: sg.CampaniaID}
			porID[sg.CampaniaID] = cp
		}
		cp.Sagas++
		if cp.Sagas == 1 || sg.Inicio.After(cp.UltimaSaga.Inicio) {
			cp.UltimaSaga = resumenDe(sg)
			if cp.UltimaSaga.Nombre != "" {
				cp.Nombre = cp.UltimaSaga.Nombre
			}
		}
	}
	lista := listaCampanias{Campanias: make([]campania, 0, len(porID))}
	for _, cp := range porID {
		lista.Campanias = append(lista.Campanias, *cp)
	}
	slices.SortFunc(lista.Campanias, func(a, b campania) int {
		return cmp.Or(b.UltimaSaga.Inicio.Compare(a.UltimaSaga.Inicio), cmp.Compare(a.CampaniaID, b.CampaniaID))
	})
	// total counts every campaign found; the list holds the newest limite.
	lista.Total = len(lista.Campanias)
	limite := limitePorDefecto
	if v := c.QueryParam("limite"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > limiteMaximo {
			return invalida([]Campo{{Campo: "limite", Error: fmt.Sprintf("debe ser un entero entre 1 y %d", limiteMaximo)}})
		}
		limite = n
	}
	if len(lista.Campanias) > limite {
		lista.Campanias = lista.Campanias[:limite]
	}
	return c.JSON(http.StatusOK, lista)
}

// leerFiltro reads a listing's query, naming every bad parameter. Unknown
// parameters are ignored, and so is an empty value (estado=, limite=), as
// esquemas/openapi.json states with allowEmptyValue.
func (s *servidor) leerFiltro(q url.Values) (almacen.Filtro, campos) {
	var cs campos
	f := almacen.Filtro{Limite: limitePorDefecto}
	for _, v := range q["estado"] {
		if v == "" {
			continue
		}
		for e := range strings.SplitSeq(v, ",") {
			// Spaces only, as the document's pattern says: "A, B" is a list.
			e = strings.Trim(e, " ")
			if !slices.Contains(estadosSaga, saga.Estado(e)) {
				cs.falla("estado", "cada estado debe ser uno de: "+unir(estadosSaga))
				continue
			}
			if !slices.Contains(f.Estados, saga.Estado(e)) {
				f.Estados = append(f.Estados, saga.Estado(e))
			}
		}
	}
	if f.Tipo = q.Get("tipo"); f.Tipo != "" {
		if _, err := s.catalogo.Buscar(f.Tipo); err != nil {
			cs.falla("tipo", "debe ser uno de: "+unir(s.tipos()))
		}
	}
	if f.CampaniaID = q.Get("campania_id"); len(f.CampaniaID) > largoID {
		cs.falla("campania_id", fmt.Sprintf("admite como máximo %d caracteres", largoID))
	}
	if f.SagaID = q.Get("q"); f.SagaID != "" && !formatoID.MatchString(f.SagaID) {
		cs.falla("q", "debe ser el comienzo de un id de saga (letras, dígitos, . _ : -; hasta 128)")
	}
	f.Desde = fecha(&cs, q, "desde")
	f.Hasta = fecha(&cs, q, "hasta")
	if !f.Desde.IsZero() && !f.Hasta.IsZero() && !f.Hasta.After(f.Desde) {
		cs.falla("hasta", "debe ser posterior a desde")
	}
	if v := q.Get("limite"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > limiteMaximo {
			cs.falla("limite", fmt.Sprintf("debe ser un entero entre 1 y %d", limiteMaximo))
		}
		f.Limite = n
	}
	return f, cs
}

func fecha(cs *campos, q url.Values, nombre string) time.Time {
	v := q.Get(nombre)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		cs.falla(nombre, "debe ser una fecha RFC 3339 (por ejemplo 2025-03-01T00:00:00Z)")
	}
	return t.UTC()
}

func (s *servidor) tipos() []string {
	out := make([]string, 0, len(s.catalogo))
	for t := range s.catalogo {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func unir[T ~string](vs []T) string {
	partes := make([]string, len(vs))
	for i, v := range vs {
		partes[i] = string(v)
	}
	return strings.Join(partes, ", ")
}
