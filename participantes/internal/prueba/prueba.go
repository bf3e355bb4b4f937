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
// when it says "romper"), Deshacer marks it undone. With "duplicar" Hacer
// writes its row twice (the second fails on the key); with "consultar" it
// reads its rows back after writing ("vistos" in its output); with "filas"
// it reads its INSERT's affected rows ("insertadas"), which the store may
// have held back (MySQL); with "literal" it also runs a statement without
// arguments whose text holds a '?'.
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
					Rechazar  bool `json:"rechazar"`
					Romper    bool `json:"romper"` // a technical error, after writing
					Duplicar  bool `json:"duplicar"`
					Consultar bool `json:"consultar"`
					Filas     bool `json:"filas"`
					Literal   bool `json:"literal"`
				}
				if err := p.LeerEntrada(&in); err != nil {
					return nil, err
				}
				salida := map[string]any{"hecho": true}
				veces := 1
				if in.Duplicar {
					veces = 2
				}
				for range veces {
					res, err := tx.ExecContext(ctx, `INSERT INTO efectos_prueba (saga_id, paso, clave, estado, detalle, creado_en, actualizado_en)
						VALUES (?, ?, 'unico', 'ACTIVO', '{"hecho":true}', ?, ?)`, p.SagaID, p.Paso, servicio.Momento(p.Ahora), servicio.Momento(p.Ahora))
					if err != nil {
						return nil, fmt.Errorf("insertar efecto: %w", err)
					}
					if in.Filas {
						n, err := res.RowsAffected()
						if err != nil {
							return nil, fmt.Errorf("filas insertadas: %w", err)
						}
						salida["insertadas"] = n
					}
				}
				if in.Literal {
					if _, err := tx.ExecContext(ctx, `UPDATE efectos_prueba SET detalle = '{"nota":"¿hecho?"}' WHERE saga_id = 'nadie'`); err != nil {
						return nil, fmt.Errorf("literal: %w", err)
					}
				}
				if in.Consultar {
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM efectos_prueba WHERE saga_id = ? AND paso = ?", p.SagaID, p.Paso).Scan(&n); err != nil {
						return nil, fmt.Errorf("consultar efectos: %w", err)
					}
					salida["vistos"] = n
				}
				if in.Rechazar {
					return nil, servicio.Rechazar("rechazado por la entrada")
				}
				if in.Romper {
					return nil, errors.New("fallo técnico simulado")
				}
				return salida, nil
			},
			Compensar: func(ctx context.Context, tx servicio.Ejecutor, p servicio.Peticion) (any, error) {
				n, err := servicio.CambiarEstado(ctx, tx, "efectos_prueba", p, "ACTIVO", "DESHECHO")
				return map[string]any{"deshechos": n}, err
			},
		}},
		Efectos: []servicio.TablaEfectos{{Tabla: "efectos_prueba", Clave: "clave", Activos: []string{"ACTIVO"}}},
	}
}
