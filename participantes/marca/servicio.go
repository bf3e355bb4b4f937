package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes"
)

// States of a notification to a brand.
const (
	enviada   = "ENVIADA"
	cancelada = "CANCELADA"
)

// salidaNotificar is the reply data of NotificarMarca.
type salidaNotificar struct {
	Marca eventos.Marca `json:"marca"`
	// Origen is "entrada" (the input named the brand) or "registro" (picked
	// by advertising channel from the service's registry).
	Origen string `json:"origen"`
	Canal  string `json:"canal_publicidad,omitempty"`
}

func servicio() participantes.Servicio {
	return participantes.Servicio{
		Nombre: "marca",
		Esquema: []string{
			`CREATE TABLE IF NOT EXISTS marcas (
				id_marca VARCHAR(40) NOT NULL,
				nombre VARCHAR(120) NOT NULL,
				canal_publicidad VARCHAR(60) NOT NULL,
				sector VARCHAR(60) NOT NULL,
				PRIMARY KEY (id_marca)
			)`,
			`CREATE TABLE IF NOT EXISTS notificaciones_marca (
				saga_id VARCHAR(191) NOT NULL,
				paso VARCHAR(100) NOT NULL,
				id_marca TEXT NOT NULL,
				nombre_marca TEXT NOT NULL,
				campania_id TEXT NOT NULL,
				campania TEXT NOT NULL,
				presupuesto DOUBLE NOT NULL,
				origen VARCHAR(20) NOT NULL,
				estado VARCHAR(20) NOT NULL,
				detalle TEXT NOT NULL,
				creado_en VARCHAR(30) NOT NULL,
				actualizado_en VARCHAR(30) NOT NULL,
				PRIMARY KEY (saga_id, paso)
			)`,
		},
		Semillas: []participantes.Semilla{{
			Tabla:    "marcas",
			Columnas: []string{"id_marca", "nombre", "canal_publicidad", "sector"},
			Filas: [][]any{
				{"m-001", "Andes Outdoor", "redes_sociales", "deportes"},
				{"m-002", "Café Altura", "redes_sociales", "alimentacion"},
				{"m-003", "Nébula Tech", "display", "tecnologia"},
				{"m-004", "Pacífico Seguros", "email", "finanzas"},
				{"m-005", "Urbana Moda", "influencers", "moda"},
				{"m-006", "Sierra Hogar", "display", "hogar"},
				{"m-007", "Ruta Viajes", "busqueda", "viajes"},
				{"m-008", "Brisa Cosmética", "influencers", "belleza"},
			},
		}},
		Operaciones: []participantes.Operacion{{
			Comando:      "NotificarMarca",
			Compensacion: "CompensarNotificacionMarca",
			Ejecutar:     notificar,
			Compensar:    participantes.Deshacer("notificaciones_marca", enviada, cancelada, "notificaciones_canceladas"),
		}},
		Efectos: []participantes.TablaEfectos{{Tabla: "notificaciones_marca", Clave: "id_marca", Activos: []string{enviada}}},
		FalloSemilla: participantes.FalloSemilla{
			Tasa: 0.10, Mensaje: "Error de notificación: la marca no pudo ser notificada",
		},
	}
}

// notificar records the notification to the campaign's brand: the one the
// input names or, for a legacy event, one of the registry's brands for the
// campaign's advertising channel.
func notificar(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
	var in eventos.EntradaCampana
	if err := p.LeerEntrada(&in); err != nil {
		return nil, err
	}
	salida := salidaNotificar{Origen: "entrada"}
	if in.Marca != nil {
		if in.Marca.IDMarca == "" || in.Marca.NombreMarca == "" {
			return nil, participantes.Rechazar("la marca necesita id_marca y nombre_marca")
		}
		salida.Marca = *in.Marca
	} else {
		m, err := delRegistro(ctx, tx, in.CanalPublicidad, p.SagaID)
		if err != nil {
			return nil, err
		}
		salida.Marca, salida.Origen, salida.Canal = m, "registro", in.CanalPublicidad
	}
	detalle, err := participantes.Detalle(map[string]any{
		"mensaje": fmt.Sprintf("Campaña %q lista para su aprobación", in.Nombre),
		"tipo":    in.Tipo, "moneda": in.Moneda, "canal_publicidad": in.CanalPublicidad,
	})
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO notificaciones_marca
		(saga_id, paso, id_marca, nombre_marca, campania_id, campania, presupuesto, origen, estado, detalle, creado_en, actualizado_en)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.SagaID, p.Paso, salida.Marca.IDMarca, salida.Marca.NombreMarca, in.CampaniaID, in.Nombre, in.Presupuesto,
		salida.Origen, enviada, detalle, participantes.Momento(p.Ahora), participantes.Momento(p.Ahora)); err != nil {
		return nil, fmt.Errorf("notificar a la marca %s: %w", salida.Marca.IDMarca, err)
	}
	return salida, nil
}

// delRegistro picks one of the channel's brands (any brand when the channel
// has none), spread over sagas by a hash of the saga id.
func delRegistro(ctx context.Context, tx participantes.Ejecutor, canal, sagaID string) (eventos.Marca, error) {
	h := fnv.New32a()
	h.Write([]byte(sagaID))
	elegir := func(where string, args ...any) (eventos.Marca, error) {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM marcas "+where, args...).Scan(&n); err != nil || n == 0 {
			return eventos.Marca{}, err
		}
		var m eventos.Marca
		err := tx.QueryRowContext(ctx, "SELECT id_marca, nombre FROM marcas "+where+" ORDER BY id_marca LIMIT 1 OFFSET "+
			fmt.Sprint(h.Sum32()%uint32(n)), args...).Scan(&m.IDMarca, &m.NombreMarca)
		return m, err
	}
	m, err := elegir("WHERE canal_publicidad = ?", canal)
	if err == nil && m.IDMarca == "" {
		m, err = elegir("")
	}
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && m.IDMarca == ""):
		return m, participantes.Rechazar("el registro de marcas está vacío")
	case err != nil:
		return m, fmt.Errorf("registro de marcas: %w", err)
	}
	return m, nil
}
