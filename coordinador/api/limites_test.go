package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/eventos"
)

// cuerpoDeEntrada is a valid campana request with campania_id given (so the
// input is the request as the saga carries it) whose input, encoded, has
// exactly n bytes: 1000 influencers with names of characters that JSON
// escapes (and, without HTML escaping, '<', which it no longer does).
func cuerpoDeEntrada(t *testing.T, n int) string {
	t.Helper()
	infl := make([]map[string]string, maximoInfluencers)
	for i := range infl {
		infl[i] = map[string]string{"nombre": strings.Repeat("<\"\u0001", 40), "plataforma": "p"}
	}
	armar := func(relleno int) (string, int) {
		sol := map[string]any{
			"campania_id": "c-limite", "nombre": "n", "tipo": "t", "presupuesto": 1,
			"marca": map[string]string{"id_marca": "m", "nombre_marca": strings.Repeat("x", relleno)}, "influencers": infl,
		}
		b, err := json.Marshal(sol)
		if err != nil {
			t.Fatal(err)
		}
		var s solicitudCampana
		var cs campos
		if err := decodificar(b, &s, &cs); err != nil {
			t.Fatal(err)
		}
		e, err := eventos.CodificarJSON(s.entrada(s.CampaniaID))
		if err != nil {
			t.Fatal(err)
		}
		return string(b), len(e)
	}
	_, base := armar(0)
	// The influencers' platforms (up to largoTexto characters each) and the
	// brand's name pad to the exact byte.
	for i := 0; i < len(infl) && base < n-largoTexto; i++ {
		extra := min(largoTexto-1, n-largoTexto-base)
		infl[i]["plataforma"] += strings.Repeat("x", extra)
		base += extra
	}
	if _, b := armar(0); b != base {
		t.Fatalf("padding arithmetic: %d, want %d", b, base)
	}
	relleno := n - base
	if relleno < 0 || relleno > largoTexto {
		t.Fatalf("cannot pad %d bytes to %d with the brand's name", base, n)
	}
	cuerpo, tam := armar(relleno)
	if tam != n {
		t.Fatalf("input is %d bytes, want %d", tam, n)
	}
	return cuerpo
}

func TestEntradaEnElLimiteSeAceptaYUnByteMasEs413SinGuardarNada(t *testing.T) {
	en := nuevoEntorno(t)
	antes := en.sagas()
	r := en.hacer(http.MethodPost, "/campana-saga", cuerpoDeEntrada(t, eventos.MaximoEntrada+1))
	if r.codigo != http.StatusRequestEntityTooLarge || !strings.Contains(r.json(t)["error"].(string), fmt.Sprint(eventos.MaximoEntrada)) {
		t.Fatalf("one byte over: %d %s", r.codigo, r.cuerpo)
	}
	en.nadaCreado(antes)
	if r := en.hacer(http.MethodPost, "/campana-saga", cuerpoDeEntrada(t, eventos.MaximoEntrada)); r.codigo != http.StatusAccepted {
		t.Fatalf("at the limit: %d %.300s", r.codigo, r.cuerpo)
	}
}
