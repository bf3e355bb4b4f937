package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// CPU is where this machine's CPU went during the load, read from Linux's
// /proc before and after it: the whole machine's busy share and, per group of
// the system's processes, CPU milliseconds and context switches per saga.
// It tells whether a latency figure was measured on a saturated machine, and
// which process a change has to make cheaper.
type CPU struct {
	Nucleos int `json:"nucleos"`
	// OcupadaPct is the busy share of all cores (user, nice, system, irq,
	// softirq) over the run; the rest was idle, I/O wait or stolen by the
	// hypervisor.
	OcupadaPct float64 `json:"ocupada_pct"`
	// RobadaPct is the share the hypervisor gave to other guests.
	RobadaPct float64 `json:"robada_pct"`
	// MsPorSaga is the whole machine's busy CPU per saga, every process
	// included (the groups below and the rest).
	MsPorSaga float64    `json:"ms_por_saga"`
	Grupos    []GrupoCPU `json:"grupos"`
}

// GrupoCPU is one group of processes: the coordinator replicas, the
// participants, the broker, the database, this load tool.
type GrupoCPU struct {
	Nombre         string  `json:"nombre"`
	Procesos       int     `json:"procesos"`
	MsPorSaga      float64 `json:"ms_por_saga"`
	CambiosPorSaga float64 `json:"cambios_contexto_por_saga"`
	ms, cambios    float64
}

// participantesCPU are the participant binaries' names.
var participantesCPU = []string{"influencer", "marca", "tracking", "afiliados", "comisiones", "notificaciones"}

// grupoDe names the group of a process from its command name (comm) and,
// for a JVM only, its command line; "" when it is not part of the system.
// The JVMs of a cluster (scripts/cluster.sh) are told apart by their main
// class: broker, bookie, zookeeper; a standalone is pulsar.
func grupoDe(comm string, cmdline func() string, propio bool) string {
	switch {
	case propio:
		return "carga"
	case comm == "coordinador":
		return "coordinador"
	case slices.Contains(participantesCPU, comm):
		return "participantes"
	case comm == "mariadbd" || comm == "mysqld":
		return "mariadb"
	case comm == "java":
		c := cmdline()
		switch {
		case strings.Contains(c, "org.apache.pulsar.PulsarBrokerStarter"):
			return "broker"
		case strings.Contains(c, "org.apache.bookkeeper.server.Main"), strings.Contains(c, "org.apache.pulsar.PulsarBookieStarter"):
			return "bookie"
		case strings.Contains(c, "org.apache.zookeeper.server.quorum.QuorumPeerMain"), strings.Contains(c, "org.apache.pulsar.zookeeper.ZooKeeperStarter"):
			return "zookeeper"
		case strings.Contains(c, "pulsar"):
			return "pulsar"
		}
	}
	return ""
}

// muestraCPU is one reading of /proc.
type muestraCPU struct {
	nucleos  int
	ocupada  float64 // jiffies of all cores
	robada   float64
	total    float64
	procesos map[int]procesoCPU
}

type procesoCPU struct {
	grupo   string
	jiffies float64 // utime + stime
	cambios float64 // voluntary + involuntary context switches, all threads
}

// hzUsuario is USER_HZ, the unit of /proc's CPU times; 100 on every Linux
// architecture Go runs on.
const hzUsuario = 100

// leerCPU reads the machine's counters and those of the system's processes
// from procfs (rooted at /proc). self is this process's pid. On a machine
// where others run copies of the system, two filters leave theirs out: a
// non-empty solo keeps only processes whose command line contains it; a
// non-empty marca ("NAME=VALUE") only those whose environment holds it.
func leerCPU(procfs fs.FS, self int, solo, marca string) (*muestraCPU, error) {
	m := &muestraCPU{procesos: map[int]procesoCPU{}}
	stat, err := fs.ReadFile(procfs, "stat")
	if err != nil {
		return nil, err
	}
	if err := m.leerStat(stat); err != nil {
		return nil, err
	}
	entradas, err := fs.ReadDir(procfs, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entradas {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		// A process may end between the listing and the reads: skip it.
		st, err := fs.ReadFile(procfs, path.Join(e.Name(), "stat"))
		if err != nil {
			continue
		}
		comm, jiffies, err := leerStatProceso(st)
		if err != nil {
			continue
		}
		cmdline := func() string {
			b, _ := fs.ReadFile(procfs, path.Join(e.Name(), "cmdline"))
			return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
		g := grupoDe(comm, cmdline, pid == self)
		if g == "" || (pid != self && ((solo != "" && !strings.Contains(cmdline(), solo)) || (marca != "" && !tieneEntorno(procfs, e.Name(), marca)))) {
			continue
		}
		m.procesos[pid] = procesoCPU{grupo: g, jiffies: jiffies, cambios: cambiosDeContexto(procfs, e.Name())}
	}
	return m, nil
}

// leerStat reads the aggregate "cpu" line and counts the "cpuN" lines of
// /proc/stat.
func (m *muestraCPU) leerStat(b []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	vista := false
	for sc.Scan() {
		campos := strings.Fields(sc.Text())
		if len(campos) == 0 {
			continue
		}
		if campos[0] != "cpu" {
			if strings.HasPrefix(campos[0], "cpu") {
				m.nucleos++
			}
			continue
		}
		// cpu user nice system idle iowait irq softirq steal ...
		if len(campos) < 9 {
			return fmt.Errorf("/proc/stat: línea cpu con %d campos", len(campos))
		}
		var v [8]float64
		for i := range v {
			x, err := strconv.ParseFloat(campos[i+1], 64)
			if err != nil {
				return fmt.Errorf("/proc/stat: %w", err)
			}
			v[i] = x
		}
		m.ocupada = v[0] + v[1] + v[2] + v[5] + v[6]
		m.robada = v[7]
		m.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
		vista = true
	}
	if !vista {
		return errors.New("/proc/stat: sin línea cpu")
	}
	return nil
}

// leerStatProceso returns comm and utime+stime from /proc/<pid>/stat. comm
// is between the first '(' and the last ')' and may hold spaces.
func leerStatProceso(b []byte) (string, float64, error) {
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return "", 0, errors.New("stat: sin comm")
	}
	campos := strings.Fields(string(b[j+1:]))
	// After comm: state(3) ... utime(14) stime(15), counted from 1 with
	// pid and comm as fields 1 and 2.
	if len(campos) < 13 {
		return "", 0, errors.New("stat: corto")
	}
	ut, err1 := strconv.ParseFloat(campos[11], 64)
	st, err2 := strconv.ParseFloat(campos[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, fmt.Errorf("stat: %w", err)
	}
	return string(b[i+1 : j]), ut + st, nil
}

// cambiosDeContexto sums the context switches of every thread of a process.
func cambiosDeContexto(procfs fs.FS, pid string) float64 {
	hilos, err := fs.ReadDir(procfs, path.Join(pid, "task"))
	if err != nil {
		return 0
	}
	var n float64
	for _, h := range hilos {
		b, err := fs.ReadFile(procfs, path.Join(pid, "task", h.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				n += x
			}
		}
	}
	return n
}

// cpuEntre is what happened between two readings, per saga. Only processes
// present in both count: one that started or ended during the run (a
// restarted replica) is left out, and the machine's total still includes it.
func cpuEntre(a, b *muestraCPU, sagas int) *CPU {
	if sagas <= 0 {
		sagas = 1
	}
	c := &CPU{Nucleos: b.nucleos}
	grupos := map[string]*GrupoCPU{}
	if d := b.total - a.total; d > 0 {
		c.OcupadaPct = 100 * (b.ocupada - a.ocupada) / d
		c.RobadaPct = 100 * (b.robada - a.robada) / d
	}
	c.MsPorSaga = 1000 * (b.ocupada - a.ocupada) / hzUsuario / float64(sagas)
	for pid, pb := range b.procesos {
		pa, ok := a.procesos[pid]
		if !ok || pa.grupo != pb.grupo {
			continue
		}
		g := grupos[pb.grupo]
		if g == nil {
			g = &GrupoCPU{Nombre: pb.grupo}
			grupos[pb.grupo] = g
		}
		g.Procesos++
		g.ms += 1000 * (pb.jiffies - pa.jiffies) / hzUsuario
		g.cambios += pb.cambios - pa.cambios
	}
	for _, g := range grupos {
		g.MsPorSaga = g.ms / float64(sagas)
		g.CambiosPorSaga = g.cambios / float64(sagas)
		c.Grupos = append(c.Grupos, *g)
	}
	slices.SortFunc(c.Grupos, func(x, y GrupoCPU) int { return strings.Compare(x.Nombre, y.Nombre) })
	return c
}

// tieneEntorno says whether process pid's environment holds the entry
// marca ("NAME=VALUE"); false when it cannot be read.
func tieneEntorno(procfs fs.FS, pid, marca string) bool {
	b, err := fs.ReadFile(procfs, path.Join(pid, "environ"))
	if err != nil {
		return false
	}
	for _, v := range bytes.Split(b, []byte{0}) {
		if string(v) == marca {
			return true
		}
	}
	return false
}

// medidorCPU reads /proc at the start of the load; fin returns the
// accounting, or nil when /proc cannot be read (not Linux).
type medidorCPU struct {
	procfs fs.FS
	self   int
	solo   string
	marca  string
	inicio *muestraCPU
	err    error
}

func iniciarCPU(procfs fs.FS, solo, marca string) *medidorCPU {
	m := &medidorCPU{procfs: procfs, self: os.Getpid(), solo: solo, marca: marca}
	m.inicio, m.err = leerCPU(procfs, m.self, solo, marca)
	return m
}

func (m *medidorCPU) fin(sagas int) (*CPU, error) {
	if m.err != nil {
		return nil, m.err
	}
	b, err := leerCPU(m.procfs, m.self, m.solo, m.marca)
	if err != nil {
		return nil, err
	}
	return cpuEntre(m.inicio, b, sagas), nil
}

func imprimirCPU(w io.Writer, c *CPU) {
	fmt.Fprintf(w, "  machine cpu     %.0f%% busy of %d cores (%.0f%% stolen), %.1f ms/saga in all\n", c.OcupadaPct, c.Nucleos, c.RobadaPct, c.MsPorSaga)
	for _, g := range c.Grupos {
		fmt.Fprintf(w, "    %-14s %6.2f ms/saga  %7.1f context switches/saga  (processes: %d)\n", g.Nombre, g.MsPorSaga, g.CambiosPorSaga, g.Procesos)
	}
}
