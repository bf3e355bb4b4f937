package puente

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/puente/legado"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
)

func TestPuenteClaveEventoCampaniaEsElSobreMasLaCampaniaSinAmbiguedad(t *testing.T) {
	casos := []struct {
		nombre       string
		id1, camp1   string
		id2, camp2   string
		mismaSagaQue bool
	}{
		{"a redelivery is the same saga", "env-1", "camp-1", "env-1", "camp-1", true},
		{"a reused envelope id with another campaign is another saga", "env-1", "camp-1", "env-1", "camp-2", false},
		{"another envelope id for the same campaign is another saga", "env-1", "camp-1", "env-2", "camp-1", false},
		{"a ':' in the envelope id does not move the boundary", "a:b", "c", "a", "b:c", false},
		{"an escaped-looking id is not the escaped id", "a%3Ab", "c", "a:b", "c", false},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			k1, k2 := ClaveEventoCampania(c.id1, c.camp1), ClaveEventoCampania(c.id2, c.camp2)
			if (k1 == k2) != c.mismaSagaQue {
				t.Fatalf("ClaveEventoCampania(%q, %q) = %q, (%q, %q) = %q", c.id1, c.camp1, k1, c.id2, c.camp2, k2)
			}
		})
	}
	// The keys of ids without ':' or '%' are those stored before the escaping.
	if k := ClaveEventoCampania("6f1c1f8e-2b5a", "camp-1"); k != "legado:eventos-campania:6f1c1f8e-2b5a:camp-1" {
		t.Fatalf("key changed: %q", k)
	}
	if k := ClaveLanzamiento("saga-del-bff"); k != "legado:lanzar:saga-del-bff" {
		t.Fatalf("ClaveLanzamiento = %q", k)
	}
}

func TestPuenteHuellaLanzamientoCambiaConCadaCampoDeLaCarga(t *testing.T) {
	inicio, fin := time.UnixMilli(puenteFechaInicio).UTC(), time.UnixMilli(puenteFechaFin).UTC()
	base := camposLegado{
		nombre: "n", descripcion: "d", tipo: "t", canal: "c", objetivo: "o", moneda: "USD", segmento: "s",
		presupuesto: 10, inicio: &inicio, fin: &fin,
	}
	h0, err := huellaLanzamiento(base)
	if err != nil {
		t.Fatal(err)
	}
	copia := base
	otroInicio := inicio.In(time.FixedZone("COT", -5*3600)) // the same instant
	copia.inicio = &otroInicio
	if h, _ := huellaLanzamiento(copia); h != h0 || len(h0) != 64 {
		t.Fatalf("the same payload: %q vs %q", h, h0)
	}
	despues := fin.Add(time.Millisecond)
	for nombre, cambiar := range map[string]func(*camposLegado){
		"nombre": func(c *camposLegado) { c.nombre = "m" }, "descripcion": func(c *camposLegado) { c.descripcion = "" },
		"tipo": func(c *camposLegado) { c.tipo = "x" }, "canal_publicidad": func(c *camposLegado) { c.canal = "x" },
		"objetivo": func(c *camposLegado) { c.objetivo = "x" }, "moneda": func(c *camposLegado) { c.moneda = "EUR" },
		"segmento_audiencia": func(c *camposLegado) { c.segmento = "x" },
		"presupuesto":        func(c *camposLegado) { c.presupuesto = 10.5 },
		"fecha_inicio":       func(c *camposLegado) { c.inicio = nil }, "fecha_fin": func(c *camposLegado) { c.fin = &despues },
	} {
		c := base
		cambiar(&c)
		if h, _ := huellaLanzamiento(c); h == h0 {
			t.Errorf("%s changed and the fingerprint did not", nombre)
		}
	}
}

// The rules against the real engine and store: per distinct legacy message
// one saga, a reused envelope id for another campaign another saga, a reused
// launch id with another payload or too long for its column refused as poison.
func TestPuenteConElAlmacenRealUnaSagaPorMensajeDistinto(t *testing.T) {
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
	m := motor.Nuevo(motor.Opciones{
		Store: store, Catalogo: saga.CatalogoPorDefecto(), Topologia: eventos.TopologiaPorDefecto,
		Comandos: comandos, Eventos: evs, Logger: slog.New(slog.DiscardHandler),
	})
	esquema := puenteEsquemaLegado(t, legado.EventoCampaniaCreada)
	esquemaL := puenteEsquemaLegado(t, legado.ComandoLanzarCampaniaCompleta)
	p, reg := puenteNuevo(t, m, &puenteFuenteFalsa{versiones: map[int64]string{0: esquema, 1: esquemaL}})
	campania := p.manejador(p.topicoCampania, solicitudCampana)
	lanzar := p.manejador(p.topicoLanzar, solicitudLanzamiento)
	enviar := func(h bus.Manejador, carga []byte, version int64) error {
		return h(ctx, puenteMensajeFalso{carga: carga, version: puenteVersion(version)})
	}

	a := puenteCodificar(t, esquema, puenteValoresCampania("reusado", "camp-a", "CampaniaCreadaPayload"))
	b := puenteCodificar(t, esquema, puenteValoresCampania("reusado", "camp-b", "CampaniaCreadaPayload"))
	l := puenteCodificar(t, esquemaL, puenteValoresLanzar("saga-del-bff", "LanzarCampaniaCompletaPayload"))
	otra := puenteValoresLanzar("saga-del-bff", "LanzarCampaniaCompletaPayload")
	carga := maps.Clone(otra["data"].(map[string]any)["LanzarCampaniaCompletaPayload"].(map[string]any))
	carga["nombre"] = "Otro lanzamiento"
	otra["data"] = map[string]any{"LanzarCampaniaCompletaPayload": carga}
	for _, e := range []struct {
		h       bus.Manejador
		carga   []byte
		version int64
	}{{campania, a, 0}, {campania, a, 0}, {campania, b, 0}, {lanzar, l, 1}, {lanzar, l, 1}} {
		if err := enviar(e.h, e.carga, e.version); err != nil {
			t.Fatal(err)
		}
	}
	err = enviar(lanzar, puenteCodificar(t, esquemaL, otra), 1)
	if !errors.Is(err, bus.ErrPermanente) || !errors.Is(err, almacen.ErrClaveReutilizada) || !strings.Contains(err.Error(), "saga-del-bff") {
		t.Fatalf("reused launch id with another payload: %v; want a permanent ErrClaveReutilizada naming saga-del-bff", err)
	}
	// A launch id longer than the idempotency key column fails the same way
	// on every delivery: poison, dead-lettered at once, no saga.
	larga := puenteCodificar(t, esquemaL, puenteValoresLanzar(strings.Repeat("l", 300), "LanzarCampaniaCompletaPayload"))
	if err := enviar(lanzar, larga, 1); !errors.Is(err, bus.ErrPermanente) || !errors.Is(err, almacen.ErrInvalido) {
		t.Fatalf("launch id of 300 characters: %v; want a permanent almacen.ErrInvalido", err)
	}

	sagas, err := store.Listar(ctx, almacen.Filtro{})
	if err != nil {
		t.Fatal(err)
	}
	var campanias []string
	for _, s := range sagas {
		campanias = append(campanias, s.Tipo+" "+s.CampaniaID)
	}
	slices.Sort(campanias)
	quiere := []string{"campana camp-a", "campana camp-b", "lanzar-campania-completa " + CampaniaDeLanzamiento("saga-del-bff")}
	if !slices.Equal(campanias, quiere) {
		t.Fatalf("sagas = %q, want %q", campanias, quiere)
	}
	if sg, err := store.Saga(ctx, "saga-del-bff"); err != nil || !strings.Contains(string(sg.Datos), "Lanzamiento Go") {
		t.Fatalf("the launch saga is not the first command's: %v %s", err, sg.Datos)
	}
	for _, c := range []struct {
		topico, resultado string
		n                 float64
	}{
		{p.topicoCampania, ResultadoIniciada, 2}, {p.topicoCampania, ResultadoDuplicado, 1},
		{p.topicoLanzar, ResultadoIniciada, 1}, {p.topicoLanzar, ResultadoDuplicado, 1},
		{p.topicoLanzar, ResultadoDeadLetter, 2}, // the reused id and the long one
	} {
		if n := puenteCuenta(t, reg, c.topico, c.resultado); n != c.n {
			t.Errorf("sagas_puente_eventos_total{%s,%s} = %v, want %v", bus.NombreTopico(c.topico), c.resultado, n, c.n)
		}
	}
}

// On the real broker, with the Python producer: a launch command re-sent
// is one saga; its id reused for another command goes to the dead-letter
// topic with the reason.
func TestPuenteLanzamientoConIdReusadoYOtraCargaVaAlDeadLetter(t *testing.T) {
	puentePython(t)
	e := puenteIntegracion(t)
	dlq, err := e.cliente.Subscribe(pulsar.ConsumerOptions{
		Topic: eventos.DLQ(e.lanzar), SubscriptionName: "prueba-dlq",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	id := "saga-" + uuid.NewString()
	puenteProductorPython(t, e.broker, "lanzar", e.lanzar, id, "py", 2)
	e.esperarCuentas(t, e.lanzar, 1, 1, 0)
	puenteProductorPython(t, e.broker, "lanzar", e.lanzar, id, "otro", 1) // "Lanzamiento otro"
	e.esperarCuentas(t, e.lanzar, 1, 1, 1)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := dlq.Receive(ctx)
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if motivo := m.Properties()["dlq_motivo"]; !strings.Contains(motivo, ClaveLanzamiento(id)) || !strings.Contains(motivo, "ya creó la saga "+id) {
		t.Errorf("dlq_motivo = %q, want the reused key and saga %s", motivo, id)
	}
	if sagas := e.ini.sagas(); len(sagas) != 1 || sagas[0].SagaID != id || sagas[0].HuellaSolicitud == "" {
		t.Errorf("sagas = %+v, want one, %s, with a fingerprint", sagas, id)
	}
}
