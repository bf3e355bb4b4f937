package main

import (
	"context"
	"fmt"
	"time"
)

// falla is one fault of the plan: after antes, romper breaks something; it
// stays broken for caida; then reparar brings it back (and waits until it
// is ready).
type falla struct {
	Nombre  string
	Antes   time.Duration
	Caida   time.Duration
	romper  func(ctx context.Context) (string, error)
	reparar func(ctx context.Context) (string, error)
}

// ventana is when one fault held: from the break to the end of the repair.
type ventana struct {
	Falla  string
	Inicio time.Time
	Fin    time.Time
	Err    error // the repair failed
	// ErrRomper is why the fault could not be injected; the run then
	// proves nothing about it and fails.
	ErrRomper error
	// PrimeraTrasFalla and PrimeraTrasReparacion are when the first saga
	// ended (timestamp_fin) after the break and after the repair; zero if
	// none did.
	PrimeraTrasFalla      time.Time
	PrimeraTrasReparacion time.Time
	// UltimaSolapada is when the last saga the fault overlapped (started
	// before the repair, not ended before the break) ended.
	UltimaSolapada time.Time
	// Reanudada is, on the cluster plans, when the first saga ended after
	// the longest stretch without any saga ending that began within
	// margenDetencion of the break (zero if there was none): the time from
	// the fault to the first saga finishing again. Detenida is that stretch.
	Reanudada time.Time
	Detenida  time.Duration
}

// participanteVictima is the participant the plan kills.
const participanteVictima = "marca"

// planDeFallas returns the run's faults, in order: kill -9 of coordinator
// replica 2, kill -9 of a participant, broker restart, MariaDB restart.
func planDeFallas(nombre string, m *mundo) []falla {
	switch nombre {
	case "ninguno":
		return nil
	case planZombie, planParticion, planCrash, planDesfase, planSolape:
		return planV2(nombre, m)
	case planBrokerCluster, planUnload:
		return planCluster(nombre, m)
	}
	// Waits before each fault and how long it stays broken.
	t := map[string][2]time.Duration{
		"coordinador":  {20 * time.Second, 15 * time.Second},
		"participante": {15 * time.Second, 10 * time.Second},
		"broker":       {15 * time.Second, 5 * time.Second},
		"db":           {20 * time.Second, 5 * time.Second},
	}
	if nombre == "corto" {
		t = map[string][2]time.Duration{
			"coordinador":  {4 * time.Second, 4 * time.Second},
			"participante": {3 * time.Second, 3 * time.Second},
			"broker":       {3 * time.Second, time.Second},
			"db":           {4 * time.Second, time.Second},
		}
	}
	coord := m.coordinadores[1]
	part := m.participantes[participanteVictima]
	matar := func(p *proceso) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			pid, err := m.Matar(p)
			return fmt.Sprintf("kill -9 %s (pid %d)", p.nombre, pid), err
		}
	}
	reiniciar := func(p *proceso) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			err := m.arrancar(ctx, p)
			return fmt.Sprintf("%s reiniciado y listo (pid %d)", p.nombre, p.Pid()), err
		}
	}
	script := func(s, accion, hecho string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			return hecho, m.script(ctx, s, accion)
		}
	}
	return []falla{
		{Nombre: "kill -9 de la réplica " + coord.nombre, Antes: t["coordinador"][0], Caida: t["coordinador"][1],
			romper: matar(coord), reparar: reiniciar(coord)},
		{Nombre: "kill -9 del participante " + part.nombre, Antes: t["participante"][0], Caida: t["participante"][1],
			romper: matar(part), reparar: reiniciar(part)},
		{Nombre: "reinicio del broker (pulsar.sh stop; start, mismos datos)", Antes: t["broker"][0], Caida: t["broker"][1],
			romper:  script("pulsar.sh", "stop", "broker detenido (pulsar.sh stop)"),
			reparar: script("pulsar.sh", "start", "broker iniciado y listo (pulsar.sh start)")},
		{Nombre: "reinicio de MariaDB (mariadb.sh stop; start, mismos datos)", Antes: t["db"][0], Caida: t["db"][1],
			romper:  script("mariadb.sh", "stop", "MariaDB detenida (mariadb.sh stop)"),
			reparar: script("mariadb.sh", "start", "MariaDB iniciada y lista (mariadb.sh start)")},
	}
}

// duracionEstimada is how long the plan should take: its waits plus the
// start-up times measured when the world was prepared.
func duracionEstimada(plan []falla, m *mundo) time.Duration {
	var d time.Duration
	for _, f := range plan {
		d += f.Antes + f.Caida + 3*time.Second
	}
	if len(plan) > 0 {
		// A first start on a busy machine can take minutes; a restart of
		// the same broker usually takes about a minute.
		d += min(m.tiempoBroker, 75*time.Second) + m.tiempoDB
		// Keep starting sagas for a while after the last repair: the
		// system must also take new work once everything is back.
		d += 10 * time.Second
	}
	return d
}

// imprimirPlan prints the plan before it runs.
func imprimirPlan(b *bitacora, plan []falla) {
	if len(plan) == 0 {
		b.Printf("plan de fallas: ninguno")
		return
	}
	b.Printf("plan de fallas (%d):", len(plan))
	for i, f := range plan {
		b.Printf("  %d. tras %s: %s; reparación tras %s caído", i+1, f.Antes, f.Nombre, f.Caida)
	}
}

// correrPlan runs the faults in order and returns their windows. A repair
// that fails is retried once; a fault that cannot be repaired ends the plan.
func correrPlan(ctx context.Context, b *bitacora, plan []falla) []ventana {
	var vs []ventana
	for i, f := range plan {
		select {
		case <-time.After(f.Antes):
		case <-ctx.Done():
			return vs
		}
		v := ventana{Falla: f.Nombre, Inicio: time.Now()}
		que, err := f.romper(ctx)
		b.Printf("FALLA %d/%d: %s: %s", i+1, len(plan), f.Nombre, que)
		if err != nil {
			v.ErrRomper = err
			b.Printf("  FALLA NO INYECTADA: %v", err)
		}
		select {
		case <-time.After(f.Caida):
		case <-ctx.Done():
			return append(vs, v)
		}
		que, err = f.reparar(ctx)
		if err != nil && ctx.Err() == nil {
			b.Printf("  reparación falló, se reintenta: %v", primeraLinea(err.Error()))
			que, err = f.reparar(ctx)
		}
		v.Fin, v.Err = time.Now(), err
		vs = append(vs, v)
		if err != nil {
			b.Printf("REPARACIÓN %d/%d FALLIDA: %v", i+1, len(plan), err)
			return vs
		}
		b.Printf("reparado %d/%d: %s (%.1fs desde la falla)", i+1, len(plan), que, v.Fin.Sub(v.Inicio).Seconds())
	}
	return vs
}
