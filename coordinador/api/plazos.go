package api

import (
	"context"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
)

// PlazoAlmacenPorDefecto bounds each store call of a handler, so a database
// that is down or slow is answered 503 with Retry-After in bounded time
// instead of a hang.
const PlazoAlmacenPorDefecto = 5 * time.Second

// consultasConPlazo gives every read its own deadline.
type consultasConPlazo struct {
	c     Consultas
	plazo time.Duration
}

func (c consultasConPlazo) Saga(ctx context.Context, id string) (saga.Saga, error) {
	ctx, cancel := context.WithTimeout(ctx, c.plazo)
	defer cancel()
	return c.c.Saga(ctx, id)
}

func (c consultasConPlazo) Listar(ctx context.Context, f almacen.Filtro) ([]saga.Saga, error) {
	ctx, cancel := context.WithTimeout(ctx, c.plazo)
	defer cancel()
	return c.c.Listar(ctx, f)
}

func (c consultasConPlazo) Contar(ctx context.Context, f almacen.Filtro) (almacen.Resumen, error) {
	ctx, cancel := context.WithTimeout(ctx, c.plazo)
	defer cancel()
	return c.c.Contar(ctx, f)
}

// iniciadorConPlazo gives every start and retry its own deadline.
type iniciadorConPlazo struct {
	i     Iniciador
	plazo time.Duration
}

func (i iniciadorConPlazo) Iniciar(ctx context.Context, sol motor.Solicitud) (string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, i.plazo)
	defer cancel()
	return i.i.Iniciar(ctx, sol)
}

func (i iniciadorConPlazo) Reintentar(ctx context.Context, sagaID string) error {
	ctx, cancel := context.WithTimeout(ctx, i.plazo)
	defer cancel()
	return i.i.Reintentar(ctx, sagaID)
}

func (i iniciadorConPlazo) Cancelar(ctx context.Context, sagaID string) error {
	ctx, cancel := context.WithTimeout(ctx, i.plazo)
	defer cancel()
	return i.i.Cancelar(ctx, sagaID)
}
