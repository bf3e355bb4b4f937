package inspector_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/api"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/chromedp/chromedp"
)

// An operator opens the inspector, sees the parked outbox row with its
// saga, topic, attempts and last error, sends it again, and the panel then
// says none is parked. The API runs on a SQLite store in the test; the row
// is parked as the relay parks a row the broker refused.
func TestElOperadorVeYReenviaUnMensajeAparcado(t *testing.T) {
	exe := chromium(t)
	ctx := context.Background()
	store, err := almacen.Abrir(ctx, almacen.Config{Tipo: "sqlite", Ruta: filepath.Join(t.TempDir(), "sagas.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	comandos, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		t.Fatal(err)
	}
	avisos := motor.NuevosAvisos()
	m := motor.Nuevo(motor.Opciones{Store: store, Catalogo: saga.CatalogoPorDefecto(), Topologia: eventos.TopologiaPorDefecto,
		Comandos: comandos, Eventos: evs, Logger: slog.New(slog.DiscardHandler), Observador: avisos})
	e, err := api.Nuevo(api.Opciones{Iniciador: m, Consultas: store, Esperas: avisos, Outbox: store,
		Token: tokenAPI, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/campana-saga", strings.NewReader(strings.Replace(cuerpoCampana, "%s", "", 1)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tokenAPI)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	var fila almacen.Mensaje
	if _, err := store.DrenarOutbox(ctx, 1, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
		fila = ms[0]
		return nil, nil
	}); err != nil || fila.ID == 0 {
		t.Fatalf("no outbox row after POST %d: %v", r.StatusCode, err)
	}
	if _, err := store.RegistrarRechazos(ctx, []almacen.Rechazo{{ID: fila.ID, Error: "IncompatibleSchema: esquema rechazado"}}, 1); err != nil {
		t.Fatal(err)
	}

	p := abrirNavegador(t, exe, nil)
	p.hacer("open the inspector with the token",
		chromedp.Navigate(srv.URL+"/inspector/"),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('sagas.inspector.token', '`+tokenAPI+`')`),
		chromedp.Reload())
	p.esperar("the parked row", `document.getElementById('aparcados-total').textContent === '1'
		&& document.querySelectorAll('#aparcados-filas tr').length === 1`, 10*time.Second)
	texto := evaluar[string](p, `document.getElementById('aparcados-filas').innerText`)
	for _, quiere := range []string{fila.Clave, "comandos-influencer", "IncompatibleSchema: esquema rechazado", fila.Tipo} {
		if !strings.Contains(texto, quiere) {
			t.Errorf("the parked row reads %q, without %q", texto, quiere)
		}
	}
	if enlace := evaluar[string](p, `document.querySelector('#aparcados-filas a').getAttribute('href')`); enlace != "#saga="+fila.Clave {
		t.Errorf("the saga link is %q", enlace)
	}
	p.hacer("re-send it", chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#aparcados-filas button`)))
	p.esperar("no parked row left", `document.getElementById('aparcados-total').textContent === '0'
		&& /reenviado/.test(document.getElementById('aparcados-mensaje').textContent)`, 10*time.Second)
	if n, err := store.ContarAparcados(ctx); n != 0 || err != nil {
		t.Errorf("after the re-send the store holds %d parked rows (%v)", n, err)
	}
	if errs := p.errores(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
