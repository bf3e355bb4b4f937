// Package topologia is what the product needs on the broker, stated once:
// every topic with its schema, and per process the permissions its role
// needs. The operator's provisioning step (coordinador -preparar) creates it
// with an admin role (Preparar); at start every process checks, with its own
// role, the part it uses (Comprobar) and creates nothing.
package topologia

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
)

// Coordinador is the component name of the coordinator; participants are
// named by their service.
const Coordinador = "coordinador"

// The actions a role may be granted on a topic.
const (
	Producir = "produce"
	Consumir = "consume"
)

// ErrNoPreparado is returned by Comprobar when the broker lacks part of the
// topology: a topic, a schema or a permission that the provisioning step
// sets up.
var ErrNoPreparado = errors.New("topología no preparada")

// Topico is one topic of the plan.
type Topico struct {
	Nombre string
	// Esquema is the Avro schema registered for it ("" = none: dead-letter
	// topics carry whatever failed to decode; legacy topics' schemas belong
	// to their producers).
	Esquema string
	// Ajeno marks a topic outside our namespace (the legacy ones): created
	// when missing, its schema left to its owner.
	Ajeno bool
	// Particiones is the topic's partition count; 0 = a non-partitioned
	// topic.
	Particiones int
}

// Permiso is what one component does on one topic.
type Permiso struct {
	Componente string // Coordinador or a participant service
	Topico     string
	Acciones   []string // Producir, Consumir
	// Suscripcion is the subscription the component consumes with ("" when
	// it reads without one or only produces).
	Suscripcion string
}

// Plan is the whole topology: topics, schemas and permissions.
type Plan struct {
	Topologia eventos.Topologia
	Topicos   []Topico
	Permisos  []Permiso
}

// Opciones describe the deployment a plan is for.
type Opciones struct {
	Topologia eventos.Topologia
	// Servicios are the participant services the flows use.
	Servicios []string
	// Legado are the legacy topics the bridge consumes (none when the
	// bridge is off).
	Legado []string
	// Particiones is SAGAS_PULSAR_PARTITIONS: above 1, the command, reply
	// and event topics are partitioned topics of that many partitions; 0 or
	// 1, non-partitioned topics. Dead-letter and legacy topics are never
	// partitioned.
	Particiones int
}

// ErrParticiones is returned by Preparar and Comprobar when a topic exists
// with another partitioning than the plan's (a non-partitioned topic where a
// partitioned one is planned, or another count). Pulsar cannot turn a
// non-partitioned topic into a partitioned one in place: see
// docs/production.md, Partitioned topics.
var ErrParticiones = errors.New("particiones distintas de las configuradas")

// SuscripcionCoordinador is the coordinator's Failover subscription on the
// reply topic; SuscripcionPuente its Shared one on the legacy topics.
const (
	SuscripcionCoordinador = "coordinador"
	SuscripcionPuente      = "coordinador-puente"
)

// SuscripcionParticipante is a participant's subscription on its command topic.
func SuscripcionParticipante(servicio string) string { return "participante-" + servicio }

// Nuevo returns the plan of a deployment.
func Nuevo(o Opciones) Plan {
	t := o.Topologia
	p := Plan{Topologia: t}
	particiones := 0
	if o.Particiones > 1 {
		particiones = o.Particiones
	}
	comando, respuesta, evento := esquemas.MustAvro(esquemas.ComandoSaga), esquemas.MustAvro(esquemas.RespuestaSaga), esquemas.MustAvro(esquemas.EventoSaga)
	p.Topicos = append(p.Topicos,
		Topico{Nombre: t.Respuestas(), Esquema: respuesta, Particiones: particiones},
		Topico{Nombre: eventos.DLQ(t.Respuestas())},
		Topico{Nombre: t.Eventos(), Esquema: evento, Particiones: particiones},
	)
	p.Permisos = append(p.Permisos,
		Permiso{Componente: Coordinador, Topico: t.Respuestas(), Acciones: []string{Consumir}, Suscripcion: SuscripcionCoordinador},
		Permiso{Componente: Coordinador, Topico: eventos.DLQ(t.Respuestas()), Acciones: []string{Producir}},
		// The coordinator publishes outcomes and reads them back (no subscription) to answer waiting HTTP calls.
		Permiso{Componente: Coordinador, Topico: t.Eventos(), Acciones: []string{Producir, Consumir}},
	)
	servicios := slices.Clone(o.Servicios)
	slices.Sort(servicios)
	for _, s := range slices.Compact(servicios) {
		p.Topicos = append(p.Topicos, Topico{Nombre: t.Comandos(s), Esquema: comando, Particiones: particiones}, Topico{Nombre: eventos.DLQ(t.Comandos(s))})
		p.Permisos = append(p.Permisos,
			Permiso{Componente: Coordinador, Topico: t.Comandos(s), Acciones: []string{Producir}},
			Permiso{Componente: s, Topico: t.Comandos(s), Acciones: []string{Consumir}, Suscripcion: SuscripcionParticipante(s)},
			Permiso{Componente: s, Topico: eventos.DLQ(t.Comandos(s)), Acciones: []string{Producir}},
			Permiso{Componente: s, Topico: t.Respuestas(), Acciones: []string{Producir}},
		)
	}
	for _, l := range o.Legado {
		p.Topicos = append(p.Topicos, Topico{Nombre: l, Ajeno: true}, Topico{Nombre: eventos.DLQ(l), Ajeno: true})
		p.Permisos = append(p.Permisos,
			Permiso{Componente: Coordinador, Topico: l, Acciones: []string{Consumir}, Suscripcion: SuscripcionPuente},
			Permiso{Componente: Coordinador, Topico: eventos.DLQ(l), Acciones: []string{Producir}},
		)
	}
	return p
}

// Componentes lists the plan's components, the coordinator first.
func (p Plan) Componentes() []string {
	out := []string{Coordinador}
	for _, q := range p.Permisos {
		if !slices.Contains(out, q.Componente) {
			out = append(out, q.Componente)
		}
	}
	return out
}

// De returns the permissions of one component.
func (p Plan) De(componente string) []Permiso {
	var out []Permiso
	for _, q := range p.Permisos {
		if q.Componente == componente {
			out = append(out, q)
		}
	}
	return out
}

// Esquema returns the schema of a topic of the plan ("" when it has none).
func (p Plan) Esquema(topico string) string {
	return p.topico(topico).Esquema
}

func (p Plan) topico(nombre string) Topico {
	for _, t := range p.Topicos {
		if t.Nombre == nombre {
			return t
		}
	}
	return Topico{Nombre: nombre}
}

// describir names a partitioning for the operator.
func describir(particiones int) string {
	if particiones == 0 {
		return "no particionado"
	}
	return fmt.Sprintf("particionado en %d", particiones)
}

// comprobarParticiones checks that the broker's topic has the plan's
// partitioning; a difference is ErrParticiones, naming both and what to do.
func comprobarParticiones(ctx context.Context, a *bus.Admin, tp Topico) error {
	n, err := a.Particiones(ctx, tp.Nombre)
	if err != nil {
		return err
	}
	if n == tp.Particiones {
		return nil
	}
	return fmt.Errorf("%w: %s es %s en el broker y la configuración pide %s (SAGAS_PULSAR_PARTITIONS=%d): "+
		"ponga SAGAS_PULSAR_PARTITIONS=%d en todos los procesos, o migre el tópico según docs/production.md (Partitioned topics: "+
		"drenar, borrar y volver a ejecutar coordinador -preparar; Pulsar no convierte un tópico en otro sin borrarlo)",
		ErrParticiones, tp.Nombre, describir(n), describir(tp.Particiones), max(tp.Particiones, 1), max(n, 1))
}

// Roles maps each component to the broker role it authenticates as.
type Roles map[string]string

// Rol returns the role of a component: its entry, or its own name.
func (r Roles) Rol(componente string) string {
	if v := r[componente]; v != "" {
		return v
	}
	return componente
}

// LeerRoles parses "componente=rol,componente=rol" (SAGAS_PULSAR_ROLES).
func LeerRoles(s string) (Roles, error) {
	r := Roles{}
	for _, par := range strings.Split(s, ",") {
		par = strings.TrimSpace(par)
		if par == "" {
			continue
		}
		c, rol, ok := strings.Cut(par, "=")
		c, rol = strings.TrimSpace(c), strings.TrimSpace(rol)
		if !ok || c == "" || rol == "" || strings.ContainsAny(rol, "/ ") {
			return nil, fmt.Errorf("%q: se espera componente=rol (p. ej. coordinador=sagas-coordinador)", par)
		}
		r[c] = rol
	}
	return r, nil
}

// Informe says what one Preparar did, for the operator.
type Informe struct {
	Topicos  int
	Esquemas int
	Permisos int
}

// Preparar creates the plan on the broker as an admin role: tenant and
// namespace with policies pol, every topic (partitioned as the plan says),
// every schema, and each component's permissions granted to its role.
// Idempotent: run it again after an upgrade (new schemas are checked by the
// broker against the namespace's BACKWARD_TRANSITIVE strategy) or a change
// of roles. A topic that already exists with another partitioning is left
// as it is and reported (ErrParticiones).
func Preparar(ctx context.Context, a *bus.Admin, p Plan, pol bus.Politicas, roles Roles) (Informe, error) {
	var inf Informe
	t := p.Topologia
	if err := a.PrepararNamespace(ctx, t.Tenant, t.Namespace, pol); err != nil {
		return inf, err
	}
	for _, tp := range p.Topicos {
		crear := func() error { return a.CrearTopico(ctx, tp.Nombre) }
		if tp.Particiones > 0 {
			crear = func() error { return a.CrearTopicoParticionado(ctx, tp.Nombre, tp.Particiones) }
		}
		if err := crear(); err != nil {
			return inf, err
		}
		if err := comprobarParticiones(ctx, a, tp); err != nil {
			return inf, err
		}
		inf.Topicos++
		if tp.Esquema == "" {
			continue
		}
		if err := a.RegistrarEsquema(ctx, tp.Nombre, tp.Esquema); err != nil {
			return inf, err
		}
		inf.Esquemas++
	}
	// One grant per role and topic, with every action the role's components need there.
	type clave struct{ rol, topico string }
	acciones := map[clave][]string{}
	var orden []clave
	for _, q := range p.Permisos {
		k := clave{roles.Rol(q.Componente), q.Topico}
		if _, ok := acciones[k]; !ok {
			orden = append(orden, k)
		}
		for _, ac := range q.Acciones {
			if !slices.Contains(acciones[k], ac) {
				acciones[k] = append(acciones[k], ac)
			}
		}
	}
	for _, k := range orden {
		if err := a.ConcederPermiso(ctx, k.topico, k.rol, acciones[k]...); err != nil {
			return inf, err
		}
		inf.Permisos++
	}
	return inf, nil
}

// Comprobar checks, as the running component's own role, that the broker
// holds what the component uses: every schema registered, every topic it
// produces on present and open to it, every topic it consumes open to it,
// every topic partitioned as the plan says (ErrParticiones otherwise).
// It creates nothing (a producer it opens to check is closed again) and reports every problem at once, each naming the topic, the
// role and what to do; each error wraps ErrNoPreparado and the broker's
// cause (bus.ErrAutorizacion, bus.ErrTopicoInexistente).
func Comprobar(ctx context.Context, a *bus.Admin, c pulsar.Client, p Plan, componente string, s bus.Seguridad) error {
	var errs []error
	for _, q := range p.De(componente) {
		if err := comprobarPermiso(ctx, a, c, p, q, s); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// Provisioning fixes what is missing, never a partitioning that differs
	// (each of those errors says what does).
	consejo := ""
	if slices.ContainsFunc(errs, func(err error) bool { return !errors.Is(err, ErrParticiones) }) {
		consejo = " (ejecute `coordinador -preparar` con un rol administrador, o conceda los permisos de docs/production.md)"
	}
	return fmt.Errorf("el broker no tiene lo que %s necesita%s:\n%w", componente, consejo, errors.Join(errs...))
}

func comprobarPermiso(ctx context.Context, a *bus.Admin, c pulsar.Client, p Plan, q Permiso, s bus.Seguridad) error {
	rol := s.Rol()
	if rol == "" {
		rol = "(sin autenticación)"
	}
	accion := strings.Join(q.Acciones, "+")
	causa := func(err error) error {
		switch {
		case errors.Is(err, bus.ErrAutorizacion):
			// The broker's text only repeats the operation's internal name.
			return fmt.Errorf("%w: el rol %s no tiene permiso %s sobre %s (%w)", ErrNoPreparado, rol, accion, q.Topico, bus.ErrAutorizacion)
		case errors.Is(err, bus.ErrTopicoInexistente):
			return fmt.Errorf("%w: %s no existe (%w)", ErrNoPreparado, q.Topico, bus.ErrTopicoInexistente)
		}
		return fmt.Errorf("comprobar %s sobre %s: %w", accion, q.Topico, err)
	}
	esquema := p.Esquema(q.Topico)
	if esquema != "" {
		// Any role that may produce or consume on the topic may ask.
		v, err := a.VersionEsquema(ctx, q.Topico, esquema)
		if err != nil {
			return causa(err)
		}
		if v < 0 {
			return fmt.Errorf("%w: %s no tiene registrado el esquema de este binario", ErrNoPreparado, q.Topico)
		}
	}
	var err error
	if slices.Contains(q.Acciones, Producir) {
		var prod pulsar.Producer
		prod, err = bus.NuevoProductor(c, q.Topico, "", esquema, bus.LotesPorClave)
		if err == nil {
			prod.Close()
		}
	} else {
		// Listing the subscriptions needs the consume permission and
		// leaves nothing behind (a reader opened and closed at once makes
		// the client log errors).
		_, err = a.Suscripciones(ctx, q.Topico)
	}
	if err != nil {
		return causa(err)
	}
	if err := comprobarParticiones(ctx, a, p.topico(q.Topico)); err != nil {
		if errors.Is(err, ErrParticiones) {
			return err
		}
		return causa(err)
	}
	return nil
}
