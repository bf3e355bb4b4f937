package main

import (
	"context"
	"fmt"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes"
)

// States of a commission configuration.
const (
	configurada = "CONFIGURADA"
	revertida   = "REVERTIDA"
)

// Kinds of commission.
const (
	porcentaje = "porcentaje"
	fijo       = "fijo"
)

// porcentajePorDefecto applies when the input names no commission (the
// legacy BFF command carries none).
const porcentajePorDefecto = 10.0

// salidaConfigurar is the reply data of ConfigurarComisionesCampania.
type salidaConfigurar struct {
	Tipo       string  `json:"tipo"`
	Valor      float64 `json:"valor"`
	Moneda     string  `json:"moneda,omitempty"`
	Afiliados  int     `json:"afiliados"`
	PorDefecto bool    `json:"por_defecto,omitempty"`
}

func servicio() participantes.Servicio {
	return participantes.Servicio{
		Nombre: "comisiones",
		Esquema: []string{
			`CREATE TABLE IF NOT EXISTS comisiones_campania (
				saga_id VARCHAR(191) NOT NULL,
				paso VARCHAR(100) NOT NULL,
				campania_id TEXT NOT NULL,
				tipo VARCHAR(20) NOT NULL,
				valor DOUBLE NOT NULL,
				moneda VARCHAR(10) NOT NULL,
				afiliados INT NOT NULL,
				estado VARCHAR(20) NOT NULL,
				detalle TEXT NOT NULL,
				creado_en VARCHAR(30) NOT NULL,
				actualizado_en VARCHAR(30) NOT NULL,
				PRIMARY KEY (saga_id, paso)
			)`,
		},
		Operaciones: []participantes.Operacion{{
			Comando:      "ConfigurarComisionesCampania",
			Compensacion: "RevertirComisionesCampania",
			Ejecutar:     configurar,
			Compensar:    participantes.Deshacer("comisiones_campania", configurada, revertida, "comisiones_revertidas"),
		}},
		Efectos: []participantes.TablaEfectos{{Tabla: "comisiones_campania", Clave: "tipo", Activos: []string{configurada}}},
	}
}

// configurar validates the launch's commission and records it for the
// affiliates an earlier step reserved.
func configurar(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
	var in eventos.EntradaLanzamiento
	if err := p.LeerEntrada(&in); err != nil {
		return nil, err
	}
	salida := salidaConfigurar{Tipo: in.Comision.Tipo, Valor: in.Comision.Valor, Moneda: in.Moneda}
	switch {
	case salida.Tipo == "" && salida.Valor == 0:
		salida.Tipo, salida.Valor, salida.PorDefecto = porcentaje, porcentajePorDefecto, true
	case salida.Tipo == porcentaje && (salida.Valor <= 0 || salida.Valor > 100):
		return nil, participantes.Rechazar(fmt.Sprintf("comisión de %v%%: un porcentaje debe estar en (0, 100]", salida.Valor))
	case salida.Tipo == fijo && salida.Valor <= 0:
		return nil, participantes.Rechazar(fmt.Sprintf("comisión fija de %v: debe ser positiva", salida.Valor))
	case salida.Tipo == fijo && in.Presupuesto > 0 && salida.Valor > in.Presupuesto:
		return nil, participantes.Rechazar(fmt.Sprintf("comisión fija de %v supera el presupuesto de %v", salida.Valor, in.Presupuesto))
	case salida.Tipo != porcentaje && salida.Tipo != fijo:
		return nil, participantes.Rechazar(fmt.Sprintf("tipo de comisión %q: se espera porcentaje o fijo", salida.Tipo))
	}
	if _, err := p.BuscarPrevio("afiliados_reservados", &salida.Afiliados); err != nil {
		return nil, err
	}
	detalle, err := participantes.Detalle(map[string]any{"campania": in.Nombre, "presupuesto": in.Presupuesto, "por_defecto": salida.PorDefecto})
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO comisiones_campania
		(saga_id, paso, campania_id, tipo, valor, moneda, afiliados, estado, detalle, creado_en, actualizado_en)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.SagaID, p.Paso, in.CampaniaID, salida.Tipo, salida.Valor, in.Moneda, salida.Afiliados, configurada, detalle,
		participantes.Momento(p.Ahora), participantes.Momento(p.Ahora)); err != nil {
		return nil, fmt.Errorf("configurar comisión: %w", err)
	}
	return salida, nil
}
