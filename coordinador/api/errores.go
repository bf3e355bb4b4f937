package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/go-sql-driver/mysql"
	"github.com/labstack/echo/v4"
)

// Campo names one invalid field of a request and what is wrong with it.
type Campo struct {
	Campo string `json:"campo"`
	Error string `json:"error"`
}

// CuerpoError is the API's one error format.
type CuerpoError struct {
	Error  string  `json:"error"`
	Campos []Campo `json:"campos,omitempty"`
	// Estado is the saga's state when it is why the request was refused
	// (a cancel of a saga that already ended).
	Estado saga.Estado `json:"estado,omitempty"`
}

// errorSolicitud is a request the API refuses, with its status and, for a
// 400, every bad field.
type errorSolicitud struct {
	codigo  int
	mensaje string
	campos  []Campo
}

func (e *errorSolicitud) Error() string {
	if len(e.campos) == 0 {
		return e.mensaje
	}
	return fmt.Sprintf("%s: %v", e.mensaje, e.campos)
}

// Sentinel refusals that carry no field list.
var (
	errNoAutorizado  = &errorSolicitud{codigo: http.StatusUnauthorized, mensaje: "falta el token o no es válido (Authorization: Bearer <token>)"}
	errSoloLectura   = &errorSolicitud{codigo: http.StatusForbidden, mensaje: "el token es de solo lectura: iniciar, reintentar o cancelar sagas requiere el token de operador"}
	errTipoContenido = &errorSolicitud{codigo: http.StatusUnsupportedMediaType, mensaje: "el cuerpo debe ser JSON (Content-Type: application/json)"}
	errCuerpoVacio   = &errorSolicitud{codigo: http.StatusBadRequest, mensaje: "el cuerpo está vacío: se espera un objeto JSON"}
)

// errIDInvalido answers 404 for ids that cannot name a saga, without asking
// the store.
var errIDInvalido = fmt.Errorf("id de saga mal formado: %w", almacen.ErrNoEncontrada)

// malformado is a body that is not one JSON value.
func malformado(err error) *errorSolicitud {
	return &errorSolicitud{codigo: http.StatusBadRequest, mensaje: "JSON mal formado: " + err.Error()}
}

// entradaDemasiadoGrande is a valid request whose saga input, encoded as
// the saga carries it, is larger than eventos.MaximoEntrada: 413.
func entradaDemasiadoGrande(n int) *errorSolicitud {
	return &errorSolicitud{codigo: http.StatusRequestEntityTooLarge, mensaje: fmt.Sprintf(
		"la entrada de la saga ocupa %d bytes codificada en JSON, más que el límite de %d bytes (eventos.MaximoEntrada)", n, eventos.MaximoEntrada)}
}

// invalida is a 400 naming each bad field.
func invalida(campos []Campo) *errorSolicitud {
	return &errorSolicitud{codigo: http.StatusBadRequest, mensaje: "solicitud inválida", campos: campos}
}

// campos collects the bad fields of a request: the first problem of each
// field wins, so a type error is not followed by "es obligatorio".
type campos struct {
	lista  []Campo
	vistos map[string]bool
}

func (c *campos) falla(campo, mensaje string) {
	if c.vistos == nil {
		c.vistos = map[string]bool{}
	}
	if c.vistos[campo] {
		return
	}
	c.vistos[campo] = true
	c.lista = append(c.lista, Campo{Campo: campo, Error: mensaje})
}

func (c *campos) error() error {
	if len(c.lista) == 0 {
		return nil
	}
	return invalida(c.lista)
}

// SegundosReintento is the Retry-After of a 503: how long a client should
// wait before retrying while a dependency is down or slow.
const SegundosReintento = 5

// claseFalla names the class of an error that means a dependency is down or
// too slow (a 503 worth retrying), or returns "" for any other error. It
// never includes the error's text, which may name hosts or users.
func claseFalla(err error) string {
	var neterr net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "tiempo_agotado"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conexion_rechazada"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
		return "conexion_cortada"
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, sql.ErrConnDone):
		return "conexion_invalida"
	case errors.As(err, &neterr) && neterr.Timeout():
		return "tiempo_agotado"
	case errors.As(err, &neterr):
		return "red"
	}
	return ""
}

// traducir is the one mapping from errors to HTTP status and body.
func traducir(err error, limite int64) (int, CuerpoError) {
	var es *errorSolicitud
	var demasiado *http.MaxBytesError
	var he *echo.HTTPError
	var reutilizada *almacen.ClaveReutilizadaError
	var grande *motor.EntradaDemasiadoGrandeError
	var terminada *saga.NoCancelableError
	switch {
	case errors.As(err, &es):
		return es.codigo, CuerpoError{Error: es.mensaje, Campos: es.campos}
	case errors.As(err, &demasiado):
		return http.StatusRequestEntityTooLarge, CuerpoError{Error: fmt.Sprintf("el cuerpo supera el límite de %d bytes", limite)}
	case errors.As(err, &reutilizada):
		return http.StatusUnprocessableEntity, CuerpoError{Error: fmt.Sprintf("%s %q ya se usó con otra solicitud (saga %s)",
			cabeceraIdempotente, claveDeCabecera(reutilizada.Clave), reutilizada.SagaID)}
	case errors.Is(err, almacen.ErrNoEncontrada):
		return http.StatusNotFound, CuerpoError{Error: "saga no encontrada"}
	case errors.Is(err, almacen.ErrAparcadoNoEncontrado):
		return http.StatusNotFound, CuerpoError{Error: "mensaje aparcado no encontrado (nunca se aparcó, ya se reenvió o se borró)"}
	case errors.Is(err, saga.ErrNoReintentable):
		return http.StatusConflict, CuerpoError{Error: "solo se puede reintentar una saga en COMPENSACION_FALLIDA"}
	case errors.As(err, &terminada):
		return http.StatusConflict, CuerpoError{Error: "la saga ya terminó en " + string(terminada.Estado) + ": no se puede cancelar", Estado: terminada.Estado}
	case errors.As(err, &grande):
		return entradaDemasiadoGrande(grande.Bytes).codigo, CuerpoError{Error: entradaDemasiadoGrande(grande.Bytes).mensaje}
	case errors.Is(err, motor.ErrEntradaInvalida), errors.Is(err, almacen.ErrInvalido):
		return http.StatusBadRequest, CuerpoError{Error: err.Error()}
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, CuerpoError{Error: "ruta no encontrada"}
		case http.StatusMethodNotAllowed:
			return he.Code, CuerpoError{Error: "método no permitido en esta ruta"}
		case http.StatusRequestEntityTooLarge:
			return he.Code, CuerpoError{Error: fmt.Sprintf("el cuerpo supera el límite de %d bytes", limite)}
		}
		if he.Code >= 400 && he.Code < 500 {
			return he.Code, CuerpoError{Error: fmt.Sprint(he.Message)}
		}
		return http.StatusInternalServerError, CuerpoError{Error: "error interno"}
	case claseFalla(err) != "":
		return http.StatusServiceUnavailable, CuerpoError{Error: "la base de datos no responde (" + claseFalla(err) + "): reintente más tarde"}
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, CuerpoError{Error: "la operación no terminó a tiempo"}
	default:
		return http.StatusInternalServerError, CuerpoError{Error: "error interno"}
	}
}

// manejarError is the echo HTTPErrorHandler: every error answer of the API
// is written here.
func (s *servidor) manejarError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	codigo, cuerpo := traducir(err, s.limite)
	if codigo >= 500 {
		s.logger.Error("error de la API", "ruta", c.Path(), "metodo", c.Request().Method, "codigo", codigo, "error", err)
	} else {
		s.logger.Debug("solicitud rechazada", "ruta", c.Path(), "metodo", c.Request().Method, "codigo", codigo, "error", err)
	}
	if codigo == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(SegundosReintento))
	}
	if codigo == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="sagas"`)
	}
	var escribir error
	if c.Request().Method == http.MethodHead {
		escribir = c.NoContent(codigo)
	} else {
		escribir = c.JSON(codigo, cuerpo)
	}
	if escribir != nil {
		s.logger.Debug("no se pudo escribir la respuesta de error", "error", escribir)
	}
}
