package main

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// procFalso builds a procfs with the given aggregate cpu line and processes
// (pid → stat line, cmdline, per-thread context switches).
type procesoFalso struct {
	stat, cmdline string
	cambios       []string // one "voluntary nonvoluntary" per thread
}

func procFalso(cpu string, ps map[string]procesoFalso) fstest.MapFS {
	m := fstest.MapFS{"stat": {Data: []byte(cpu + "\ncpu0 1 0 0 0 0 0 0 0 0 0\ncpu1 1 0 0 0 0 0 0 0 0 0\nintr 1\nctxt 99\n")}}
	for pid, p := range ps {
		m[pid+"/stat"] = &fstest.MapFile{Data: []byte(p.stat)}
		m[pid+"/cmdline"] = &fstest.MapFile{Data: []byte(strings.ReplaceAll(p.cmdline, " ", "\x00"))}
		for i, c := range p.cambios {
			v, nv, _ := strings.Cut(c, " ")
			m[pid+"/task/"+string(rune('a'+i))+"/status"] = &fstest.MapFile{Data: []byte(
				"Name:\tx\nvoluntary_ctxt_switches:\t" + v + "\nnonvoluntary_ctxt_switches:\t" + nv + "\n")}
		}
	}
	return m
}

// statDe is a /proc/<pid>/stat line with utime and stime (fields 14, 15).
func statDe(pid, comm, utime, stime string) string {
	return pid + " (" + comm + ") S 1 1 1 0 -1 4194560 100 0 0 0 " + utime + " " + stime + " 0 0 20 0 4 0 100 1000 10"
}

func TestCPUEntre(t *testing.T) {
	antes := procFalso("cpu  1000 0 500 8000 100 0 0 50 0 0", map[string]procesoFalso{
		"10": {statDe("10", "coordinador", "100", "50"), "/x/bin/coordinador", []string{"10 1", "5 0"}},
		"11": {statDe("11", "marca", "10", "10"), "/x/bin/marca", []string{"3 0"}},
		"12": {statDe("12", "tracking", "20", "0"), "/x/bin/tracking", []string{"4 0"}},
		"13": {statDe("13", "java", "500", "100"), "java -cp lib org.apache.pulsar.PulsarStandaloneStarter", []string{"100 10"}},
		"14": {statDe("14", "java", "900", "100"), "java -jar otra.jar", nil},
		"15": {statDe("15", "mariadbd", "300", "100"), "/usr/sbin/mariadbd --defaults-file=x", []string{"50 5"}},
		"16": {statDe("16", "carga (x)", "1", "1"), "/tmp/carga", nil},
		"17": {statDe("17", "coordinador", "0", "0"), "/x/bin/coordinador", nil}, // ends during the run
	})
	despues := procFalso("cpu  1600 0 700 8600 150 30 20 100 0 0", map[string]procesoFalso{
		"10": {statDe("10", "coordinador", "160", "70"), "/x/bin/coordinador", []string{"30 2", "15 0"}},
		"11": {statDe("11", "marca", "30", "10"), "/x/bin/marca", []string{"13 0"}},
		"12": {statDe("12", "tracking", "30", "10"), "/x/bin/tracking", []string{"14 0"}},
		"13": {statDe("13", "java", "700", "150"), "java -cp lib org.apache.pulsar.PulsarStandaloneStarter", []string{"150 20"}},
		"14": {statDe("14", "java", "5000", "100"), "java -jar otra.jar", nil},
		"15": {statDe("15", "mariadbd", "500", "200"), "/usr/sbin/mariadbd --defaults-file=x", []string{"100 5"}},
		"16": {statDe("16", "carga (x)", "11", "1"), "/tmp/carga", nil},
		"18": {statDe("18", "marca", "999", "0"), "/x/bin/marca", nil}, // started during the run
	})
	a, err := leerCPU(antes, 16, "", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := leerCPU(despues, 16, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c := cpuEntre(a, b, 10)
	if c.Nucleos != 2 {
		t.Errorf("Nucleos = %d, want 2", c.Nucleos)
	}
	// busy: user 600 + system 200 + irq 30 + softirq 20 = 850 of 1550
	// jiffies (idle 600, iowait 50, steal 50 included in the total).
	if got, want := c.OcupadaPct, 100*850.0/1550; !cerca(got, want) {
		t.Errorf("OcupadaPct = %.3f, want %.3f", got, want)
	}
	if got, want := c.RobadaPct, 100*50.0/1550; !cerca(got, want) {
		t.Errorf("RobadaPct = %.3f, want %.3f", got, want)
	}
	if got, want := c.MsPorSaga, 850*10.0/10; !cerca(got, want) { // 850 jiffies = 8.5 s over 10 sagas
		t.Errorf("MsPorSaga = %.3f, want %.3f", got, want)
	}
	want := map[string]GrupoCPU{
		"carga":         {Procesos: 1, MsPorSaga: 10, CambiosPorSaga: 0},
		"coordinador":   {Procesos: 1, MsPorSaga: 80 * 10 / 10, CambiosPorSaga: (47 - 16) / 10.0},
		"mariadb":       {Procesos: 1, MsPorSaga: 300 * 10 / 10, CambiosPorSaga: 50 / 10.0},
		"participantes": {Procesos: 2, MsPorSaga: (20 + 20) * 10 / 10, CambiosPorSaga: 20 / 10.0},
		"pulsar":        {Procesos: 1, MsPorSaga: 250 * 10 / 10, CambiosPorSaga: 60 / 10.0},
	}
	if len(c.Grupos) != len(want) {
		t.Fatalf("grupos = %+v, want %d groups", c.Grupos, len(want))
	}
	for _, g := range c.Grupos {
		w, ok := want[g.Nombre]
		if !ok {
			t.Errorf("unexpected group %q", g.Nombre)
			continue
		}
		if g.Procesos != w.Procesos || !cerca(g.MsPorSaga, w.MsPorSaga) || !cerca(g.CambiosPorSaga, w.CambiosPorSaga) {
			t.Errorf("group %s = %+v, want procesos %d, %.2f ms/saga, %.2f cs/saga", g.Nombre, g, w.Procesos, w.MsPorSaga, w.CambiosPorSaga)
		}
	}
}

// On a cluster the broker, bookie and ZooKeeper JVMs are groups of their
// own; with solo, only the processes whose command line holds it count
// (and the tool itself).
func TestCPUGruposDelClusterYSolo(t *testing.T) {
	const dir = "/w/.run/cluster"
	ps := func(j string) map[string]procesoFalso {
		return map[string]procesoFalso{
			"20": {statDe("20", "java", j, "0"), "java -Dpulsar.log.file=pulsar-broker.log org.apache.pulsar.PulsarBrokerStarter --broker-conf " + dir + "/broker1/conf/broker.conf", nil},
			"21": {statDe("21", "java", j, "0"), "java -Dpulsar.log.file=bookkeeper.log org.apache.bookkeeper.server.Main --conf " + dir + "/bookie1/conf/bookkeeper.conf", nil},
			"22": {statDe("22", "java", j, "0"), "java -Dpulsar.log.file=zookeeper.log org.apache.zookeeper.server.quorum.QuorumPeerMain " + dir + "/zk/conf/zookeeper.conf", nil},
			"23": {statDe("23", "java", j, "0"), "java -cp /otro/lib org.apache.pulsar.PulsarStandaloneStarter --config /otro/standalone.conf", nil},
			"24": {statDe("24", "coordinador", j, "0"), "/w/.run/escala/bin/coordinador", nil},
			"25": {statDe("25", "coordinador", j, "0"), "/otro/bin/coordinador", nil},
			"26": {statDe("26", "carga", j, "0"), "/tmp/carga", nil},
		}
	}
	antes, despues := procFalso("cpu  0 0 0 0 0 0 0 0 0 0", ps("0")), procFalso("cpu  100 0 0 0 0 0 0 0 0 0", ps("10"))
	for _, caso := range []struct {
		solo string
		want []string
	}{
		{"", []string{"bookie", "broker", "carga", "coordinador", "pulsar", "zookeeper"}},
		{"/w/.run", []string{"bookie", "broker", "carga", "coordinador", "zookeeper"}},
	} {
		procesos := map[string]int{"coordinador": 1}
		if caso.solo == "" {
			procesos["coordinador"] = 2
		}
		a, err := leerCPU(antes, 26, caso.solo, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := leerCPU(despues, 26, caso.solo, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, g := range cpuEntre(a, b, 1).Grupos {
			got = append(got, g.Nombre)
			if want := max(procesos[g.Nombre], 1); g.Procesos != want {
				t.Errorf("solo %q: group %s has %d processes, want %d", caso.solo, g.Nombre, g.Procesos, want)
			}
		}
		if strings.Join(got, ",") != strings.Join(caso.want, ",") {
			t.Errorf("solo %q: groups %v, want %v", caso.solo, got, caso.want)
		}
	}
}

func TestLeerCPURechazaStatSinCPU(t *testing.T) {
	if _, err := leerCPU(fstest.MapFS{"stat": {Data: []byte("intr 1\n")}}, 1, "", ""); err == nil {
		t.Fatal("leerCPU accepted a /proc/stat without a cpu line")
	}
	if _, err := leerCPU(fstest.MapFS{}, 1, "", ""); err == nil {
		t.Fatal("leerCPU accepted a procfs without stat")
	}
}

// On Linux, the real /proc: CPU this process burns between the readings
// shows up in its own group.
func TestCPUPropioEnProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc accounting is Linux only")
	}
	m := iniciarCPU(os.DirFS("/proc"), "", "")
	if m.err != nil {
		t.Fatal(m.err)
	}
	// Busy until this process has used 300 ms of CPU by the kernel's own
	// account (wall time says nothing on a machine shared with other work).
	x := 0
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for inicio, fin := cpu(), time.Now().Add(30*time.Second); cpu()-inicio < 300*time.Millisecond && time.Now().Before(fin); {
		for i := range 100000 {
			x += i
		}
	}
	c, err := m.fin(1)
	if err != nil {
		t.Fatal(err)
	}
	var propio *GrupoCPU
	for i := range c.Grupos {
		if c.Grupos[i].Nombre == "carga" {
			propio = &c.Grupos[i]
		}
	}
	if propio == nil || propio.Procesos != 1 {
		t.Fatalf("own process not accounted: %+v (x=%d)", c.Grupos, x)
	}
	// 300 ms of CPU used: the tool sees at least 100 ms of it (its sampling
	// starts a little after ours), and the machine's total includes it.
	if propio.MsPorSaga < 100 || c.MsPorSaga < propio.MsPorSaga {
		t.Errorf("own CPU %.1f ms, machine %.1f ms: want >= 100 and machine >= own", propio.MsPorSaga, c.MsPorSaga)
	}
	if c.Nucleos < 1 {
		t.Errorf("Nucleos = %d", c.Nucleos)
	}
}

func cerca(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// With a marca, only the processes whose environment holds it are counted:
// another copy of the system on the machine is left out.
func TestLeerCPUMarca(t *testing.T) {
	procfs := fstest.MapFS{
		"stat":       {Data: []byte("cpu  100 0 100 800 0 0 0 0 0 0\n")},
		"20/stat":    {Data: []byte(statDe("20", "coordinador", "50", "10"))},
		"20/environ": {Data: []byte("A=1\x00SAGAS_BENCH_MARCA=b1\x00")},
		"21/stat":    {Data: []byte(statDe("21", "coordinador", "70", "10"))},
		"21/environ": {Data: []byte("SAGAS_BENCH_MARCA=b2\x00")},
		"22/stat":    {Data: []byte(statDe("22", "mariadbd", "70", "10"))},
		"30/stat":    {Data: []byte(statDe("30", "carga", "1", "1"))},
	}
	m, err := leerCPU(procfs, 30, "", "SAGAS_BENCH_MARCA=b1")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for pid := range m.procesos {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	if !slices.Equal(pids, []int{20, 30}) {
		t.Errorf("processes counted = %v, want [20 30] (the marked coordinator and the load tool)", pids)
	}
}
