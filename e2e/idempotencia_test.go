package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/sistema"
)

// Idempotency is honest on both stores against the real broker (issue 24,
// item 3): the same Idempotency-Key and body returns the same saga; the
// same key with another body is 422 naming the key and creates nothing; a
// legacy event published twice makes one saga, and a legacy producer that
// reuses an envelope id for another campaign gets a second saga (the
// bridge's key is topic, envelope id and campaign).
func TestIdempotenciaHonestaEnAmbosAlmacenes(t *testing.T) {
	script := productorLegado(t)
	for _, a := range []string{"sqlite", "mysql"} {
		t.Run(a, func(t *testing.T) {
			sufijo := fmt.Sprint(time.Now().UnixNano())
			topCampania := "persistent://public/default/e2e-idem-campania-" + sufijo
			s := sistema.Arrancar(t, sistema.Opciones{Almacen: a, Extra: map[string]string{
				"SAGAS_LEGADO_TOPICO_CAMPANIA": topCampania,
				"SAGAS_LEGADO_TOPICO_LANZAR":   "persistent://public/default/e2e-idem-lanzar-" + sufijo,
			}})
			ctx := context.Background()
			clave := "e2e-idem-" + sufijo
			cuerpo := fmt.Sprintf(cuerpoCampana, "")
			var ids []string
			for range 2 {
				code, b, err := s.Post(ctx, "/campana-saga", cuerpo, "Idempotency-Key", clave)
				if err != nil || code != 202 {
					t.Fatalf("POST with key %s: %d %v %s", clave, code, err, b)
				}
				ids = append(ids, decodificar(t, b).ID)
			}
			if ids[0] == "" || ids[0] != ids[1] {
				t.Fatalf("the same key and body gave sagas %v", ids)
			}
			otro := strings.Replace(cuerpo, `"presupuesto":`, `"presupuesto":1`, 1)
			code, b, err := s.Post(ctx, "/campana-saga", otro, "Idempotency-Key", clave)
			if err != nil || code != 422 {
				t.Fatalf("the same key with another body: %d %v %s, want 422", code, err, b)
			}
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, clave) || !strings.Contains(e.Error, ids[0]) {
				t.Errorf("the 422 should name the key %s and its saga %s: %s", clave, ids[0], b)
			}

			// The bridge: envelope id "evt" for camp-a twice, then for camp-b.
			publicar := func(campania string, veces int) {
				t.Helper()
				cmd := exec.CommandContext(ctx, "python3", script, integracion.PulsarURL(t), "campania", "evt-"+sufijo, campania, fmt.Sprint(veces), "--topico", topCampania)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("legacy producer: %v\n%s", err, out)
				}
			}
			campA, campB := "idem-a-"+sufijo, "idem-b-"+sufijo
			publicar(campA, 2)
			publicar(campB, 1)
			fin := time.Now().Add(60 * time.Second)
			for _, campania := range []string{campA, campB} {
				for {
					code, b, err := s.Get(ctx, "/api/v1/sagas?campania_id="+campania)
					var r struct {
						Sagas []respuesta `json:"sagas"`
					}
					if err == nil && code == 200 && json.Unmarshal(b, &r) == nil && len(r.Sagas) > 0 && r.Sagas[0].Estado == "COMPLETADA" {
						if len(r.Sagas) != 1 {
							t.Fatalf("%d sagas for campaign %s, want 1: %s", len(r.Sagas), campania, b)
						}
						break
					}
					if time.Now().After(fin) {
						t.Fatalf("no completed saga for campaign %s: %d %s\n%s", campania, code, b, s.Log("coordinador"))
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			time.Sleep(time.Second) // let a duplicate be processed, if any
			if n := contarSagas(t, s, ""); n != 3 {
				t.Fatalf("%d sagas, want 3: one per Idempotency-Key and one per (envelope id, campaign)", n)
			}
		})
	}
}
