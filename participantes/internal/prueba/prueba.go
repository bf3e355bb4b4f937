// Package prueba is the minimal service the runtime's own tests run.
package prueba

import (
	"context"
	"errors"
	"fmt"

	"github.com/alpespartner/sagas/participantes/servicio"
)

// Servicio is a minimal service for the runtime's tests: Hacer writes one
// row (and then refuses when the input says "rechazar", to prove that a
// business failure leaves nothing behind, or fails with a technical error
// when it says "romper"), Deshacer marks it undone.
func Servicio() servicio.Servicio {
	return servicio.Servicio{
		Nombre: "prueba",
		Esquema: []string{`CREATE TABLE IF NOT EXISTS efectos_prueba (
			saga_id VARCHAR(191) NOT NULL,
			paso VARCHAR(100) NOT NULL,
			clave VARCHAR(50) NOT NULL,
			estado VARCHAR(20) NOT NULL,
			detalle TEXT NOT NULL,
			creado_en VARCHAR(30) NOT NULL,
			actualizado_en VARCHAR(30) NOT NULL,
			PRIMARY KEY (saga_id, paso, clave)
		)`},
		Operaciones: []servicio.Operacion{{
			Comando:      "Hacer",
			Compensacion: "Deshacer",
			Ejecutar: func(ctx context.Context, tx servicio.Ejecutor, p servicio.Peticion) (any, error) {
				var in struct {
					Rechazar bool `json:"rechazar"`
					Romper   bool `json:"romper"` // a technical error, after writing
				}
				if err := p.LeerEntrada(&in); err != nil {
					return nil, err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO efectos_prueba (saga_id, paso, clave, estado, detalle, creado_en, actualizado_en)
					VALUES (?, ?, 'unico', 'ACTIVO', '{"hecho":true}', ?, ?)`, p.SagaID, p.Paso, servicio.Momento(p.Ahora), servicio.Momento(p.Ahora)); err != nil {
					return nil, fmt.Errorf("insertar efecto: %w", err)
				}
				if in.Rechazar {
					return nil, servicio.Rechazar("rechazado por la entrada")
				}
				if in.Romper {
					return nil, errors.New("fallo técnico simulado")
				}
				return map[string]any{"hecho": true}, nil
			},
			Compensar: func(ctx context.Context, tx servicio.Ejecutor, p servicio.Peticion) (any, error) {
				n, err := servicio.CambiarEstado(ctx, tx, "efectos_prueba", p, "ACTIVO", "DESHECHO")
				return map[string]any{"deshechos": n}, err
			},
		}},
		Efectos: []servicio.TablaEfectos{{Tabla: "efectos_prueba", Clave: "clave", Activos: []string{"ACTIVO"}}},
	}
}
