package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/coordinador/almacen"
)

// aparcarUno parks the oldest outbox row of en's store (starting a saga if
// the outbox is empty) as the relay does after the broker refused it, and
// returns its id.
func aparcarUno(t *testing.T, en *entorno) string {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	leer := func() {
		t.Helper()
		_, err := en.store.DrenarOutbox(ctx, 1, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return nil, nil // nothing acknowledged: the rows stay
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if leer(); len(ids) == 0 {
		en.hacer(http.MethodPost, "/campana-saga", cuerpoSemillas)
		leer()
	}
	if len(ids) == 0 {
		t.Fatal("no outbox row to park")
	}
	aparcados, err := en.store.RegistrarRechazos(ctx, []almacen.Rechazo{{ID: ids[0], Error: "TopicNotFound: comandos-marca"}}, 1)
	if err != nil || len(aparcados) != 1 {
		t.Fatalf("park row %d: %v, %v", ids[0], aparcados, err)
	}
	return strconv.FormatInt(ids[0], 10)
}

// An operator lists the parked rows with their saga, topic, attempts and
// last error, and sends one again: it leaves the list, the relay may claim
// it, and the re-send is in the audit log with who asked.
func TestAparcadosSeListanYSeReenvianConAuditoria(t *testing.T) {
	en := nuevoEntorno(t, func(o *Opciones) { o.Token = "tok" })
	vacia := en.hacer(http.MethodGet, "/api/v1/outbox/aparcados", "").json(t)
	if vacia["total"] != 0.0 || len(vacia["aparcados"].([]any)) != 0 {
		t.Fatalf("empty store lists %v", vacia)
	}
	id := aparcarUno(t, en)
	r := en.hacer(http.MethodGet, "/api/v1/outbox/aparcados", "")
	if r.codigo != http.StatusOK {
		t.Fatalf("GET aparcados: %d %s", r.codigo, r.cuerpo)
	}
	lista := r.json(t)
	filas := lista["aparcados"].([]any)
	if lista["total"] != 1.0 || len(filas) != 1 {
		t.Fatalf("want one parked row, got %s", r.cuerpo)
	}
	fila := filas[0].(map[string]any)
	if strconv.FormatFloat(fila["id"].(float64), 'f', -1, 64) != id || fila["saga_id"] == "" || fila["intentos"] != 1.0 ||
		fila["ultimo_error"] != "TopicNotFound: comandos-marca" || !strings.HasPrefix(fila["topico"].(string), "persistent://") && fila["topico"] == "" {
		t.Errorf("parked row shown as %v", fila)
	}
	if _, err := en.store.Saga(context.Background(), fila["saga_id"].(string)); err != nil {
		t.Errorf("saga_id %v of the parked row names no saga: %v", fila["saga_id"], err)
	}

	r = en.hacer(http.MethodPost, "/api/v1/outbox/aparcados/"+id+"/reenviar", "")
	if r.codigo != http.StatusAccepted || r.json(t)["saga_id"] != fila["saga_id"] {
		t.Fatalf("reenviar: %d %s", r.codigo, r.cuerpo)
	}
	if !strings.Contains(en.logs.String(), "reenvío manual de un mensaje aparcado") {
		t.Errorf("the re-send is not in the audit log:\n%s", en.logs.String())
	}
	if n, err := en.store.ContarAparcados(context.Background()); n != 0 || err != nil {
		t.Errorf("after the re-send %d rows parked (%v), want 0", n, err)
	}
	for _, malo := range []string{id, "0", "+" + id, "0" + id, "x", "99999999999999999999"} {
		if r := en.hacer(http.MethodPost, "/api/v1/outbox/aparcados/"+malo+"/reenviar", ""); r.codigo != http.StatusNotFound {
			t.Errorf("reenviar %q: %d %s, want 404", malo, r.codigo, r.cuerpo)
		}
	}
}
