package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The chaos v2 plans (-plan); completo and corto are in plan.go.
const (
	planZombie    = "zombie"
	planParticion = "partition"
	planCrash     = "crash"
	planDesfase   = "skew"
	planSolape    = "overlap"
)

// planesValidos are every -plan value, in the help's order.
var planesValidos = []string{"completo", "corto", "ninguno", planZombie, planParticion, planCrash, planDesfase, planSolape, planBrokerCluster, planUnload}

// desfaseReloj is the clock offset of the skewed replica in the skew plan
// (SAGAS_CAOS_DESFASE_RELOJ of a coordinator built with -tags caos).
const desfaseReloj = -5 * time.Minute

// plazoZombie is how long the zombie replica stays stopped: longer than a
// step's deadline (10s, coordinador/saga/definicion.go) and than InnoDB's
// lock wait timeout (50s by default), so the other replica must get past
// the zombie's locked rows and expired deadlines while it is frozen.
const plazoZombie = 60 * time.Second

// plazoParticion is how long the partition plan keeps its proxies cut.
const plazoParticion = 30 * time.Second

// usaProxies reports whether plan routes a replica's database and a
// participant's broker traffic through caos's proxies.
func usaProxies(plan string) bool { return plan == planParticion }

// planV2 returns one of the chaos v2 plans.
func planV2(nombre string, m *mundo) []falla {
	c1, c2 := m.coordinadores[0], m.coordinadores[1]
	switch nombre {
	case planZombie:
		return []falla{m.fallaZombie(c2, 15*time.Second)}
	case planParticion:
		return []falla{{
			Nombre: fmt.Sprintf("partición silenciosa: %s ↔ MariaDB y %s ↔ broker", c2.nombre, participanteVictima),
			Antes:  15 * time.Second, Caida: plazoParticion,
			romper: func(context.Context) (string, error) {
				m.proxyDB.Cortar()
				m.proxyBroker.Cortar()
				return fmt.Sprintf("proxies cortados (%s→MariaDB %d conexiones, %s→broker %d conexiones abiertas, sin reenviar)",
					m.proxyDB.Direccion(), m.proxyDB.Conexiones(), m.proxyBroker.Direccion(), m.proxyBroker.Conexiones()), nil
			},
			reparar: func(context.Context) (string, error) {
				m.proxyDB.Sanar()
				m.proxyBroker.Sanar()
				return "proxies sanados: reenvían de nuevo", nil
			},
		}}
	case planCrash:
		return []falla{
			m.fallaMatarScript("broker", "pulsar.sh", 15*time.Second, 5*time.Second),
			m.fallaMatarScript("MariaDB", "mariadb.sh", 15*time.Second, 5*time.Second),
			m.fallaMatarProceso(c1, 15*time.Second, 5*time.Second),
			m.fallaMatarProceso(c2, 10*time.Second, 5*time.Second),
		}
	case planDesfase:
		// The fault is the skewed clock of replica 2 from its start; the
		// plan only waits while the load runs on both replicas.
		espera := 20 * time.Second
		if m.cfg.Corto {
			espera = 5 * time.Second
		}
		return []falla{{
			Nombre: fmt.Sprintf("%s con el reloj desfasado %s (desde su inicio)", c2.nombre, desfaseReloj),
			Antes:  espera, Caida: espera,
			romper: func(context.Context) (string, error) {
				return fmt.Sprintf("%s (pid %d) corre con SAGAS_CAOS_DESFASE_RELOJ=%s", c2.nombre, c2.Pid(), desfaseReloj), nil
			},
			reparar: func(context.Context) (string, error) { return "sin reparación: el desfase dura todo el run", nil },
		}}
	case planSolape:
		z := m.fallaZombie(c2, 0)
		b := m.fallaMatarScript("broker", "pulsar.sh", 0, 0)
		return []falla{solapar(15*time.Second, z, b)}
	}
	return nil
}

// solapar makes one fault of several at once: they break together, stay
// broken for the longest of their times and are repaired together.
func solapar(antes time.Duration, fs ...falla) falla {
	nombre, caida := "", time.Duration(0)
	for i, f := range fs {
		if i > 0 {
			nombre += " + "
		}
		nombre += f.Nombre
		caida = max(caida, f.Caida)
	}
	todas := func(pasos func(falla) func(context.Context) (string, error)) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			que := make([]string, len(fs))
			errs := make([]error, len(fs))
			var wg sync.WaitGroup
			for i, f := range fs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					que[i], errs[i] = pasos(f)(ctx)
				}()
			}
			wg.Wait()
			txt := ""
			var err error
			for i := range fs {
				if i > 0 {
					txt += "; "
				}
				txt += que[i]
				if errs[i] != nil && err == nil {
					err = errs[i]
				}
			}
			return txt, err
		}
	}
	return falla{Nombre: nombre, Antes: antes, Caida: caida,
		romper:  todas(func(f falla) func(context.Context) (string, error) { return f.romper }),
		reparar: todas(func(f falla) func(context.Context) (string, error) { return f.reparar })}
}

// fallaZombie freezes p with SIGSTOP for plazoZombie while it holds open
// transactions (locked saga and outbox rows), then SIGCONT. It says whether
// it caught p inside a transaction, and how many tries that took.
//
// Watching INNODB_TRX for a transaction before stopping p rarely works:
// InnoDB refreshes that table's snapshot at most every 100 ms, while p's
// transactions last about a millisecond, so the watch saw none in 45 s at
// 20 sagas/s. Instead p is stopped blindly, the table read once its
// snapshot is fresh, and p let go again for a short random time when it
// holds nothing; each try freezes p for ~0.1 s.
func (m *mundo) fallaZombie(p *proceso, antes time.Duration) falla {
	return falla{
		Nombre: fmt.Sprintf("zombie: SIGSTOP de %s %s, luego SIGCONT", p.nombre, plazoZombie),
		Antes:  antes, Caida: plazoZombie,
		romper: func(ctx context.Context) (string, error) {
			db, err := sql.Open("mysql", m.dsn(baseCoord))
			if err != nil {
				return "", err
			}
			defer db.Close()
			const plazoCaptura = 45 * time.Second
			pid := p.Pid()
			limite := time.Now().Add(plazoCaptura)
			intentos, fallidas := 0, 0
			var ultimoErr error
			for time.Now().Before(limite) && ctx.Err() == nil {
				intentos++
				if err := p.senalSinEsperar(syscall.SIGSTOP); err != nil {
					return "", err
				}
				// Past InnoDB's snapshot interval, so the read below sees
				// the transactions open now.
				time.Sleep(110 * time.Millisecond)
				puertos, err := puertosLocales(pid)
				if err != nil {
					return "", fmt.Errorf("zombie: sockets de %s: %w", p.nombre, err)
				}
				trx, filas, err := transaccionesDe(ctx, db, puertos)
				if err != nil {
					// MariaDB 10.11 has failed this read now and then
					// ("Error on delete of '/tmp/#sql-temptable-…'"); one
					// failed look is one try less, not a fault not injected.
					fallidas++
					ultimoErr = err
				}
				if err == nil && trx > 0 {
					return fmt.Sprintf("SIGSTOP %s (pid %d) en el intento %d: congelada con %d transacciones abiertas y %d filas bloqueadas",
						p.nombre, pid, intentos, trx, filas), nil
				}
				if err := p.senalSinEsperar(syscall.SIGCONT); err != nil {
					return "", err
				}
				time.Sleep(20*time.Millisecond + rand.N(180*time.Millisecond))
			}
			if err := p.senalSinEsperar(syscall.SIGSTOP); err != nil {
				return "", err
			}
			nota := ""
			if fallidas > 0 {
				nota = fmt.Sprintf(" (%d lecturas de INNODB_TRX fallaron; la última: %v)", fallidas, ultimoErr)
			}
			return fmt.Sprintf("SIGSTOP %s (pid %d): en %s (%d intentos) no se la pilló dentro de una transacción; queda congelada sin filas bloqueadas%s",
				p.nombre, pid, plazoCaptura, intentos, nota), nil
		},
		reparar: func(context.Context) (string, error) {
			return fmt.Sprintf("SIGCONT %s (pid %d)", p.nombre, p.Pid()), p.senalSinEsperar(syscall.SIGCONT)
		},
	}
}

// transaccionesDe counts the open InnoDB transactions of the connections
// whose client ports are puertos (the HOST column of the processlist; see
// puertosLocales) and the rows they lock.
func transaccionesDe(ctx context.Context, db *sql.DB, puertos map[string]bool) (int, int, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	filas, err := db.QueryContext(qctx, `SELECT p.HOST, t.trx_rows_locked FROM information_schema.INNODB_TRX t
		JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id`)
	if err != nil {
		return 0, 0, err
	}
	defer filas.Close()
	n, bloqueadas := 0, 0
	for filas.Next() {
		var host string
		var b int
		if err := filas.Scan(&host, &b); err != nil {
			return 0, 0, err
		}
		_, puerto, _ := strings.Cut(host, ":")
		if puertos[puerto] {
			n++
			bloqueadas += b
		}
	}
	return n, bloqueadas, filas.Err()
}

// puertosLocales are the local ports of pid's TCP sockets (from
// /proc/<pid>/fd and /proc/<pid>/net/tcp), as decimal strings.
func puertosLocales(pid int) (map[string]bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodos := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodos[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	puertos := map[string]bool{}
	for _, tabla := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, tabla))
		if err != nil {
			continue
		}
		for _, linea := range strings.Split(string(b), "\n")[1:] {
			campos := strings.Fields(linea)
			if len(campos) < 10 || !inodos[campos[9]] {
				continue
			}
			_, hex, _ := strings.Cut(campos[1], ":")
			if p, err := strconv.ParseUint(hex, 16, 16); err == nil {
				puertos[strconv.FormatUint(p, 10)] = true
			}
		}
	}
	return puertos, nil
}

// fallaMatarProceso is kill -9 of p, restarted after caida.
func (m *mundo) fallaMatarProceso(p *proceso, antes, caida time.Duration) falla {
	return falla{Nombre: "kill -9 de " + p.nombre, Antes: antes, Caida: caida,
		romper: func(context.Context) (string, error) {
			pid, err := m.Matar(p)
			return fmt.Sprintf("kill -9 %s (pid %d)", p.nombre, pid), err
		},
		reparar: func(ctx context.Context) (string, error) {
			err := m.arrancar(ctx, p)
			return fmt.Sprintf("%s reiniciado y listo (pid %d)", p.nombre, p.Pid()), err
		}}
}

// fallaMatarScript is kill -9 of what scripts/<script> started (its pid
// file), then `<script> start` on the same data.
func (m *mundo) fallaMatarScript(que, script string, antes, caida time.Duration) falla {
	return falla{Nombre: "kill -9 de " + que + " (" + script + " start después, mismos datos)", Antes: antes, Caida: caida,
		romper: func(context.Context) (string, error) {
			pid, err := m.matarInstancia(script)
			return fmt.Sprintf("kill -9 del grupo de %s (pid %d)", que, pid), err
		},
		reparar: func(ctx context.Context) (string, error) {
			return que + " iniciado y listo (" + script + " start)", m.script(ctx, script, "start")
		}}
}

// archivoPid is the pid file scripts/<script> keeps for the world's instance.
func (m *mundo) archivoPid(script string) string {
	if script == "pulsar.sh" {
		return filepath.Join(m.cfg.Estado, fmt.Sprintf("pulsar-%d", m.cfg.PuertoPulsar), "pulsar.pid")
	}
	return filepath.Join(m.cfg.Estado, fmt.Sprintf("mariadb-%d", m.cfg.PuertoDB), "mariadb.pid")
}

// matarInstancia sends SIGKILL to the process group scripts/<script>
// started (setsid: the pid in its pid file leads the group) and waits until
// the leader is gone.
func (m *mundo) matarInstancia(script string) (int, error) {
	b, err := os.ReadFile(m.archivoPid(script))
	if err != nil {
		return 0, fmt.Errorf("kill -9 de %s: %w", script, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("kill -9 de %s: pid file %s: %q", script, m.archivoPid(script), b)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return pid, fmt.Errorf("kill -9 %d (%s): %w", pid, script, err)
		}
	}
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return pid, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return pid, fmt.Errorf("kill -9 %d (%s): still alive after 10s", pid, script)
}

// medirRecuperacion fills, for each fault, when the first saga ended
// (sagas.timestamp_fin) after the break and after the repair, and prints
// both delays.
func medirRecuperacion(ctx context.Context, db *sql.DB, vs []ventana, b *bitacora) {
	primera := func(desde time.Time) (time.Time, error) {
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var t sql.NullTime
		err := db.QueryRowContext(qctx, "SELECT MIN(timestamp_fin) FROM sagas WHERE timestamp_fin >= ?", desde.UTC()).Scan(&t)
		return t.Time, err
	}
	// The sagas the fault overlapped: started before the repair, not
	// ended before the break.
	ultimaSolapada := func(v *ventana) (time.Time, error) {
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var t sql.NullTime
		err := db.QueryRowContext(qctx, "SELECT MAX(timestamp_fin) FROM sagas WHERE timestamp_inicio < ? AND timestamp_fin >= ?",
			v.Fin.UTC(), v.Inicio.UTC()).Scan(&t)
		return t.Time, err
	}
	for i := range vs {
		v := &vs[i]
		var err1, err2 error
		v.PrimeraTrasFalla, err1 = primera(v.Inicio)
		v.PrimeraTrasReparacion, err2 = primera(v.Fin)
		var err3 error
		v.UltimaSolapada, err3 = ultimaSolapada(v)
		if err := errors.Join(err1, err2, err3); err != nil {
			b.Printf("recuperación de %q: no se pudo leer sagas.timestamp_fin: %v", v.Falla, err)
			continue
		}
		b.Printf("recuperación de %q: primera saga terminada %s tras la falla y %s tras la reparación; la última de las que la falla solapó, %s tras la reparación",
			v.Falla, demora(v.Inicio, v.PrimeraTrasFalla), demora(v.Fin, v.PrimeraTrasReparacion), demora(v.Fin, v.UltimaSolapada))
	}
}

func demora(desde, t time.Time) string {
	if t.IsZero() {
		return "(ninguna)"
	}
	return fmt.Sprintf("%.1fs", t.Sub(desde).Seconds())
}

// comprobarReintentosPorPlazo is the skew plan's check: participants
// answer promptly (a seeded failure is an answer too), so no command may
// have been re-sent because its deadline passed (pasos_saga.intento_numero
// above 1, the store's count of EJECUTAR attempts) and no step may have
// failed for a timeout. A replica that compared deadlines on its own,
// skewed clock would fire them early and re-send.
func comprobarReintentosPorPlazo(ctx context.Context, db *sql.DB, res *resultado) {
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	f := fila{Comprobacion: "skew: ningún plazo vencido (intento_numero > 1 o timeout)"}
	filas, err := db.QueryContext(qctx, `SELECT saga_id, nombre, intento_numero, COALESCE(error_mensaje, '') FROM pasos_saga
		WHERE intento_numero > 1 OR error_mensaje LIKE '%(timeout)%' OR error_compensacion LIKE '%(timeout)%'`)
	if err != nil {
		f.Fallos, f.Nota = 1, err.Error()
		res.agregar(f, nil)
		return
	}
	defer filas.Close()
	var ej []string
	for filas.Next() {
		var id, nombre, msg string
		var intento int
		if err := filas.Scan(&id, &nombre, &intento, &msg); err != nil {
			f.Fallos, f.Nota = f.Fallos+1, err.Error()
			break
		}
		f.Fallos++
		ej = append(ej, fmt.Sprintf("saga %s paso %s: intento %d %s", id, nombre, intento, msg))
	}
	if err := db.QueryRowContext(qctx, "SELECT COUNT(*) FROM pasos_saga").Scan(&f.Revisados); err != nil && f.Nota == "" {
		f.Nota = err.Error()
	}
	res.agregar(f, ej)
}
