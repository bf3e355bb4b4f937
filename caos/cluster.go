package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alpespartner/sagas/eventos"
)

// The cluster plans (-plan): the world runs on the multi-broker cluster of
// scripts/cluster.sh with partitioned topics instead of its own standalone
// broker.
const (
	// planBrokerCluster kills one of the two brokers with kill -9 while the
	// load runs, keeps it down past the metadata session (its bundles move
	// to the other broker), then restarts it.
	planBrokerCluster = "broker-cluster"
	// planUnload unloads the namespace's bundles twice while the load runs:
	// the whole namespace, then every bundle moved to the broker that did
	// not own it.
	planUnload = "unload"
)

// esPlanCluster reports whether plan needs the cluster.
func esPlanCluster(plan string) bool { return plan == planBrokerCluster || plan == planUnload }

// The cluster's ports, as scripts/cluster.sh sets them by default
// (CLUSTER_BROKER_PORTS, CLUSTER_BROKER_HTTP_PORTS).
var (
	puertosBrokerCluster     = [2]int{6680, 6681}
	puertosBrokerHTTPCluster = [2]int{8090, 8091}
)

// caidaBrokerCluster is how long the killed broker stays down: past the
// cluster's metadata session (CLUSTER_SESSION_TIMEOUT_MS, 30 s), so its
// bundles move to the other broker while it is dead.
const caidaBrokerCluster = 45 * time.Second

// idBroker is broker n's id in the cluster (its advertised address and web
// port), as destinationBroker and the lookups name it.
func idBroker(n int) string { return fmt.Sprintf("127.0.0.1:%d", puertosBrokerHTTPCluster[n-1]) }

// otroBroker is the broker that is not n.
func otroBroker(n int) int { return 3 - n }

// planCluster returns the faults of a cluster plan.
func planCluster(nombre string, m *mundo) []falla {
	switch nombre {
	case planBrokerCluster:
		return []falla{m.fallaMatarBroker(m.cfg.BrokerVictima, 20*time.Second, caidaBrokerCluster)}
	case planUnload:
		return []falla{
			m.fallaUnload("unload del namespace (todos sus bundles)", 20*time.Second, m.unloadNamespace),
			m.fallaUnload("unload de cada bundle hacia el broker que no lo tenía", 15*time.Second, m.moverBundles),
		}
	}
	return nil
}

// fallaMatarBroker is kill -9 of broker n (scripts/cluster.sh kill-broker),
// restarted after caida (restart-broker). It prints who owned the world's
// partitions before, and how long the lookups took to name only the
// surviving broker (the bundles' failover).
func (m *mundo) fallaMatarBroker(n int, antes, caida time.Duration) falla {
	var migracion chan string
	return falla{
		Nombre: fmt.Sprintf("kill -9 del broker %d (cluster.sh kill-broker %d; restart-broker tras %s)", n, n, caida),
		Antes:  antes, Caida: caida,
		romper: func(ctx context.Context) (string, error) {
			antes, err := m.duenos(ctx)
			if err != nil {
				return "", err
			}
			if contarDe(antes, n) == 0 {
				// Nothing to fail over: give the victim half the bundles first.
				if err := m.moverBundles(ctx); err != nil {
					return "", err
				}
				if antes, err = m.duenos(ctx); err != nil {
					return "", err
				}
			}
			if err := m.scriptCluster(ctx, "kill-broker", fmt.Sprint(n)); err != nil {
				return "", err
			}
			m.mu.Lock()
			m.brokerCaido = n
			m.mu.Unlock()
			t0 := time.Now()
			migracion = make(chan string, 1)
			go func() { migracion <- m.esperarSinBroker(m.vida, n, t0) }()
			return fmt.Sprintf("kill -9 del broker %d; antes poseía %d de %d particiones del mundo (%s)", n, contarDe(antes, n), len(antes), resumenDuenos(antes)), nil
		},
		reparar: func(ctx context.Context) (string, error) {
			que := "(sin medida de la migración)"
			if migracion != nil {
				select {
				case que = <-migracion:
				case <-time.After(5 * time.Second):
					que = "las particiones aún no se habían movido al broker vivo al reiniciar el caído"
				}
			}
			if err := m.scriptCluster(ctx, "restart-broker", fmt.Sprint(n)); err != nil {
				return que, err
			}
			m.mu.Lock()
			m.brokerCaido = 0
			m.mu.Unlock()
			d, err := m.duenos(ctx)
			if err != nil {
				return que, err
			}
			return fmt.Sprintf("%s; broker %d reiniciado y sirviendo (cluster.sh restart-broker %d); dueños ahora: %s", que, n, n, resumenDuenos(d)), nil
		},
	}
}

// esperarSinBroker polls the lookups until no partition of the world is
// owned by broker n any more, and says how long that took from t0.
func (m *mundo) esperarSinBroker(ctx context.Context, n int, t0 time.Time) string {
	for ctx.Err() == nil {
		d, err := m.duenos(ctx)
		if err == nil && contarDe(d, n) == 0 && len(d) > 0 {
			txt := fmt.Sprintf("las %d particiones del mundo pasaron al broker %d %.1fs tras el kill -9 (%s)", len(d), otroBroker(n), time.Since(t0).Seconds(), resumenDuenos(d))
			m.b.Printf("  %s", txt)
			return txt
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return "interrumpido antes de que las particiones se movieran"
}

// fallaUnload runs unload (which unloads bundles) as the break; the repair
// waits until every partition of the world is served again and says how
// long that took and who owns them now.
func (m *mundo) fallaUnload(nombre string, antes time.Duration, unload func(context.Context) error) falla {
	var t0 time.Time
	var previos map[string]int
	return falla{
		Nombre: nombre, Antes: antes,
		romper: func(ctx context.Context) (string, error) {
			d, err := m.duenos(ctx)
			if err != nil {
				return "", err
			}
			previos = d
			t0 = time.Now()
			if err := unload(ctx); err != nil {
				return "", err
			}
			return fmt.Sprintf("hecho en %.1fs; dueños antes: %s", time.Since(t0).Seconds(), resumenDuenos(d)), nil
		},
		reparar: func(ctx context.Context) (string, error) {
			d, err := m.duenos(ctx)
			if err != nil {
				return "", err
			}
			movidas := 0
			for p, b := range d {
				if previos[p] != b {
					movidas++
				}
			}
			return fmt.Sprintf("todas las particiones con dueño %.1fs tras el unload; %d de %d cambiaron de broker; dueños: %s",
				time.Since(t0).Seconds(), movidas, len(d), resumenDuenos(d)), nil
		},
	}
}

// --- the cluster's admin API ---------------------------------------------------

// clienteAdmin is caos's HTTP client for the cluster's admin and lookup API.
var clienteAdmin = &http.Client{Timeout: 15 * time.Second}

// adminCluster calls the admin REST API of a live broker (the other broker
// than a dead one) and decodes its JSON answer into out (nil: ignore it).
func (m *mundo) adminCluster(ctx context.Context, metodo, ruta string, out any) error {
	m.mu.Lock()
	caido := m.brokerCaido
	m.mu.Unlock()
	var errs []error
	for n := 1; n <= 2; n++ {
		if n == caido {
			continue
		}
		u := fmt.Sprintf("http://%s%s", idBroker(n), ruta)
		req, err := http.NewRequestWithContext(ctx, metodo, u, nil)
		if err != nil {
			return err
		}
		resp, err := clienteAdmin.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			errs = append(errs, fmt.Errorf("%s %s: %s: %s", metodo, u, resp.Status, strings.TrimSpace(string(b))))
			continue
		}
		switch o := out.(type) {
		case nil:
			return nil
		case *[]byte:
			*o = b
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", metodo, u, err)
		}
		return nil
	}
	return errors.Join(errs...)
}

// particionesMundo are the partitions of the world's command, reply and
// event topics, as persistent/<tenant>/<ns>/<topic>-partition-<i> paths.
func (m *mundo) particionesMundo() []string {
	topo := eventos.Topologia{Tenant: tenant, Namespace: m.cfg.Namespace}
	var topicos []string
	for _, s := range nombresServicios() {
		topicos = append(topicos, topo.Comandos(s))
	}
	topicos = append(topicos, topo.Respuestas(), topo.Eventos())
	var ps []string
	for _, t := range topicos {
		ruta := strings.Replace(t, "://", "/", 1)
		for i := range max(m.cfg.Particiones, 1) {
			if m.cfg.Particiones > 1 {
				ps = append(ps, fmt.Sprintf("%s-partition-%d", ruta, i))
			} else {
				ps = append(ps, ruta)
			}
		}
	}
	return ps
}

// duenos looks up every partition of the world and returns which broker
// (1 or 2) serves each. A lookup assigns an owner if none has one, as a
// client's would.
func (m *mundo) duenos(ctx context.Context) (map[string]int, error) {
	ps := m.particionesMundo()
	d := make(map[string]int, len(ps))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r struct {
				BrokerURL string `json:"brokerUrl"`
			}
			if err := m.adminCluster(ctx, http.MethodGet, "/lookup/v2/topic/"+p, &r); err != nil {
				errs[i] = fmt.Errorf("lookup de %s: %w", p, err)
				return
			}
			n := slices.IndexFunc(puertosBrokerCluster[:], func(puerto int) bool { return strings.HasSuffix(r.BrokerURL, fmt.Sprintf(":%d", puerto)) })
			if n < 0 {
				errs[i] = fmt.Errorf("lookup de %s: broker %q no es del cluster", p, r.BrokerURL)
				return
			}
			mu.Lock()
			d[p] = n + 1
			mu.Unlock()
		}()
	}
	wg.Wait()
	return d, errors.Join(errs...)
}

func contarDe(d map[string]int, n int) int {
	c := 0
	for _, b := range d {
		if b == n {
			c++
		}
	}
	return c
}

func resumenDuenos(d map[string]int) string {
	return fmt.Sprintf("broker 1: %d, broker 2: %d", contarDe(d, 1), contarDe(d, 2))
}

// unloadNamespace unloads every bundle of the world's namespace
// (pulsar-admin namespaces unload).
func (m *mundo) unloadNamespace(ctx context.Context) error {
	return m.adminCluster(ctx, http.MethodPut, fmt.Sprintf("/admin/v2/namespaces/%s/%s/unload", tenant, m.cfg.Namespace), nil)
}

// moverBundles unloads each bundle that holds a partition of the world to
// the broker that does not own it (pulsar-admin namespaces unload -b B -d D).
func (m *mundo) moverBundles(ctx context.Context) error {
	d, err := m.duenos(ctx)
	if err != nil {
		return err
	}
	bundles := map[string]int{}
	for p, b := range d {
		var crudo []byte
		if err := m.adminCluster(ctx, http.MethodGet, "/lookup/v2/topic/"+p+"/bundle", &crudo); err != nil {
			return fmt.Errorf("bundle de %s: %w", p, err)
		}
		// The range, e.g. 0x40000000_0x80000000, bare or as a JSON string.
		rango := strings.Trim(strings.TrimSpace(string(crudo)), `"`)
		bundles[rango] = b
	}
	rangos := make([]string, 0, len(bundles))
	for r := range bundles {
		rangos = append(rangos, r)
	}
	sort.Strings(rangos)
	for _, r := range rangos {
		destino := idBroker(otroBroker(bundles[r]))
		ruta := fmt.Sprintf("/admin/v2/namespaces/%s/%s/%s/unload?destinationBroker=%s", tenant, m.cfg.Namespace, r, url.QueryEscape(destino))
		if err := m.adminCluster(ctx, http.MethodPut, ruta, nil); err != nil {
			return fmt.Errorf("unload del bundle %s hacia %s: %w", r, destino, err)
		}
	}
	return nil
}

// --- how long the sagas stood still --------------------------------------------

// margenDetencion: a stretch without sagas ending that begins this soon
// after the break is the fault's (the load keeps sagas ending every few
// tenths of a second otherwise).
const margenDetencion = 10 * time.Second

// medirDetencion prints, for each fault, the sagas in flight at the break
// (started before, ended after) and when they ended, the first of them
// that was held (ended more than retenida after the break) and the longest
// stretch without any saga ending from the break until a minute after the
// repair: the time from the fault to the first saga finishing again.
func medirDetencion(ctx context.Context, db *sql.DB, vs []ventana, b *bitacora) {
	const retenida = 2 * time.Second
	for i := range vs {
		v := &vs[i]
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var enVuelo int
		var primeraRetenida, ultima sql.NullTime
		err := db.QueryRowContext(qctx, `SELECT COUNT(*), MIN(CASE WHEN timestamp_fin >= ? THEN timestamp_fin END), MAX(timestamp_fin)
			FROM sagas WHERE timestamp_inicio < ? AND timestamp_fin >= ?`,
			v.Inicio.Add(retenida).UTC(), v.Inicio.UTC(), v.Inicio.UTC()).Scan(&enVuelo, &primeraRetenida, &ultima)
		var fines []time.Time
		if err == nil {
			var filas *sql.Rows
			filas, err = db.QueryContext(qctx, `SELECT timestamp_fin FROM sagas WHERE timestamp_fin >= ? AND timestamp_fin <= ? ORDER BY timestamp_fin`,
				v.Inicio.UTC(), v.Fin.Add(time.Minute).UTC())
			if err == nil {
				for filas.Next() {
					var t time.Time
					if err = filas.Scan(&t); err != nil {
						break
					}
					fines = append(fines, t)
				}
				filas.Close()
			}
		}
		cancel()
		if err != nil {
			b.Printf("detención por %q: no se pudo leer sagas: %v", v.Falla, err)
			continue
		}
		hueco, desde := time.Duration(0), v.Inicio
		previo := v.Inicio
		for _, t := range fines {
			if g := t.Sub(previo); g > hueco {
				hueco, desde = g, previo
			}
			previo = t
		}
		if hueco > retenida && desde.Sub(v.Inicio) <= margenDetencion {
			v.Detenida, v.Reanudada = hueco, desde.Add(hueco)
		}
		reanudada := fmt.Sprintf("sin detención de más de %s tras la falla", retenida)
		if !v.Reanudada.IsZero() {
			reanudada = "primera saga terminada de nuevo " + demora(v.Inicio, v.Reanudada) + " tras la falla"
		}
		b.Printf("detención por %q: %d sagas en vuelo al romper; la primera retenida (> %s) terminó %s tras la falla, la última %s tras la falla; mayor tramo sin ninguna saga terminada: %.1fs (desde +%.1fs de la falla); %s",
			v.Falla, enVuelo, retenida, demora(v.Inicio, primeraRetenida.Time), demora(v.Inicio, ultima.Time), hueco.Seconds(), desde.Sub(v.Inicio).Seconds(), reanudada)
	}
}
