package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/alpespartner/sagas/coordinador/mensajeria"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/topologia"
)

// opcionesTopologia is the deployment the configuration describes: the
// catalogue's services, and the legacy topics when the bridge is on.
func opcionesTopologia(cfg config, catalogo saga.Catalogo) topologia.Opciones {
	o := topologia.Opciones{
		Topologia:   eventos.Topologia{Tenant: cfg.Tenant, Namespace: cfg.Namespace},
		Servicios:   mensajeria.Servicios(catalogo),
		Particiones: cfg.Particiones,
	}
	if cfg.Puente {
		o.Legado = []string{cfg.LegadoCampania, cfg.LegadoLanzar}
	}
	return o
}

// prepararTodo is -preparar: the operator's provisioning step, run with an
// admin role (a broker role that may create the tenant and grant
// permissions; a database user that may run DDL). It migrates the database,
// then creates the broker side of plan and grants each component's role its
// permissions, and prints what it did.
func prepararTodo(ctx context.Context, cfg config, plan topologia.Plan, stdout io.Writer, logger *slog.Logger) error {
	if err := migrarAlmacen(ctx, cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "almacén %s: esquema al día\n", cfg.Almacen)
	admin, err := bus.NuevoAdminSeguro(cfg.PulsarAdminURL, cfg.Seguridad)
	if err != nil {
		return err
	}
	if err := esperarBroker(ctx, admin, logger); err != nil {
		return err
	}
	// A broker that just started, or two provisioning runs at once, can
	// answer with transient errors: retry those for a while.
	limite := time.Now().Add(time.Minute)
	var inf topologia.Informe
	for {
		inf, err = topologia.Preparar(ctx, admin, plan, cfg.Politicas, cfg.Roles)
		if err == nil || errors.Is(err, bus.ErrRechazado) || errors.Is(err, topologia.ErrParticiones) || time.Now().After(limite) || ctx.Err() != nil {
			break
		}
		logger.Warn("preparar topología; reintento", "err", err)
		time.Sleep(time.Second)
	}
	if err != nil {
		return fmt.Errorf("preparar el broker %s: %w", cfg.PulsarAdminURL, err)
	}
	fmt.Fprintf(stdout, "broker %s: namespace %s, %d tópicos, %d esquemas, %d permisos concedidos\n",
		cfg.PulsarAdminURL, plan.Topologia.NS(), inf.Topicos, inf.Esquemas, inf.Permisos)
	for _, c := range plan.Componentes() {
		var partes []string
		for _, p := range plan.De(c) {
			partes = append(partes, strings.Join(p.Acciones, "+")+" "+p.Topico)
		}
		fmt.Fprintf(stdout, "  rol %s (%s): %s\n", cfg.Roles.Rol(c), c, strings.Join(partes, ", "))
	}
	return nil
}
