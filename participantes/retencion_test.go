package participantes_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/participantes"
	pt "github.com/alpespartner/sagas/participantes/participantestest"
)

// TestRetencionPurgaLaBandejaYConservaLosEfectos runs a participant with a
// retention of a fraction of a second: the inbox row of a processed command
// is purged (and counted), its effect stays.
func TestRetencionPurgaLaBandejaYConservaLosEfectos(t *testing.T) {
	e := pt.Nuevo(t)
	e.Preparar(t, "prueba")
	respuestas := e.EscucharRespuestas(t)
	datos := t.TempDir()
	env := map[string]string{
		"SAGAS_PULSAR_URL": e.PulsarURL, "SAGAS_PULSAR_ADMIN_URL": e.AdminURL,
		"SAGAS_PULSAR_TENANT": e.Topologia.Tenant, "SAGAS_PULSAR_NAMESPACE": e.Topologia.Namespace,
		"SAGAS_DATA_DIR": datos, "SAGAS_METRICS_ADDR": "127.0.0.1:0",
		"SAGAS_RETENTION": "300ms", "SAGAS_RETENTION_INTERVAL": "100ms",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var salida buffer
	fin := make(chan error, 1)
	go func() {
		fin <- participantes.Correr(ctx, []string{"prueba"}, func(k string) string { return env[k] }, &salida, participantes.ServicioPrueba())
	}()
	saga := "saga-" + pt.Aleatorio(4)
	e.Publicar(t, "prueba", pt.Comando(saga, "prueba", "paso1", "Hacer", eventos.Ejecutar, map[string]any{}, nil))
	if r := respuestas.Una(t, plazo); !r.Exito || r.SagaID != saga {
		t.Fatalf("reply: %+v", r.Respuesta)
	}
	db, err := sql.Open("sqlite", filepath.Join(datos, "participante-prueba.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	contar := func(q string) int {
		var n int
		if err := db.QueryRow(q, saga).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	limite := time.Now().Add(plazo)
	for contar("SELECT COUNT(*) FROM inbox WHERE saga_id = ?") != 0 {
		if time.Now().After(limite) {
			t.Fatalf("the inbox row of %s is still there after %s with a 300ms retention", saga, plazo)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := contar("SELECT COUNT(*) FROM efectos_prueba WHERE saga_id = ?"); n != 1 {
		t.Errorf("effects of %s after the purge: %d, want 1 (effects are never purged)", saga, n)
	}
	cancel()
	if err := <-fin; err != nil {
		t.Fatalf("Correr: %v", err)
	}
	var purga struct {
		Msg   string `json:"msg"`
		Filas int    `json:"filas_bandeja"`
	}
	for linea := range strings.SplitSeq(salida.String(), "\n") {
		if json.Unmarshal([]byte(linea), &purga) == nil && purga.Msg == "purga" && purga.Filas > 0 {
			return
		}
	}
	t.Errorf("no purge logged:\n%s", salida.String())
}
