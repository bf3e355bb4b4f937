package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/internal/basedatos"
)

// migrarAlmacen is the store's part of -preparar: it brings the schema up to
// the binary's version as the migration user (SAGAS_DB_MIGRATION_USER, or
// SAGAS_DB_USER when none is configured; SQLite: the file), waiting a while
// for a database that is still starting.
func migrarAlmacen(ctx context.Context, cfg config) error {
	ac := cfg.almacenConfig()
	ac.SoloComprobar = false
	if cfg.Almacen == almacen.TipoMySQL {
		if err := cfg.DB.ValidarMigracion(); err != nil {
			return err
		}
		ac.DSN = cfg.DB.DSNMigracion(cfg.DBName)
	}
	return conReintentos(ctx, "migrar almacén "+cfg.Almacen, func() error { return almacen.Migrar(ctx, ac) })
}

// conReintentos runs fn until it succeeds, for up to 30 attempts a second
// apart (in compose the database may start after the coordinator), except
// after an error that waiting does not heal: a refused user or certificate,
// or a schema at another version.
func conReintentos(ctx context.Context, que string, fn func() error) error {
	for intento := 1; ; intento++ {
		err := fn()
		if err == nil {
			return nil
		}
		if intento == 30 || ctx.Err() != nil || basedatos.Definitivo(err) {
			return fmt.Errorf("%s: %w", que, err)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", que, errors.Join(err, ctx.Err()))
		}
	}
}
