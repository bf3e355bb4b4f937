package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/sistema"
)

// TestAmbosFlujosConTopicosParticionados provisions with
// SAGAS_PULSAR_PARTITIONS=3 and runs both flows, completing and
// compensating, with two instances of marca sharing its 3-partition command
// topic; then twenty campaigns at once, which both marca instances serve.
// Last, the provisioning step with the setting at 1 on this deployment is
// refused, naming a topic, what the broker has and what to do.
func TestAmbosFlujosConTopicosParticionados(t *testing.T) {
	s := sistema.Arrancar(t, sistema.Opciones{
		Extra:      map[string]string{"SAGAS_PULSAR_PARTITIONS": "3"},
		Instancias: map[string]int{"marca": 2},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	topo := eventos.Topologia{Tenant: eventos.TopologiaPorDefecto.Tenant, Namespace: s.Namespace}
	admin := bus.NuevoAdmin(s.Env["SAGAS_PULSAR_ADMIN_URL"])
	for _, tp := range []string{topo.Comandos("marca"), topo.Comandos("afiliados"), topo.Respuestas(), topo.Eventos()} {
		if n, err := admin.Particiones(ctx, tp); err != nil || n != 3 {
			t.Fatalf("%s: %d partitions (%v), want 3", tp, n, err)
		}
	}

	ambosFlujos(t, s)

	const sagas = 20
	var wg sync.WaitGroup
	errs := make(chan string, sagas)
	for range sagas {
		wg.Go(func() {
			code, b, err := s.Post(ctx, "/campana-saga?esperar=60s", fmt.Sprintf(cuerpoCampana, ""))
			if err != nil || code != 200 {
				errs <- fmt.Sprintf("%d %v %s", code, err, b)
				return
			}
			if r := decodificar(t, b); r.Estado != "COMPLETADA" {
				errs <- string(b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("campaign under load: %s", e)
	}
	for _, instancia := range []string{"marca", "marca-2"} {
		if n := consumidos(ctx, t, s, instancia, topo.Comandos("marca")); n == 0 {
			t.Errorf("%s consumed no command: Key_Shared gave it no saga", instancia)
		} else {
			t.Logf("%s consumed %v commands", instancia, n)
		}
	}

	// The setting disagrees with the deployment: the operator is told.
	cmd := exec.Command(filepath.Join(sistema.Binarios(t), "coordinador"), "-preparar")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "SAGAS_PULSAR_PARTITIONS=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("coordinador -preparar with 1 partition on a 3-partition deployment succeeded:\n%s", out)
	}
	for _, debe := range []string{"particionado en 3", "no particionado", "SAGAS_PULSAR_PARTITIONS=3", "docs/production.md"} {
		if !bytes.Contains(out, []byte(debe)) {
			t.Errorf("the refusal does not say %q:\n%s", debe, out)
		}
	}
	t.Logf("coordinador -preparar with SAGAS_PULSAR_PARTITIONS=1:\n%s", out)
}

// consumidos reads from an instance's /metrics how many messages of topico
// it processed successfully.
func consumidos(ctx context.Context, t *testing.T, s *sistema.Sistema, instancia, topico string) float64 {
	t.Helper()
	code, b, err := s.Get(ctx, s.Metricas[instancia]+"/metrics")
	if err != nil || code != 200 {
		t.Fatalf("metrics of %s: %d %v", instancia, code, err)
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "sagas_mensajes_consumidos_total{") && strings.Contains(l, `resultado="ok"`) && strings.Contains(l, `topic="`+topico+`"`) {
			var v float64
			fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &v)
			total += v
		}
	}
	return total
}
