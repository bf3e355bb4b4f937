package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/alpespartner/sagas/participantes"
)

// States of a tracking configuration.
const (
	activa      = "ACTIVA"
	desactivada = "DESACTIVADA"
)

// Kinds of tracking configuration.
const (
	tipoCampana      = "campana"
	tipoConversiones = "conversiones"
)

// salidaTracking is the reply data of both actions.
type salidaTracking struct {
	Tipo                string   `json:"tipo"`
	CodigoSeguimiento   string   `json:"codigo_seguimiento"`
	Eventos             []string `json:"eventos"`
	AfiliadosRastreados int      `json:"afiliados_rastreados,omitempty"`
}

// entrada holds the fields tracking reads from either saga input
// (EntradaCampana or EntradaLanzamiento).
type entrada struct {
	CampaniaID      string `json:"campania_id"`
	Nombre          string `json:"nombre"`
	CanalPublicidad string `json:"canal_publicidad"`
	Objetivo        string `json:"objetivo"`
}

func servicio() participantes.Servicio {
	desactivar := participantes.Deshacer("configuraciones_tracking", activa, desactivada, "configuraciones_desactivadas")
	return participantes.Servicio{
		Nombre: "tracking",
		Esquema: []string{
			`CREATE TABLE IF NOT EXISTS configuraciones_tracking (
				saga_id VARCHAR(191) NOT NULL,
				paso VARCHAR(100) NOT NULL,
				tipo VARCHAR(20) NOT NULL,
				campania_id TEXT NOT NULL,
				codigo_seguimiento VARCHAR(40) NOT NULL,
				eventos VARCHAR(300) NOT NULL,
				estado VARCHAR(20) NOT NULL,
				detalle TEXT NOT NULL,
				creado_en VARCHAR(30) NOT NULL,
				actualizado_en VARCHAR(30) NOT NULL,
				PRIMARY KEY (saga_id, paso)
			)`,
		},
		Operaciones: []participantes.Operacion{
			{
				Comando:      "InicializarTracking",
				Compensacion: "CompensarInicializacionTracking",
				Ejecutar: func(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
					return inicializar(ctx, tx, p, tipoCampana, []string{"impresion", "click", "interaccion"})
				},
				Compensar: desactivar,
			},
			{
				Comando:      "InicializarTrackingConversiones",
				Compensacion: "DesactivarTrackingConversiones",
				Ejecutar: func(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
					return inicializar(ctx, tx, p, tipoConversiones, []string{"click", "registro", "compra"})
				},
				Compensar: desactivar,
			},
		},
		Efectos: []participantes.TablaEfectos{{Tabla: "configuraciones_tracking", Clave: "tipo", Activos: []string{activa}}},
		FalloSemilla: participantes.FalloSemilla{
			Tasa: 0.15, Mensaje: "Error de base de datos: no se pudo inicializar el tracking",
		},
	}
}

// inicializar records an active tracking configuration for the step, with
// a tracking code derived from saga and step (the same on every instance).
func inicializar(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion, tipo string, eventos []string) (any, error) {
	var in entrada
	if err := p.LeerEntrada(&in); err != nil {
		return nil, err
	}
	suma := sha256.Sum256([]byte(p.SagaID + "/" + p.Paso))
	salida := salidaTracking{Tipo: tipo, CodigoSeguimiento: "TRK-" + strings.ToUpper(hex.EncodeToString(suma[:6])), Eventos: eventos}
	if tipo == tipoConversiones {
		// Conversions are attributed to the affiliates an earlier step reserved.
		if _, err := p.BuscarPrevio("afiliados_reservados", &salida.AfiliadosRastreados); err != nil {
			return nil, err
		}
	}
	detalle, err := participantes.Detalle(map[string]any{
		"campania": in.Nombre, "canal_publicidad": in.CanalPublicidad, "objetivo": in.Objetivo,
		"afiliados_rastreados": salida.AfiliadosRastreados,
	})
	if err != nil {
		return nil, err
	}
	listaEventos, err := json.Marshal(eventos)
	if err != nil {
		return nil, fmt.Errorf("eventos de tracking: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO configuraciones_tracking
		(saga_id, paso, tipo, campania_id, codigo_seguimiento, eventos, estado, detalle, creado_en, actualizado_en)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.SagaID, p.Paso, tipo, in.CampaniaID, salida.CodigoSeguimiento, string(listaEventos), activa, detalle,
		participantes.Momento(p.Ahora), participantes.Momento(p.Ahora)); err != nil {
		return nil, fmt.Errorf("inicializar tracking %s: %w", tipo, err)
	}
	return salida, nil
}
