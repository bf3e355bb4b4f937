package topologia_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/topologia"
)

var servicios = []string{"marca", "influencer"}

func TestElPlanDaACadaComponenteSoloLoQueUsa(t *testing.T) {
	topo := eventos.Topologia{Tenant: "a", Namespace: "b"}
	legado := "persistent://public/default/eventos-campania"
	p := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: servicios, Legado: []string{legado}})

	if got := p.Componentes(); !slices.Equal(got, []string{"coordinador", "influencer", "marca"}) {
		t.Errorf("Componentes = %v", got)
	}
	permisos := func(c string) map[string][]string {
		m := map[string][]string{}
		for _, q := range p.De(c) {
			m[q.Topico] = q.Acciones
		}
		return m
	}
	marca := permisos("marca")
	want := map[string][]string{
		topo.Comandos("marca"):              {topologia.Consumir},
		eventos.DLQ(topo.Comandos("marca")): {topologia.Producir},
		topo.Respuestas():                   {topologia.Producir},
	}
	if len(marca) != len(want) {
		t.Errorf("marca: %v, want %v", marca, want)
	}
	for tp, acc := range want {
		if !slices.Equal(marca[tp], acc) {
			t.Errorf("marca on %s: %v, want %v", tp, marca[tp], acc)
		}
	}
	coord := permisos("coordinador")
	for _, tp := range []string{topo.Comandos("marca"), topo.Comandos("influencer"), topo.Eventos(), eventos.DLQ(legado), eventos.DLQ(topo.Respuestas())} {
		if !slices.Contains(coord[tp], topologia.Producir) {
			t.Errorf("coordinador may not produce on %s: %v", tp, coord)
		}
	}
	for _, tp := range []string{topo.Respuestas(), legado, topo.Eventos()} {
		if !slices.Contains(coord[tp], topologia.Consumir) {
			t.Errorf("coordinador may not consume %s: %v", tp, coord)
		}
	}
	if _, ok := coord[topo.Comandos("marca")]; ok && slices.Contains(coord[topo.Comandos("marca")], topologia.Consumir) {
		t.Errorf("coordinador consumes a command topic: %v", coord)
	}
	// Every topic a permission names is in the plan, with its schema where it has one.
	for _, q := range p.Permisos {
		if !slices.ContainsFunc(p.Topicos, func(tp topologia.Topico) bool { return tp.Nombre == q.Topico }) {
			t.Errorf("%s is granted but not in the plan's topics", q.Topico)
		}
	}
	for _, tp := range []string{topo.Comandos("marca"), topo.Respuestas(), topo.Eventos()} {
		if p.Esquema(tp) == "" {
			t.Errorf("%s has no schema in the plan", tp)
		}
	}
	if p.Esquema(legado) != "" || p.Esquema(eventos.DLQ(topo.Respuestas())) != "" {
		t.Errorf("legacy and dead-letter topics must carry no schema of ours")
	}
}

func TestLeerRoles(t *testing.T) {
	r, err := topologia.LeerRoles(" coordinador = sagas-coord , marca=sagas-marca,")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rol("coordinador") != "sagas-coord" || r.Rol("marca") != "sagas-marca" || r.Rol("tracking") != "tracking" {
		t.Errorf("roles = %v", r)
	}
	for _, mal := range []string{"coordinador", "=x", "marca=", "marca=a/b"} {
		if _, err := topologia.LeerRoles(mal); err == nil {
			t.Errorf("LeerRoles(%q) accepted", mal)
		}
	}
}

func aleatorio() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestPrepararComoAdminYComprobarConCadaRolEnElBrokerSeguro provisions a
// namespace as the super-user and checks each component with its own role:
// what it needs is there, and what another component needs is refused with
// a message naming the role and the topic.
func TestPrepararComoAdminYComprobarConCadaRolEnElBrokerSeguro(t *testing.T) {
	b := integracion.PulsarSeguro(t)
	como := func(rol string) bus.Seguridad {
		return bus.Seguridad{Auth: bus.AuthToken, TokenFile: filepath.Join(b.Dir, rol+".token"), TrustCertsFile: filepath.Join(b.Dir, "ca.pem")}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	topo := eventos.Topologia{Tenant: "alpespartner", Namespace: "top" + aleatorio()}
	legado := "persistent://alpespartner/" + topo.Namespace + "/legado-campania"
	// Partitioned, so each role's check also reads the partition metadata.
	plan := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: servicios, Legado: []string{legado}, Particiones: 2})

	conectar := func(rol string) (*bus.Admin, func()) {
		s := como(rol)
		a, err := bus.NuevoAdminSeguro(b.AdminURL, s)
		if err != nil {
			t.Fatal(err)
		}
		c, err := bus.Conectar(b.URL, slog.New(slog.NewTextHandler(io.Discard, nil)), bus.ConSeguridad(s))
		if err != nil {
			t.Fatal(err)
		}
		return a, c.Close
	}
	comprobar := func(rol, componente string) error {
		a, cerrar := conectar(rol)
		defer cerrar()
		c, err := bus.Conectar(b.URL, slog.New(slog.NewTextHandler(io.Discard, nil)), bus.ConSeguridad(como(rol)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return topologia.Comprobar(ctx, a, c, plan, componente, como(rol))
	}

	// Before provisioning: refused, naming what is missing.
	err := comprobar("marca", "marca")
	if !errors.Is(err, topologia.ErrNoPreparado) || !strings.Contains(err.Error(), topo.Comandos("marca")) {
		t.Fatalf("before -preparar: %v", err)
	}

	admin, err := bus.NuevoAdminSeguro(b.AdminURL, como("admin"))
	if err != nil {
		t.Fatal(err)
	}
	inf, err := topologia.Preparar(ctx, admin, plan, bus.PoliticasPorDefecto, nil)
	if err != nil {
		t.Fatalf("Preparar as admin: %v", err)
	}
	if inf.Topicos != len(plan.Topicos) || inf.Esquemas != 4 || inf.Permisos == 0 {
		t.Errorf("informe = %+v (plan has %d topics)", inf, len(plan.Topicos))
	}
	// Twice is fine: it is the step an operator re-runs after an upgrade.
	if _, err := topologia.Preparar(ctx, admin, plan, bus.PoliticasPorDefecto, nil); err != nil {
		t.Fatalf("second Preparar: %v", err)
	}

	for _, c := range plan.Componentes() {
		if err := comprobar(c, c); err != nil {
			t.Errorf("%s as its own role: %v", c, err)
		}
	}
	// A participant's role is refused another service's command topic, by name.
	err = comprobar("marca", "influencer")
	if !errors.Is(err, topologia.ErrNoPreparado) || !errors.Is(err, bus.ErrAutorizacion) {
		t.Fatalf("marca checking influencer's part: %v", err)
	}
	for _, debe := range []string{"marca", topo.Comandos("influencer"), "consume"} {
		if !strings.Contains(err.Error(), debe) {
			t.Errorf("the refusal does not name %q:\n%v", debe, err)
		}
	}
	// A provisioning run as a role that is not an admin is refused, naming the cause.
	noAdmin, _ := conectar("marca")
	if _, err := topologia.Preparar(ctx, noAdmin, plan, bus.PoliticasPorDefecto, nil); !errors.Is(err, bus.ErrAutorizacion) {
		t.Errorf("Preparar as marca: %v, want bus.ErrAutorizacion", err)
	}
}

// TestRolesConfiguradosRecibenLosPermisos grants each component's
// permissions to the role SAGAS_PULSAR_ROLES names, not to the component's
// own name.
func TestRolesConfiguradosRecibenLosPermisos(t *testing.T) {
	b := integracion.PulsarSeguro(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	seg := func(rol string) bus.Seguridad {
		return bus.Seguridad{Auth: bus.AuthToken, TokenFile: filepath.Join(b.Dir, rol+".token"), TrustCertsFile: filepath.Join(b.Dir, "ca.pem")}
	}
	topo := eventos.Topologia{Tenant: "alpespartner", Namespace: "rol" + aleatorio()}
	plan := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: []string{"marca"}})
	admin, err := bus.NuevoAdminSeguro(b.AdminURL, seg("admin"))
	if err != nil {
		t.Fatal(err)
	}
	// The marca service runs as role "tracking" here.
	if _, err := topologia.Preparar(ctx, admin, plan, bus.PoliticasPorDefecto, topologia.Roles{"marca": "tracking"}); err != nil {
		t.Fatal(err)
	}
	c, err := bus.Conectar(b.URL, slog.New(slog.NewTextHandler(io.Discard, nil)), bus.ConSeguridad(seg("tracking")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, _ := bus.NuevoAdminSeguro(b.AdminURL, seg("tracking"))
	if err := topologia.Comprobar(ctx, a, c, plan, "marca", seg("tracking")); err != nil {
		t.Errorf("marca as role tracking: %v", err)
	}
	cm, err := bus.Conectar(b.URL, slog.New(slog.NewTextHandler(io.Discard, nil)), bus.ConSeguridad(seg("marca")))
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	am, _ := bus.NuevoAdminSeguro(b.AdminURL, seg("marca"))
	if err := topologia.Comprobar(ctx, am, cm, plan, "marca", seg("marca")); !errors.Is(err, bus.ErrAutorizacion) {
		t.Errorf("role marca, granted nothing here: %v, want bus.ErrAutorizacion", err)
	}
}

// TestPrepararYComprobarEnElBrokerAbierto: the zero-setup broker (no
// authentication) takes the same step.
func TestPrepararYComprobarEnElBrokerAbierto(t *testing.T) {
	purl, aurl := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	topo := eventos.Topologia{Tenant: "alpespartner", Namespace: "abi" + aleatorio()}
	plan := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: servicios})
	a := bus.NuevoAdmin(aurl)
	c, err := bus.Conectar(purl, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := topologia.Comprobar(ctx, a, c, plan, "coordinador", bus.Seguridad{}); !errors.Is(err, topologia.ErrNoPreparado) {
		t.Fatalf("before -preparar: %v", err)
	}
	if _, err := topologia.Preparar(ctx, a, plan, bus.Politicas{Retencion: 2 * time.Hour, RetencionMB: 10}, nil); err != nil {
		t.Fatal(err)
	}
	for _, comp := range plan.Componentes() {
		if err := topologia.Comprobar(ctx, a, c, plan, comp, bus.Seguridad{}); err != nil {
			t.Errorf("%s: %v", comp, err)
		}
	}
}

// TestParticionesSeCreanYSeComprueban provisions with three partitions:
// command, reply and event topics are partitioned, dead-letter topics not,
// and every component's check passes. A deployment whose topics are
// partitioned otherwise than its setting (either way round) is refused by
// Preparar and by Comprobar, naming the topic, what the broker has, what the
// setting asks and where the migration is described.
func TestParticionesSeCreanYSeComprueban(t *testing.T) {
	purl, aurl := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a := bus.NuevoAdmin(aurl)
	c, err := bus.Conectar(purl, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	topo := eventos.Topologia{Tenant: "alpespartner", Namespace: "par" + aleatorio()}
	plan := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: servicios, Particiones: 3})
	if _, err := topologia.Preparar(ctx, a, plan, bus.PoliticasPorDefecto, nil); err != nil {
		t.Fatal(err)
	}
	for tp, want := range map[string]int{
		topo.Comandos("marca"): 3, topo.Respuestas(): 3, topo.Eventos(): 3,
		eventos.DLQ(topo.Comandos("marca")): 0, eventos.DLQ(topo.Respuestas()): 0,
	} {
		if n, err := a.Particiones(ctx, tp); err != nil || n != want {
			t.Errorf("%s: %d partitions (%v), want %d", tp, n, err, want)
		}
	}
	for _, comp := range plan.Componentes() {
		if err := topologia.Comprobar(ctx, a, c, plan, comp, bus.Seguridad{}); err != nil {
			t.Errorf("%s: %v", comp, err)
		}
	}
	if _, err := topologia.Preparar(ctx, a, plan, bus.PoliticasPorDefecto, nil); err != nil {
		t.Errorf("second Preparar: %v", err)
	}

	// The setting says 1 on a deployment provisioned with 3.
	sinParticiones := topologia.Nuevo(topologia.Opciones{Topologia: topo, Servicios: servicios})
	err = topologia.Comprobar(ctx, a, c, sinParticiones, "marca", bus.Seguridad{})
	debeNombrar(t, "Comprobar, 3 on the broker and 1 configured", err, topo.Comandos("marca"), "particionado en 3", "no particionado", "SAGAS_PULSAR_PARTITIONS=3", "docs/production.md")
	if err != nil && strings.Contains(err.Error(), "ejecute `coordinador -preparar`") {
		t.Errorf("re-provisioning does not fix a partitioning, yet the message suggests it:\n%v", err)
	}
	_, err = topologia.Preparar(ctx, a, sinParticiones, bus.PoliticasPorDefecto, nil)
	debeNombrar(t, "Preparar, 3 on the broker and 1 configured", err, "particionado en 3", "no particionado")

	// The opposite: a deployment of non-partitioned topics, and 3 configured.
	viejo := eventos.Topologia{Tenant: "alpespartner", Namespace: "par" + aleatorio()}
	if _, err := topologia.Preparar(ctx, a, topologia.Nuevo(topologia.Opciones{Topologia: viejo, Servicios: servicios}), bus.PoliticasPorDefecto, nil); err != nil {
		t.Fatal(err)
	}
	conParticiones := topologia.Nuevo(topologia.Opciones{Topologia: viejo, Servicios: servicios, Particiones: 3})
	err = topologia.Comprobar(ctx, a, c, conParticiones, "coordinador", bus.Seguridad{})
	debeNombrar(t, "Comprobar, non-partitioned on the broker and 3 configured", err, viejo.Respuestas(), "no particionado", "particionado en 3", "SAGAS_PULSAR_PARTITIONS=1")
	_, err = topologia.Preparar(ctx, a, conParticiones, bus.PoliticasPorDefecto, nil)
	debeNombrar(t, "Preparar, non-partitioned on the broker and 3 configured", err, "no particionado", "particionado en 3")
	if n, _ := a.Particiones(ctx, viejo.Respuestas()); n != 0 {
		t.Errorf("Preparar changed the existing topic %s: %d partitions", viejo.Respuestas(), n)
	}
}

// debeNombrar fails unless err is ErrParticiones and names every part.
func debeNombrar(t *testing.T, caso string, err error, partes ...string) {
	t.Helper()
	if !errors.Is(err, topologia.ErrParticiones) {
		t.Errorf("%s: %v, want topologia.ErrParticiones", caso, err)
		return
	}
	for _, p := range partes {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: the message does not name %q:\n%v", caso, p, err)
		}
	}
}
