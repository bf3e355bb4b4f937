package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/labstack/echo/v4"
)

// Outbox reads the parked outbox rows and sends one again (the almacen.DB).
type Outbox interface {
	Aparcados(ctx context.Context, limite int) ([]almacen.Aparcado, error)
	ContarAparcados(ctx context.Context) (int, error)
	Reenviar(ctx context.Context, id int64) (almacen.Aparcado, error)
}

// formatoIDMensaje is an outbox row id as the document allows it: no sign,
// no leading zero.
var formatoIDMensaje = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// aparcadoJSON is one parked outbox row as the API shows it: enough for an
// operator to find its saga and the broker's reason, not the payload.
type aparcadoJSON struct {
	ID          int64     `json:"id"`
	SagaID      string    `json:"saga_id"`
	Topico      string    `json:"topico"`
	Tipo        string    `json:"tipo"`
	Intentos    int       `json:"intentos"`
	UltimoError string    `json:"ultimo_error"`
	Creado      time.Time `json:"creado"`
	Aparcado    time.Time `json:"aparcado"`
}

// listaAparcados is the answer of GET /api/v1/outbox/aparcados.
type listaAparcados struct {
	Total     int            `json:"total"`
	Aparcados []aparcadoJSON `json:"aparcados"`
}

func aparcadoDe(a almacen.Aparcado) aparcadoJSON {
	return aparcadoJSON{ID: a.ID, SagaID: a.Clave, Topico: a.Topico, Tipo: a.Tipo, Intentos: a.Intentos,
		UltimoError: a.UltimoError, Creado: a.Creado.UTC(), Aparcado: a.Aparcado.UTC()}
}

// aparcados is GET /api/v1/outbox/aparcados: the parked outbox rows, oldest
// first, at most limite of them, and how many there are in all.
func (s *servidor) aparcados(c echo.Context) error {
	var cs campos
	limite := limitePorDefecto
	if v := c.QueryParam("limite"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > limiteMaximo {
			cs.falla("limite", fmt.Sprintf("debe ser un entero entre 1 y %d", limiteMaximo))
		}
		limite = n
	}
	if err := cs.error(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.plazoAlmacen)
	defer cancel()
	total, err := s.outbox.ContarAparcados(ctx)
	if err != nil {
		return err
	}
	filas, err := s.outbox.Aparcados(ctx, limite)
	if err != nil {
		return err
	}
	lista := listaAparcados{Total: total, Aparcados: make([]aparcadoJSON, 0, len(filas))}
	for _, a := range filas {
		lista.Aparcados = append(lista.Aparcados, aparcadoDe(a))
	}
	return c.JSON(http.StatusOK, lista)
}

// reenviar is POST /api/v1/outbox/aparcados/{id}/reenviar: the operator
// clears a parked row's mark once the cause is fixed, so the relay sends it
// again. Audited like a saga retry.
func (s *servidor) reenviar(c echo.Context) error {
	texto := c.Param("id")
	auditoria := []any{"mensaje", texto, "quien", s.sujeto, "remoto", c.Request().RemoteAddr, "cuando", s.ahora().UTC()}
	id, err := strconv.ParseInt(texto, 10, 64)
	if err != nil || !formatoIDMensaje.MatchString(texto) {
		return fmt.Errorf("id de mensaje %q mal formado: %w", texto, almacen.ErrAparcadoNoEncontrado)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.plazoAlmacen)
	defer cancel()
	a, err := s.outbox.Reenviar(ctx, id)
	if err != nil {
		s.logger.Warn("reenvío manual rechazado", append(auditoria, "error", err)...)
		return fmt.Errorf("reenviar mensaje aparcado %d: %w", id, err)
	}
	s.logger.Info("reenvío manual de un mensaje aparcado", append(auditoria, "saga_id", a.Clave, "topico", a.Topico, "tipo", a.Tipo)...)
	return c.JSON(http.StatusAccepted, aparcadoDe(a))
}
