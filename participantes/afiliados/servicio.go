package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/sqldialecto"
	"github.com/alpespartner/sagas/participantes"
)

// States of a reservation.
const (
	reservado = "RESERVADO"
	liberado  = "LIBERADO"
)

// Bounds of how many affiliates one launch reserves.
const (
	maximoPorDefecto = 10
	maximoPermitido  = 50
)

// afiliado is a reserved affiliate in the reply.
type afiliado struct {
	ID         string `json:"id_afiliado"`
	Nombre     string `json:"nombre"`
	Segmento   string `json:"segmento"`
	Categoria  string `json:"categoria"`
	Seguidores int64  `json:"seguidores"`
}

// salidaSolicitar is the reply data of SolicitarAfiliadosElegibles. Later
// steps read afiliados_reservados.
type salidaSolicitar struct {
	Afiliados           []afiliado `json:"afiliados"`
	AfiliadosReservados int        `json:"afiliados_reservados"`
}

func servicio() participantes.Servicio {
	return participantes.Servicio{
		Nombre: "afiliados",
		Esquema: []string{
			`CREATE TABLE IF NOT EXISTS afiliados (
				id_afiliado VARCHAR(40) NOT NULL,
				nombre VARCHAR(120) NOT NULL,
				segmento VARCHAR(60) NOT NULL,
				categoria VARCHAR(60) NOT NULL,
				seguidores BIGINT NOT NULL,
				activo INT NOT NULL,
				PRIMARY KEY (id_afiliado)
			)`,
			`CREATE TABLE IF NOT EXISTS reservas_afiliados (
				saga_id VARCHAR(191) NOT NULL,
				paso VARCHAR(100) NOT NULL,
				id_afiliado VARCHAR(40) NOT NULL,
				campania_id TEXT NOT NULL,
				estado VARCHAR(20) NOT NULL,
				detalle TEXT NOT NULL,
				creado_en VARCHAR(30) NOT NULL,
				actualizado_en VARCHAR(30) NOT NULL,
				PRIMARY KEY (saga_id, paso, id_afiliado)
			)`,
		},
		Semillas: []participantes.Semilla{registro()},
		Operaciones: []participantes.Operacion{{
			Comando:      "SolicitarAfiliadosElegibles",
			Compensacion: "LiberarAfiliadosElegibles",
			Ejecutar:     solicitar,
			Compensar:    participantes.Deshacer("reservas_afiliados", reservado, liberado, "afiliados_liberados"),
		}},
		Efectos: []participantes.TablaEfectos{{Tabla: "reservas_afiliados", Clave: "id_afiliado", Activos: []string{reservado}}},
	}
}

// Segments and categories of the registry.
func segmentos() []string {
	return []string{"jovenes", "familias", "deportistas", "profesionales", "gamers", "viajeros"}
}

func categorias() []string {
	return []string{"moda", "tecnologia", "deportes", "gastronomia", "viajes", "hogar"}
}

// registro is the seeded registry: 36 affiliates, one per segment and
// category, with follower counts spread from a few thousand to about 500k.
// Every fifth one is inactive and never eligible.
func registro() participantes.Semilla {
	nombres := []string{
		"Ana Ruiz", "Bruno Díaz", "Carla Gómez", "Daniel Soto", "Elena Vidal", "Felipe Rojas",
		"Gabriela Luna", "Hugo Herrera", "Inés Castro", "Julián Mora", "Karen Paredes", "Luis Navarro",
		"María Ortega", "Nicolás Peña", "Olga Ramos", "Pablo Silva", "Quique Torres", "Rosa Vargas",
		"Samuel Ibáñez", "Teresa León", "Ulises Medina", "Verónica Campos", "Walter Fuentes", "Ximena Rivas",
		"Yago Salas", "Zoe Aguilar", "Álvaro Cruz", "Beatriz Molina", "César Núñez", "Diana Prieto",
		"Emilio Reyes", "Fátima Serrano", "Gonzalo Tapia", "Helena Uribe", "Iván Valdés", "Julia Zamora",
	}
	s := participantes.Semilla{
		Tabla:    "afiliados",
		Columnas: []string{"id_afiliado", "nombre", "segmento", "categoria", "seguidores", "activo"},
	}
	for i, nombre := range nombres {
		activo := 1
		if i%5 == 4 {
			activo = 0
		}
		s.Filas = append(s.Filas, []any{
			fmt.Sprintf("af-%03d", i+1), nombre, segmentos()[i%6], categorias()[i/6],
			int64(3000 + (i*104729)%497000), activo,
		})
	}
	return s
}

// solicitar reserves the active affiliates that meet the launch's criteria,
// most followed first. None eligible is a business failure.
func solicitar(ctx context.Context, tx participantes.Ejecutor, p participantes.Peticion) (any, error) {
	var in eventos.EntradaLanzamiento
	if err := p.LeerEntrada(&in); err != nil {
		return nil, err
	}
	c := in.CriteriosAfiliados
	if c.SegmentoAudiencia == "" {
		// The legacy BFF command carries the segment at the top level.
		var legado struct {
			SegmentoAudiencia string `json:"segmento_audiencia"`
		}
		if err := p.LeerEntrada(&legado); err != nil {
			return nil, err
		}
		c.SegmentoAudiencia = legado.SegmentoAudiencia
	}
	maximo := c.Maximo
	switch {
	case maximo == 0:
		maximo = maximoPorDefecto
	case maximo < 0 || maximo > maximoPermitido:
		return nil, participantes.Rechazar(fmt.Sprintf("criterios_afiliados.maximo %d fuera de 1..%d", maximo, maximoPermitido))
	}
	where := []string{"activo = 1", "seguidores >= ?"}
	args := []any{c.MinSeguidores}
	if c.SegmentoAudiencia != "" {
		where, args = append(where, "segmento = ?"), append(args, c.SegmentoAudiencia)
	}
	if len(c.Categorias) > 0 {
		where = append(where, "categoria IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(c.Categorias)), ", ")+")")
		for _, cat := range c.Categorias {
			args = append(args, cat)
		}
	}
	filas, err := tx.QueryContext(ctx, "SELECT id_afiliado, nombre, segmento, categoria, seguidores FROM afiliados WHERE "+
		strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY seguidores DESC, id_afiliado LIMIT %d", maximo), args...)
	if err != nil {
		return nil, fmt.Errorf("buscar afiliados elegibles: %w", err)
	}
	var salida salidaSolicitar
	for filas.Next() {
		var a afiliado
		if err := filas.Scan(&a.ID, &a.Nombre, &a.Segmento, &a.Categoria, &a.Seguidores); err != nil {
			filas.Close()
			return nil, fmt.Errorf("buscar afiliados elegibles: %w", err)
		}
		salida.Afiliados = append(salida.Afiliados, a)
	}
	err = filas.Err()
	filas.Close()
	if err != nil {
		return nil, fmt.Errorf("buscar afiliados elegibles: %w", err)
	}
	if len(salida.Afiliados) == 0 {
		return nil, participantes.Rechazar(fmt.Sprintf("no hay afiliados elegibles (segmento %q, categorías %v, mínimo %d seguidores)",
			c.SegmentoAudiencia, c.Categorias, c.MinSeguidores))
	}
	// One INSERT for every reservation (at most maximoPermitido rows).
	args = make([]any, 0, len(salida.Afiliados)*8)
	for _, a := range salida.Afiliados {
		detalle, err := participantes.Detalle(map[string]any{"nombre": a.Nombre, "campania": in.Nombre, "seguidores": a.Seguidores})
		if err != nil {
			return nil, err
		}
		args = append(args, p.SagaID, p.Paso, a.ID, in.CampaniaID, reservado, detalle, participantes.Momento(p.Ahora), participantes.Momento(p.Ahora))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO reservas_afiliados
		(saga_id, paso, id_afiliado, campania_id, estado, detalle, creado_en, actualizado_en)
		VALUES `+sqldialecto.Filas(len(salida.Afiliados), "(?, ?, ?, ?, ?, ?, ?, ?)"), args...); err != nil {
		return nil, fmt.Errorf("reservar %d afiliados: %w", len(salida.Afiliados), err)
	}
	salida.AfiliadosReservados = len(salida.Afiliados)
	return salida, nil
}
