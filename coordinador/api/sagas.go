package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/traza"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// formatoID is what a saga id may look like: our UUIDs and the ids legacy
// producers send. Anything else cannot name a saga and is answered 404.
var formatoID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// iniciarCampana is POST /campana-saga.
func (s *servidor) iniciarCampana(c echo.Context) error {
	var cs campos
	esperar, clave := leerEspera(c, &cs), leerClave(c, &cs)
	cuerpo, err := s.leerCuerpo(c)
	if err != nil {
		return err
	}
	sol, err := decodificarCampana(cuerpo, s.pasos(saga.TipoCampana), &cs)
	if err != nil {
		return err
	}
	campaniaID := sol.CampaniaID
	if campaniaID == "" {
		campaniaID = uuid.NewString()
	}
	// The fingerprint is of the request as sent: the campaign id generated
	// above would make every retry look different.
	return s.iniciar(c, rutaCampana, saga.TipoCampana, campaniaID, sol.entrada(campaniaID), sol.entrada(sol.CampaniaID), clave, esperar)
}

// iniciarLanzamiento is POST /api/v1/comandos/lanzar-campania-completa.
func (s *servidor) iniciarLanzamiento(c echo.Context) error {
	var cs campos
	esperar, clave := leerEspera(c, &cs), leerClave(c, &cs)
	cuerpo, err := s.leerCuerpo(c)
	if err != nil {
		return err
	}
	sol, err := decodificarLanzamiento(cuerpo, s.pasos(saga.TipoLanzarCampaniaCompleta), &cs)
	if err != nil {
		return err
	}
	campaniaID := sol.CampaniaID
	if campaniaID == "" {
		campaniaID = uuid.NewString()
	}
	return s.iniciar(c, rutaLanzamiento, saga.TipoLanzarCampaniaCompleta, campaniaID, sol.entrada(campaniaID), sol.entrada(sol.CampaniaID), clave, esperar)
}

// iniciar starts (or, for a repeated Idempotency-Key, finds) the saga and
// answers its state: 202 at once, or after waiting for its end. solicitud is
// the validated request, fingerprinted with the key.
func (s *servidor) iniciar(c echo.Context, ruta, tipo, campaniaID string, entrada, solicitud any, clave string, esperar time.Duration) error {
	datos, err := eventos.CodificarJSON(entrada)
	if err != nil {
		return fmt.Errorf("codificar entrada de %s: %w", tipo, err)
	}
	if len(datos) > eventos.MaximoEntrada {
		return entradaDemasiadoGrande(len(datos))
	}
	// The engine names the saga; a repeated Idempotency-Key returns the
	// first one's id, or 422 when the request differs.
	sol := motor.Solicitud{Tipo: tipo, Datos: datos, CampaniaID: campaniaID}
	if clave != "" {
		sol.ClaveIdempotencia = claveIdempotencia(ruta, clave)
		if sol.HuellaSolicitud, err = huellaSolicitud(tipo, solicitud); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	id, creada, err := s.iniciador.Iniciar(ctx, sol)
	if err != nil {
		return fmt.Errorf("iniciar saga %s: %w", tipo, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/saga/"+id+"/estado")
	if esperar > 0 {
		sg, err := s.esperarFin(ctx, id, esperar)
		if err != nil {
			return err
		}
		codigo := http.StatusAccepted
		if sg.Estado.Terminal() {
			codigo = http.StatusOK
		}
		return c.JSON(codigo, estadoDe(sg))
	}
	if creada {
		// Just created: its state is known without reading it back.
		return c.JSON(http.StatusAccepted, estadoSaga{
			IDSaga: id, Tipo: tipo, Estado: saga.Iniciada, CampaniaID: campaniaID,
			PasoActual: s.primerPaso(tipo), PasosEjecutados: []string{}, Compensaciones: []string{},
		})
	}
	sg, err := s.consultas.Saga(ctx, id)
	if err != nil {
		return fmt.Errorf("leer saga %s: %w", id, err)
	}
	return c.JSON(http.StatusAccepted, estadoDe(sg))
}

// claveIdempotencia is the store's key for an Idempotency-Key on a route: the
// same header on the two flows names two sagas. claveDeCabecera undoes it.
func claveIdempotencia(ruta, clave string) string { return ruta + " " + clave }

// claveDeCabecera is the Idempotency-Key inside a key of claveIdempotencia
// (neither routes nor header values contain spaces).
func claveDeCabecera(clave string) string {
	if _, cabecera, ok := strings.Cut(clave, " "); ok {
		return cabecera
	}
	return clave
}

// huellaSolicitud fingerprints a validated request for its Idempotency-Key:
// the SHA-256 of the flow and the request's canonical JSON (the Go value
// the API decoded, re-encoded), so whitespace, field order, number spelling
// or a date's time zone do not make another request.
func huellaSolicitud(tipo string, solicitud any) (string, error) {
	b, err := json.Marshal(solicitud)
	if err != nil {
		return "", fmt.Errorf("huella de la solicitud de %s: %w", tipo, err)
	}
	h := sha256.New()
	h.Write([]byte(tipo))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// esperarFin waits up to max for saga id to be terminal and returns its
// latest state. The waiter is registered before each read, so an end that
// happens between the read and the wait still wakes it.
func (s *servidor) esperarFin(ctx context.Context, id string, max time.Duration) (saga.Saga, error) {
	plazo := time.NewTimer(max)
	defer plazo.Stop()
	for {
		aviso, cancelar := s.esperas.Esperar(id)
		sg, err := s.consultas.Saga(ctx, id)
		if err != nil {
			cancelar()
			return sg, fmt.Errorf("leer saga %s: %w", id, err)
		}
		if sg.Estado.Terminal() {
			cancelar()
			return sg, nil
		}
		select {
		case <-aviso:
			cancelar()
		case <-plazo.C:
			cancelar()
			return s.leerSaga(ctx, id)
		case <-ctx.Done():
			cancelar()
			return sg, fmt.Errorf("esperar saga %s: %w", id, ctx.Err())
		}
	}
}

// estado is GET /saga/{id_saga}/estado.
func (s *servidor) estado(c echo.Context) error {
	sg, err := s.leerSaga(c.Request().Context(), c.Param("id_saga"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, estadoDe(sg))
}

// detalle is GET /api/v1/sagas/{saga_id}.
func (s *servidor) detalle(c echo.Context) error {
	sg, err := s.leerSaga(c.Request().Context(), c.Param("saga_id"))
	if err != nil {
		return err
	}
	def, _ := s.catalogo.BuscarVersion(sg.Tipo, sg.VersionDefinicion) // an unknown tipo just has no step descriptions
	return c.JSON(http.StatusOK, detalleDe(sg, def))
}

// reintentar is POST /api/v1/sagas/{saga_id}/reintentar: an operator's retry
// of a COMPENSACION_FALLIDA saga, logged with who asked and when.
func (s *servidor) reintentar(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("saga_id")
	auditoria := []any{"saga_id", id, "quien", s.sujeto, "remoto", c.Request().RemoteAddr, "cuando", s.ahora().UTC(),
		"trace_id", traza.TraceIDDe(ctx)}
	sg, err := s.leerSaga(ctx, id)
	if err == nil && sg.Estado != saga.CompensacionFallida {
		err = fmt.Errorf("saga %s en %s: %w", id, sg.Estado, saga.ErrNoReintentable)
	}
	if err == nil {
		err = s.iniciador.Reintentar(ctx, id)
	}
	if err != nil {
		s.logger.Warn("reintento manual rechazado", append(auditoria, "error", err)...)
		return fmt.Errorf("reintentar saga %s: %w", id, err)
	}
	s.logger.Info("reintento manual de la compensación", auditoria...)
	if sg, err = s.leerSaga(ctx, id); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/saga/"+id+"/estado")
	return c.JSON(http.StatusAccepted, estadoDe(sg))
}

// cancelar is POST /api/v1/sagas/{saga_id}/cancelar: an operator's cancel
// of a running saga, logged with who asked and when like a retry. It
// answers 202 with the saga's state, also when the saga was already
// cancelled or compensating (a repeated cancel is the same success); 409
// with the state when the saga already ended.
func (s *servidor) cancelar(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("saga_id")
	auditoria := []any{"saga_id", id, "quien", s.sujeto, "remoto", c.Request().RemoteAddr, "cuando", s.ahora().UTC()}
	_, err := s.leerSaga(ctx, id) // an id that cannot be one is 404 without asking the engine
	if err == nil {
		err = s.iniciador.Cancelar(ctx, id)
	}
	if err != nil {
		s.logger.Warn("cancelación rechazada", append(auditoria, "error", err)...)
		return fmt.Errorf("cancelar saga %s: %w", id, err)
	}
	sg, err := s.leerSaga(ctx, id)
	if err != nil {
		return err
	}
	s.logger.Info("cancelación de la saga", append(auditoria, "estado", sg.Estado, "cancelacion", sg.Cancelacion)...)
	c.Response().Header().Set(echo.HeaderLocation, "/saga/"+id+"/estado")
	return c.JSON(http.StatusAccepted, estadoDe(sg))
}

// leerSaga reads a saga; an id that cannot be one is not found.
func (s *servidor) leerSaga(ctx context.Context, id string) (saga.Saga, error) {
	if !formatoID.MatchString(id) {
		return saga.Saga{}, errIDInvalido
	}
	sg, err := s.consultas.Saga(ctx, id)
	if err != nil {
		return sg, fmt.Errorf("leer saga %s: %w", id, err)
	}
	return sg, nil
}

// leerCuerpo reads a JSON request body: 415 for another media type, 413
// past the limit (limitarCuerpo wrapped the body).
func (s *servidor) leerCuerpo(c echo.Context) ([]byte, error) {
	tipo, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || !(tipo == echo.MIMEApplicationJSON || strings.HasPrefix(tipo, "application/") && strings.HasSuffix(tipo, "+json")) {
		return nil, errTipoContenido
	}
	cuerpo, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var demasiado *http.MaxBytesError
		if errors.As(err, &demasiado) {
			return nil, err
		}
		return nil, fmt.Errorf("leer cuerpo: %w", err)
	}
	return cuerpo, nil
}

// leerEspera reads ?esperar=: zero when absent.
func leerEspera(c echo.Context, cs *campos) time.Duration {
	v := c.QueryParam("esperar")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil || d <= 0:
		cs.falla("esperar", "debe ser una duración positiva de Go (por ejemplo 30s)")
	case d > EsperaMaxima:
		cs.falla("esperar", "admite como máximo "+EsperaMaxima.String())
	}
	return d
}

// leerClave reads the Idempotency-Key header: "" when absent. A header sent
// empty is refused like any other bad key, since a client that sends one
// meant a key and would otherwise get a second saga on its retry.
func leerClave(c echo.Context, cs *campos) string {
	valores := c.Request().Header.Values(cabeceraIdempotente)
	if len(valores) == 0 {
		return ""
	}
	v := valores[0]
	if v == "" || len(v) > largoClave || strings.IndexFunc(v, func(r rune) bool { return r < '!' || r > '~' }) >= 0 {
		cs.falla(cabeceraIdempotente, fmt.Sprintf("debe tener entre 1 y %d caracteres ASCII visibles", largoClave))
	}
	return v
}

// pasos are the step names of a flow (what simular_fallo may name).
func (s *servidor) pasos(tipo string) []string { return s.nombresPasos[tipo] }

func (s *servidor) primerPaso(tipo string) string {
	if p := s.pasos(tipo); len(p) > 0 {
		return p[0]
	}
	return ""
}

// nombresPasos lists the step names of every flow of the catalogue.
func nombresPasos(cat saga.Catalogo) map[string][]string {
	out := make(map[string][]string, len(cat))
	for tipo, def := range cat {
		for _, p := range def.Pasos {
			out[tipo] = append(out[tipo], p.Nombre)
		}
	}
	return out
}

// sujeto names the caller for the audit log: a fingerprint of the bearer
// token (never the token itself) when tokens are on.
func sujeto(token []byte) string {
	if len(token) == 0 {
		return "anonimo"
	}
	h := sha256.Sum256(token)
	return "token:" + hex.EncodeToString(h[:6])
}
