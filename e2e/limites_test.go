package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/sistema"
)

// cuerpoGrande is a campana request with n influencers named nombre, sent
// as a client without HTML escaping would.
func cuerpoGrande(t *testing.T, n int, nombre string) string {
	t.Helper()
	infl := make([]map[string]string, n)
	for i := range infl {
		infl[i] = map[string]string{"nombre": nombre, "plataforma": fmt.Sprintf("p%d", i)}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{
		"nombre": "Grande", "tipo": "influencer_marketing", "presupuesto": 1000,
		"marca": map[string]string{"id_marca": "m-1", "nombre_marca": "Alpes <&>"}, "influencers": infl,
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestLaSolicitudValidaMasGrandeCompletaLaSagaYUnaMasSeRechaza sends the
// largest request: 1000 influencers, names of 200 characters that JSON
// escapes worst (control characters take six bytes, quotes two) or that
// HTML escaping used to grow six-fold ('<'), as much as fits in
// eventos.MaximoEntrada. It completes on the real broker and each store,
// with every influencer notified; one influencer more is 400 and an input
// past the limit is 413 naming it.
func TestLaSolicitudValidaMasGrandeCompletaLaSagaYUnaMasSeRechaza(t *testing.T) {
	nombre := strings.Repeat("<\"\u0001", 40) + strings.Repeat("<", 80) // 200 characters
	enAmbosAlmacenes(t, func(t *testing.T, s *sistema.Sistema) {
		ctx := context.Background()
		cuerpo := cuerpoGrande(t, 1000, nombre)
		code, b, err := s.Post(ctx, "/campana-saga?esperar=90s", cuerpo)
		if err != nil || code != 200 {
			t.Fatalf("largest request: %d %v %.500s", code, err, b)
		}
		r := decodificar(t, b)
		if r.Estado != "COMPLETADA" {
			t.Fatalf("largest request: %.1000s", b)
		}
		if activos := efectosActivos(t, s, r.ID); activos["influencer"] != 1000 {
			t.Fatalf("influencer effects: %v, want 1000", activos)
		}
		if code, b, _ := s.Post(ctx, "/campana-saga", cuerpoGrande(t, 1001, "x")); code != 400 || !strings.Contains(string(b), "influencers") {
			t.Fatalf("1001 influencers: %d %.300s", code, b)
		}
		// 200 characters, each escaped to six bytes: past MaximoEntrada
		// while the body stays under its 1 MiB limit.
		grande := strings.Repeat("\u0001", 100) + strings.Repeat("<", 100)
		code, b, _ = s.Post(ctx, "/campana-saga", cuerpoGrande(t, 1000, grande))
		if code != 413 || !strings.Contains(string(b), fmt.Sprint(eventos.MaximoEntrada)) {
			t.Fatalf("input past the limit: %d %.300s", code, b)
		}
	})
}
