package main

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/sqldialecto"
	"github.com/alpespartner/sagas/participantes"
)

// States of a notification to an influencer.
const (
	enviada   = "ENVIADA"
	cancelada = "CANCELADA"
)

// filasPorInsert bounds the rows of one INSERT of notifications (11
// values each: SQLite's limit of bound values is far above).
const filasPorInsert = 250

// maxDelRegistro is how many influencers are picked from the registry when
// the input names none.
const maxDelRegistro = 3

// largoMaximo is the longest influencer name or platform accepted, in
// characters: what the coordinator's API accepts (largoTexto), so every
// valid request can be notified.
const largoMaximo = 200

// notificado is one influencer in the reply.
type notificado struct {
	Nombre     string `json:"nombre"`
	Plataforma string `json:"plataforma"`
	Seguidores int64  `json:"seguidores,omitempty"`
}

// salidaNotificar is the reply data of NotificarInfluencer.
type salidaNotificar struct {
	Notificados []notificado `json:"notificados"`
	Total       int          `json:"total"`
	// Origen is "entrada" (the input named them) or "registro" (picked by
	// segment from the service's registry).
	Origen   string `json:"origen"`
	Segmento string `json:"segmento,omitempty"`
}

func servicio() participantes.Servicio {
	return participantes.Servicio{
		Nombre: "influencer",
		// 2: names and platforms widened to what the API accepts (MySQL).
		VersionEsquema: 2,
		Esquema: []string{
			`CREATE TABLE IF NOT EXISTS influencers (
				id_influencer VARCHAR(40) NOT NULL,
				nombre VARCHAR(120) NOT NULL,
				plataforma VARCHAR(40) NOT NULL,
				segmento VARCHAR(60) NOT NULL,
				seguidores BIGINT NOT NULL,
				PRIMARY KEY (id_influencer)
			)`,
			`CREATE TABLE IF NOT EXISTS notificaciones_influencer (
				saga_id VARCHAR(191) NOT NULL,
				paso VARCHAR(100) NOT NULL,
				influencer VARCHAR(200) NOT NULL,
				plataforma VARCHAR(200) NOT NULL,
				campania_id TEXT NOT NULL,
				campania TEXT NOT NULL,
				origen VARCHAR(20) NOT NULL,
				estado VARCHAR(20) NOT NULL,
				detalle TEXT NOT NULL,
				creado_en VARCHAR(30) NOT NULL,
				actualizado_en VARCHAR(30) NOT NULL,
				PRIMARY KEY (saga_id, paso, influencer, plataforma)
			)`,
		},
		// Tables created by versions that took 120 and 40 characters.
		EsquemaMySQL: []string{
			`ALTER TABLE notificaciones_influencer MODIFY influencer VARCHAR(200) NOT NULL, MODIFY plataforma VARCHAR(200) NOT NULL`,
		},
		Semillas: []participantes.Semilla{{
			Tabla:    "influencers",
			Columnas: []string{"id_influencer", "nombre", "plataforma", "segmento", "seguidores"},
			Filas: [][]any{
				{"inf-01", "Lucía Moda", "instagram", "jovenes", 820000},
				{"inf-02", "Carlos Tech", "youtube", "tecnologia", 1250000},
				{"inf-03", "Ana Fit", "instagram", "deportes", 540000},
				{"inf-04", "Mateo Gamer", "twitch", "jovenes", 980000},
				{"inf-05", "Sofía Cocina", "tiktok", "familias", 430000},
				{"inf-06", "Diego Viajes", "youtube", "viajeros", 610000},
				{"inf-07", "Valentina Estilo", "tiktok", "jovenes", 1500000},
				{"inf-08", "Andrés Finanzas", "linkedin", "profesionales", 210000},
				{"inf-09", "Camila Hogar", "instagram", "familias", 350000},
				{"inf-10", "Javier Runner", "strava", "deportes", 120000},
				{"inf-11", "Isabella Beauty", "youtube", "jovenes", 760000},
				{"inf-12", "Tomás Startups", "linkedin", "tecnologia", 180000},
			},
		}},
		Operaciones: []participantes.Operacion{{
			Comando:      "NotificarInfluencer",
			Compensacion: "CompensarNotificacionInfluencer",
			Ejecutar:     notificar,
			Compensar:    participantes.Deshacer("notificaciones_influencer", enviada, cancelada, "notificaciones_canceladas"),
		}},
		Efectos: []participantes.TablaEfectos{{Tabla: "notificaciones_influencer", Clave: "influencer", Activos: []string{enviada}}},
		FalloSemilla: participantes.FalloSemilla{
			Tasa: 0.05, Mensaje: "Error de red: no se pudo contactar con el influencer",
		},
	}
}

// notificar records one notification per influencer: those the input
// names or, for a legacy event that names none, the most followed of the
// registry in the campaign's audience segment.
func notificar(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
	var in eventos.EntradaCampana
	if err := p.LeerEntrada(&in); err != nil {
		return nil, err
	}
	salida := salidaNotificar{Origen: "entrada"}
	vistos := map[notificado]bool{}
	for _, i := range in.Influencers {
		if i.Nombre == "" || i.Plataforma == "" || utf8.RuneCountInString(i.Nombre) > largoMaximo || utf8.RuneCountInString(i.Plataforma) > largoMaximo {
			return nil, participantes.Rechazar(fmt.Sprintf("influencer %+v: nombre y plataforma son obligatorios, de hasta %d caracteres", i, largoMaximo))
		}
		// MySQL compares VARCHARs ignoring trailing spaces: two names that
		// differ only there are one row of the key, so one notification.
		clave := notificado{Nombre: strings.TrimRight(i.Nombre, " "), Plataforma: strings.TrimRight(i.Plataforma, " ")}
		if !vistos[clave] {
			vistos[clave] = true
			salida.Notificados = append(salida.Notificados, notificado{Nombre: i.Nombre, Plataforma: i.Plataforma})
		}
	}
	if len(salida.Notificados) == 0 {
		elegidos, err := delRegistro(ctx, tx, in.SegmentoAudiencia)
		if err != nil {
			return nil, err
		}
		salida.Notificados, salida.Origen, salida.Segmento = elegidos, "registro", in.SegmentoAudiencia
	}
	if len(salida.Notificados) == 0 {
		return nil, participantes.Rechazar("no hay influencers a quienes notificar")
	}
	// One multi-row INSERT per filasPorInsert influencers: a statement per
	// row cost the database a parse and a table open each (a request may
	// name 1,000).
	for desde := 0; desde < len(salida.Notificados); desde += filasPorInsert {
		lote := salida.Notificados[desde:min(desde+filasPorInsert, len(salida.Notificados))]
		args := make([]any, 0, len(lote)*11)
		for _, n := range lote {
			detalle, err := participantes.Detalle(map[string]any{
				"mensaje":     fmt.Sprintf("Nueva campaña %q: te invitamos a participar", in.Nombre),
				"presupuesto": in.Presupuesto, "tipo": in.Tipo, "seguidores": n.Seguidores,
			})
			if err != nil {
				return nil, err
			}
			args = append(args, p.SagaID, p.Paso, n.Nombre, n.Plataforma, in.CampaniaID, in.Nombre, salida.Origen, enviada, detalle,
				participantes.Momento(p.Ahora), participantes.Momento(p.Ahora))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO notificaciones_influencer
			(saga_id, paso, influencer, plataforma, campania_id, campania, origen, estado, detalle, creado_en, actualizado_en)
			VALUES `+sqldialecto.Filas(len(lote), "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), args...); err != nil {
			return nil, fmt.Errorf("notificar a %d influencers (desde %s, %s): %w", len(lote), lote[0].Nombre, lote[0].Plataforma, err)
		}
	}
	salida.Total = len(salida.Notificados)
	return salida, nil
}

// delRegistro picks the most followed influencers of the segment, or of the
// whole registry when the segment has none.
func delRegistro(ctx context.Context, tx participantes.Ejecutor, segmento string) ([]notificado, error) {
	consultar := func(where string, args ...any) ([]notificado, error) {
		filas, err := tx.QueryContext(ctx, "SELECT nombre, plataforma, seguidores FROM influencers "+where+
			" ORDER BY seguidores DESC, id_influencer LIMIT "+fmt.Sprint(maxDelRegistro), args...)
		if err != nil {
			return nil, fmt.Errorf("registro de influencers: %w", err)
		}
		defer filas.Close()
		var r []notificado
		for filas.Next() {
			var n notificado
			if err := filas.Scan(&n.Nombre, &n.Plataforma, &n.Seguidores); err != nil {
				return nil, fmt.Errorf("registro de influencers: %w", err)
			}
			r = append(r, n)
		}
		return r, filas.Err()
	}
	if segmento != "" {
		r, err := consultar("WHERE segmento = ?", segmento)
		if err != nil || len(r) > 0 {
			return r, err
		}
	}
	return consultar("")
}
