package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
)

func sinEntorno(string) string { return "" }

func TestAyudaListaFlagsYVariablesYSaleSinError(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out, errw bytes.Buffer
		if err := run(context.Background(), []string{"carga", arg}, sinEntorno, &out, &errw); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"-concurrencia", "-version", "-progreso", "SAGAS_API_TOKEN", "SAGAS_PULSAR_AUTH", "SAGAS_PULSAR_OAUTH2_PRIVATE_KEY"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: help does not list %s:\n%s", arg, want, out.String())
			}
		}
	}
}

func TestFlagDesconocidoFallaConLaAyudaEnStderr(t *testing.T) {
	var out, errw bytes.Buffer
	if err := run(context.Background(), []string{"carga", "-nada"}, sinEntorno, &out, &errw); err == nil {
		t.Fatal("unknown flag accepted")
	}
	if out.Len() != 0 || !strings.Contains(errw.String(), "-concurrencia") {
		t.Fatalf("stdout %q, stderr %q", out.String(), errw.String())
	}
}

func TestVersionImprimeLaVersionYSaleSinError(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"carga", "-version"}, sinEntorno, &out, &out); err != nil || !strings.HasPrefix(out.String(), "carga ") {
		t.Fatalf("%v %q", err, out.String())
	}
}

func TestTokenPorDefectoDelEntornoCompartido(t *testing.T) {
	var out bytes.Buffer
	env := func(k string) string { return map[string]string{"SAGAS_API_TOKEN": "s3cr3t"}[k] }
	if err := run(context.Background(), []string{"carga", "-h"}, env, &out, &out); err != nil || !strings.Contains(out.String(), `(default "s3cr3t")`) {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

func TestLineaDeProgresoDiceEnviadasTerminadasEnVueloYTasa(t *testing.T) {
	got := lineaProgreso(3*time.Second, 500, progreso{enviadas: 340, terminadas: 300, errores: 1}, 28.25)
	want := "carga     3s  sent 340/500  finished 300  in flight 40  errors 1  28.2 sagas/s"
	if got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}

type bufferSeguro struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *bufferSeguro) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *bufferSeguro) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestProgresoUnaLineaPorIntervaloHastaQueTermina(t *testing.T) {
	var w bufferSeguro
	ctx, cancel := context.WithCancel(context.Background())
	hecho := make(chan struct{})
	var n int
	go func() {
		defer close(hecho)
		informarProgreso(ctx, &w, 10*time.Millisecond, 10, func() progreso { n++; return progreso{enviadas: n, terminadas: n - 1} })
	}()
	for !strings.Contains(w.String(), "sent 3/10") {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-hecho
	if !strings.Contains(w.String(), "finished 2  in flight 1") {
		t.Fatalf("progress:\n%s", w.String())
	}
	informarProgreso(context.Background(), &w, 0, 10, nil) // 0: off, returns at once
}

func TestBorrarTopicoDeLaCotaNoDejaNada(t *testing.T) {
	admin := integracion.PulsarAdminURL(t)
	ns := fmt.Sprintf("carga-%d", time.Now().UnixNano())
	ctx := context.Background()
	if err := bus.NuevoAdmin(admin).PrepararNamespace(ctx, "public", ns, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	topico := "persistent://public/" + ns + "/cota-prueba"
	crear, _ := http.NewRequest(http.MethodPut, admin+"/admin/v2/persistent/public/"+ns+"/cota-prueba", nil)
	if resp, err := http.DefaultClient.Do(crear); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("create %s: %v %v", topico, err, resp)
	}
	borrarTopico(ctx, bus.NuevoAdmin(admin), topico)
	resp, err := http.Get(admin + "/admin/v2/persistent/public/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if strings.Contains(b.String(), "cota-prueba") {
		t.Fatalf("topic left behind: %s", b.String())
	}
}
