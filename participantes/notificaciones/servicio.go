package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes"
)

// States of a prepared notification.
const (
	preparada = "PREPARADA"
	cancelada = "CANCELADA"
)

// canales are the notification channels the service can prepare.
func canales() []string { return []string{"email", "sms", "push", "whatsapp", "webhook"} }

// canalPorDefecto is used when the input names no channel.
const canalPorDefecto = "email"

// salidaPreparar is the reply data of PrepararNotificacionesCampania.
type salidaPreparar struct {
	Canales       []string `json:"canales"`
	Destinatarios int      `json:"destinatarios"`
}

func servicio() participantes.Servicio {
	return participantes.Servicio{
		Nombre: "notificaciones",
		Esquema: []string{
			`CREATE TABLE IF NOT EXISTS notificaciones_campania (
				saga_id VARCHAR(191) NOT NULL,
				paso VARCHAR(100) NOT NULL,
				canal VARCHAR(20) NOT NULL,
				campania_id TEXT NOT NULL,
				asunto TEXT NOT NULL,
				destinatarios INT NOT NULL,
				estado VARCHAR(20) NOT NULL,
				detalle TEXT NOT NULL,
				creado_en VARCHAR(30) NOT NULL,
				actualizado_en VARCHAR(30) NOT NULL,
				PRIMARY KEY (saga_id, paso, canal)
			)`,
		},
		Operaciones: []participantes.Operacion{{
			Comando:      "PrepararNotificacionesCampania",
			Compensacion: "CancelarNotificacionesCampania",
			Ejecutar:     preparar,
			Compensar:    participantes.Deshacer("notificaciones_campania", preparada, cancelada, "notificaciones_canceladas"),
		}},
		Efectos: []participantes.TablaEfectos{{Tabla: "notificaciones_campania", Clave: "canal", Activos: []string{preparada}}},
	}
}

// preparar records one notification per channel, addressed to the
// affiliates an earlier step reserved. An unknown channel is a business
// failure.
func preparar(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
	var in eventos.EntradaLanzamiento
	if err := p.LeerEntrada(&in); err != nil {
		return nil, err
	}
	var salida salidaPreparar
	for _, c := range in.CanalesNotificacion {
		if !slices.Contains(canales(), c) {
			return nil, participantes.Rechazar(fmt.Sprintf("canal de notificación %q desconocido: se admiten %v", c, canales()))
		}
		if !slices.Contains(salida.Canales, c) {
			salida.Canales = append(salida.Canales, c)
		}
	}
	if len(salida.Canales) == 0 {
		salida.Canales = []string{canalPorDefecto}
	}
	if _, err := p.BuscarPrevio("afiliados_reservados", &salida.Destinatarios); err != nil {
		return nil, err
	}
	asunto := fmt.Sprintf("Lanzamiento de la campaña %s", in.Nombre)
	for _, c := range salida.Canales {
		detalle, err := participantes.Detalle(map[string]any{"objetivo": in.Objetivo, "fecha_inicio": in.FechaInicio, "fecha_fin": in.FechaFin})
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO notificaciones_campania
			(saga_id, paso, canal, campania_id, asunto, destinatarios, estado, detalle, creado_en, actualizado_en)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.SagaID, p.Paso, c, in.CampaniaID, asunto, salida.Destinatarios, preparada, detalle,
			participantes.Momento(p.Ahora), participantes.Momento(p.Ahora)); err != nil {
			return nil, fmt.Errorf("preparar notificación por %s: %w", c, err)
		}
	}
	return salida, nil
}
