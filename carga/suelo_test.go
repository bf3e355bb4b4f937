package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/go-sql-driver/mysql"
)

func TestSaltosDelCaminoDeCadaFlujo(t *testing.T) {
	for _, c := range []struct {
		flujo  string
		saltos int
	}{
		// Create, then a command and a reply per step, then the outcome.
		{saga.TipoCampana, 2*3 + 1},
		// Version 2: the affiliates step, then three steps at once.
		{saga.TipoLanzarCampaniaCompleta, 2*2 + 1},
		{"otro", 0},
	} {
		if got := saltosDe(c.flujo); got != c.saltos {
			t.Errorf("saltosDe(%q) = %d, want %d", c.flujo, got, c.saltos)
		}
	}
}

// TestSueloMideCadaSaltoYNoDejaNada measures a short floor against the test
// broker, on each store: every hop of every chain is measured, the ratio is
// the run's p50 over the floor's, and neither the scratch topic nor the
// scratch database (or file) is left behind.
func TestSueloMideCadaSaltoYNoDejaNada(t *testing.T) {
	url, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := eventos.Topologia{Tenant: "public", Namespace: fmt.Sprintf("carga-suelo-%d", time.Now().UnixNano())}
	admin := bus.NuevoAdmin(adminURL)
	if err := admin.PrepararNamespace(ctx, topo.Tenant, topo.Namespace, bus.PoliticasPorDefecto); err != nil {
		t.Fatal(err)
	}
	client, err := bus.Conectar(url, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	almacenes := []string{"", "sqlite", "mysql"}
	for _, alm := range almacenes {
		t.Run("almacen="+alm, func(t *testing.T) {
			o := opciones{flujo: saga.TipoCampana, n: 3, tasa: 40, almacen: alm}
			var antes map[string]bool
			switch alm {
			case "sqlite":
				o.sqlite = filepath.Join(t.TempDir(), "suelo.db")
			case "mysql":
				o.dsn = integracion.MySQLDSN(t)
				antes = basesDePrueba(t, o.dsn)
			}
			r := &Resultado{LatenciaMs: Percentiles{P50: 14}}
			s, err := medirSuelo(ctx, o, client, admin, topo, r)
			if err != nil {
				t.Fatal(err)
			}
			if s.Saltos != 7 || s.Cadenas != 3 || s.PausaMs != 25 {
				t.Fatalf("saltos %d, cadenas %d, pausa %v ms; want 7, 3 (n), 25 (1/tasa)", s.Saltos, s.Cadenas, s.PausaMs)
			}
			if s.EntregaP50Ms <= 0 || s.SagaP50Ms < s.EntregaP50Ms || s.SagaP99Ms < s.SagaP50Ms {
				t.Fatalf("delivery p50 %v, chain p50 %v, p99 %v: want 0 < delivery <= chain p50 <= p99", s.EntregaP50Ms, s.SagaP50Ms, s.SagaP99Ms)
			}
			if conCommit := alm != ""; conCommit != (s.CommitP50Ms > 0) {
				t.Fatalf("store %q: commit p50 %v", alm, s.CommitP50Ms)
			}
			if want := 14 / s.SagaP50Ms; s.RatioP50 != want {
				t.Fatalf("ratio %v, want the run's p50 over the floor's, %v", s.RatioP50, want)
			}
			switch alm {
			case "sqlite":
				if _, err := os.Stat(o.sqlite); !os.IsNotExist(err) {
					t.Fatalf("scratch file left behind: %v", err)
				}
			case "mysql":
				for b := range basesDePrueba(t, o.dsn) {
					if !antes[b] {
						t.Fatalf("scratch database %s left behind", b)
					}
				}
			}
		})
	}
	topicos, err := admin.Topicos(ctx, topo.Tenant, topo.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topicos {
		if strings.Contains(tp, "suelo-") {
			t.Fatalf("scratch topic left behind: %s", tp)
		}
	}
}

// basesDePrueba lists the scratch databases (baseDePrueba) on dsn's server.
func basesDePrueba(t *testing.T, dsn string) map[string]bool {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	filas, err := db.Query("SHOW DATABASES LIKE '" + cfg.DBName + "\\_cota\\_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer filas.Close()
	bases := map[string]bool{}
	for filas.Next() {
		var b string
		if err := filas.Scan(&b); err != nil {
			t.Fatal(err)
		}
		bases[b] = true
	}
	if err := filas.Err(); err != nil {
		t.Fatal(err)
	}
	return bases
}
