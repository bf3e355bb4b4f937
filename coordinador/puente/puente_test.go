package puente

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/puente/legado"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/google/uuid"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Values the Python legacy producer (testdata/productor_legado.py) sends.
const (
	puenteFechaInicio = 1767225600000 // 2026-01-01T00:00:00Z
	puenteFechaFin    = 1769904000000 // 2026-02-01T00:00:00Z
)

// puenteIniciadorFalso records the sagas it starts and de-duplicates like the
// store: the same idempotency key or saga id returns the existing saga, and
// the same key with another fingerprint is refused.
type puenteIniciadorFalso struct {
	mu       sync.Mutex
	creadas  []motor.Solicitud
	ids      []string
	porClave map[string]string
	huellas  map[string]string
	llamadas int
	err      error
}

func (f *puenteIniciadorFalso) Iniciar(_ context.Context, sol motor.Solicitud) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.llamadas++
	if f.err != nil {
		return "", false, f.err
	}
	if id, ok := f.porClave[sol.ClaveIdempotencia]; ok && sol.ClaveIdempotencia != "" {
		if h := f.huellas[sol.ClaveIdempotencia]; h != "" && sol.HuellaSolicitud != "" && h != sol.HuellaSolicitud {
			return "", false, &almacen.ClaveReutilizadaError{Clave: sol.ClaveIdempotencia, SagaID: id}
		}
		return id, false, nil
	}
	if sol.SagaID != "" && slices.Contains(f.ids, sol.SagaID) {
		return sol.SagaID, false, nil
	}
	id := sol.SagaID
	if id == "" {
		id = fmt.Sprintf("saga-%d", len(f.ids)+1)
	}
	if f.porClave == nil {
		f.porClave = map[string]string{}
	}
	f.porClave[sol.ClaveIdempotencia] = id
	if f.huellas == nil {
		f.huellas = map[string]string{}
	}
	f.huellas[sol.ClaveIdempotencia] = sol.HuellaSolicitud
	f.creadas = append(f.creadas, sol)
	f.ids = append(f.ids, id)
	return id, true, nil
}

func (f *puenteIniciadorFalso) sagas() []motor.Solicitud {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.creadas)
}

// puenteFuenteFalsa serves schemas by version and counts fetches.
type puenteFuenteFalsa struct {
	mu        sync.Mutex
	versiones map[int64]string
	tipo      string
	err       error
	pedidos   map[int64]int
}

func (f *puenteFuenteFalsa) EsquemaVersion(_ context.Context, _ string, version int64) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pedidos == nil {
		f.pedidos = map[int64]int{}
	}
	f.pedidos[version]++
	if f.err != nil {
		return "", "", f.err
	}
	texto, ok := f.versiones[version]
	if !ok {
		return "", "", fmt.Errorf("versión %d: %w", version, bus.ErrEsquemaNoEncontrado)
	}
	tipo := f.tipo
	if tipo == "" {
		tipo = "AVRO"
	}
	return tipo, texto, nil
}

// puenteFuenteContada counts the fetches of a real schema source.
type puenteFuenteContada struct {
	FuenteEsquemas
	mu      sync.Mutex
	pedidos map[int64]int
}

func (f *puenteFuenteContada) EsquemaVersion(ctx context.Context, topico string, version int64) (string, string, error) {
	f.mu.Lock()
	if f.pedidos == nil {
		f.pedidos = map[int64]int{}
	}
	f.pedidos[version]++
	f.mu.Unlock()
	return f.FuenteEsquemas.EsquemaVersion(ctx, topico, version)
}

// puenteMensajeFalso is a consumed message with a payload and a schema version.
type puenteMensajeFalso struct {
	pulsar.Message
	carga   []byte
	version []byte
}

func (m puenteMensajeFalso) Payload() []byte               { return m.carga }
func (m puenteMensajeFalso) SchemaVersion() []byte         { return m.version }
func (m puenteMensajeFalso) RedeliveryCount() uint32       { return 0 }
func (m puenteMensajeFalso) Properties() map[string]string { return nil }

type puenteClienteNulo struct{ pulsar.Client }

func puenteVersion(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func puenteEsquemaLegado(t *testing.T, nombre string) string {
	t.Helper()
	s, err := legado.Esquema(nombre)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// puenteEsquemaModificado returns the legacy schema with the fields of the
// envelope and of the payload in reverse order, an extra optional field in
// each, and, when namespace is set, both records in that namespace.
func puenteEsquemaModificado(t *testing.T, nombre, namespace string) string {
	t.Helper()
	var sobre map[string]any
	if err := json.Unmarshal([]byte(puenteEsquemaLegado(t, nombre)), &sobre); err != nil {
		t.Fatal(err)
	}
	modificar := func(rec map[string]any, extra map[string]any) {
		campos := rec["fields"].([]any)
		slices.Reverse(campos)
		rec["fields"] = append(campos, extra)
		if namespace != "" {
			rec["namespace"] = namespace
		}
	}
	for _, c := range sobre["fields"].([]any) {
		c := c.(map[string]any)
		if c["name"] == "data" {
			modificar(c["type"].([]any)[1].(map[string]any),
				map[string]any{"name": "prioridad", "type": []any{"null", "int"}, "default": nil})
		}
	}
	modificar(sobre, map[string]any{"name": "origen", "type": []any{"null", "string"}, "default": nil})
	b, err := json.Marshal(sobre)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// puenteValoresCampania is an EventoCampaniaCreada as hamba/avro encodes it
// from a map: union primitives bare, the nested record wrapped in its full name.
func puenteValoresCampania(id, idCampania, nombrePayload string) map[string]any {
	return map[string]any{
		"id": id, "time": int64(1765794600000), "ingestion": int64(1765794600005), "specversion": "v1",
		"type": "EventoCampaniaCreada", "datacontenttype": "AVRO", "service_name": "campanias", "origen": "go",
		"data": map[string]any{nombrePayload: map[string]any{
			"id_campania": idCampania, "nombre": "Campaña " + idCampania, "descripcion": "desde Go",
			"estado": "ACTIVA", "tipo": "influencer", "canal_publicidad": "youtube", "objetivo": "alcance",
			"fecha_inicio": int64(puenteFechaInicio), "fecha_fin": int64(puenteFechaFin),
			"fecha_creacion": int64(1765794600000), "presupuesto": 987.25, "moneda": "EUR",
			"codigo_campania": "GO-1", "segmento_audiencia": "familias", "activo": true, "prioridad": 3,
		}},
	}
}

func puenteValoresLanzar(id, nombrePayload string) map[string]any {
	return map[string]any{
		"id": id, "time": int64(1765794600000), "ingestion": int64(1765794600005), "specversion": "v1",
		"type": "ComandoLanzarCampaniaCompleta", "datacontenttype": "AVRO", "service_name": "bff", "origen": "go",
		"data": map[string]any{nombrePayload: map[string]any{
			"nombre": "Lanzamiento Go", "descripcion": "completa", "tipo": "afiliados", "canal_publicidad": "tiktok",
			"objetivo": "conversiones", "fecha_inicio": int64(puenteFechaInicio), "fecha_fin": int64(puenteFechaFin),
			"presupuesto": 4200.25, "moneda": "USD", "segmento_audiencia": "gamers", "prioridad": 1,
		}},
	}
}

// puenteCodificar encodes valores with the schema, dropping the keys the
// schema has no field for (so one value map serves every schema version).
func puenteCodificar(t *testing.T, texto string, valores map[string]any) []byte {
	t.Helper()
	s, err := avro.ParseWithCache(texto, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := avro.Marshal(s, puenteRecortar(s, valores))
	if err != nil {
		t.Fatalf("codificar: %v", err)
	}
	return b
}

func puenteRecortar(s avro.Schema, v any) any {
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := map[string]any{}
		for _, f := range s.Fields() {
			out[f.Name()] = puenteRecortar(f.Type(), m[f.Name()])
		}
		return out
	case *avro.UnionSchema:
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v
		}
		for _, t := range s.Types() {
			if n, ok := t.(avro.NamedSchema); ok {
				for _, dentro := range m {
					return map[string]any{n.FullName(): puenteRecortar(t, dentro)}
				}
			}
		}
	}
	return v
}

func puenteNuevo(t *testing.T, ini Iniciador, fuente FuenteEsquemas) (*Puente, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := Nuevo(Opciones{
		Iniciador: ini, Cliente: puenteClienteNulo{}, Esquemas: fuente, Registro: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

func puenteCuenta(t *testing.T, reg *prometheus.Registry, topico, resultado string) float64 {
	t.Helper()
	familias, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	etiqueta := bus.NombreTopico(topico)
	for _, f := range familias {
		if f.GetName() != "sagas_puente_eventos_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			etiquetas := map[string]string{}
			for _, l := range m.GetLabel() {
				etiquetas[l.GetName()] = l.GetValue()
			}
			if etiquetas["topic"] == etiqueta && etiquetas["resultado"] == resultado {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func puenteFecha(ms int64) *time.Time {
	t := time.UnixMilli(ms).UTC()
	return &t
}

func puenteEntradaCampana(t *testing.T, sol motor.Solicitud) eventos.EntradaCampana {
	t.Helper()
	var e eventos.EntradaCampana
	if err := json.Unmarshal(sol.Datos, &e); err != nil {
		t.Fatalf("datos de la saga %s: %v", sol.Datos, err)
	}
	return e
}

func puenteEntradaLanzamiento(t *testing.T, sol motor.Solicitud) eventos.EntradaLanzamiento {
	t.Helper()
	var e eventos.EntradaLanzamiento
	if err := json.Unmarshal(sol.Datos, &e); err != nil {
		t.Fatalf("datos de la saga %s: %v", sol.Datos, err)
	}
	return e
}

func TestPuenteLeeCamposPorNombreConOtroOrdenCamposExtraYNamespace(t *testing.T) {
	campania := puenteEsquemaModificado(t, legado.EventoCampaniaCreada, "com.otro.productor")
	lanzar := puenteEsquemaModificado(t, legado.ComandoLanzarCampaniaCompleta, "")
	fuente := &puenteFuenteFalsa{versiones: map[int64]string{4: campania, 7: lanzar}}
	ini := &puenteIniciadorFalso{}
	p, reg := puenteNuevo(t, ini, fuente)
	ctx := context.Background()

	carga := puenteCodificar(t, campania, puenteValoresCampania("env-1", "camp-1", "com.otro.productor.CampaniaCreadaPayload"))
	if err := p.manejador(p.topicoCampania, solicitudCampana)(ctx, puenteMensajeFalso{carga: carga, version: puenteVersion(4)}); err != nil {
		t.Fatal(err)
	}
	carga = puenteCodificar(t, lanzar, puenteValoresLanzar("lanzar-1", "LanzarCampaniaCompletaPayload"))
	if err := p.manejador(p.topicoLanzar, solicitudLanzamiento)(ctx, puenteMensajeFalso{carga: carga, version: puenteVersion(7)}); err != nil {
		t.Fatal(err)
	}

	sagas := ini.sagas()
	if len(sagas) != 2 {
		t.Fatalf("sagas iniciadas = %d, se esperan 2", len(sagas))
	}
	sol := sagas[0]
	if sol.Tipo != saga.TipoCampana || sol.CampaniaID != "camp-1" || sol.SagaID != "" ||
		sol.ClaveIdempotencia != "legado:eventos-campania:env-1:camp-1" {
		t.Errorf("solicitud de campana = %+v", sol)
	}
	quiere := eventos.EntradaCampana{
		CampaniaID: "camp-1", Nombre: "Campaña camp-1", Tipo: "influencer", Presupuesto: 987.25,
		Descripcion: "desde Go", CanalPublicidad: "youtube", Objetivo: "alcance", SegmentoAudiencia: "familias",
		Moneda: "EUR", FechaInicio: puenteFecha(puenteFechaInicio), FechaFin: puenteFecha(puenteFechaFin),
	}
	if got := puenteEntradaCampana(t, sol); !reflect.DeepEqual(got, quiere) {
		t.Errorf("entrada de campana\n got %+v\nwant %+v", got, quiere)
	}

	sol = sagas[1]
	if sol.Tipo != saga.TipoLanzarCampaniaCompleta || sol.SagaID != "lanzar-1" || sol.ClaveIdempotencia != "legado:lanzar:lanzar-1" ||
		sol.CampaniaID != CampaniaDeLanzamiento("lanzar-1") {
		t.Errorf("solicitud de lanzamiento = %+v", sol)
	}
	quiereL := eventos.EntradaLanzamiento{
		CampaniaID: CampaniaDeLanzamiento("lanzar-1"), Nombre: "Lanzamiento Go", Descripcion: "completa", Tipo: "afiliados",
		CanalPublicidad: "tiktok", Objetivo: "conversiones", FechaInicio: *puenteFecha(puenteFechaInicio),
		FechaFin: *puenteFecha(puenteFechaFin), Presupuesto: 4200.25, Moneda: "USD",
		Comision:            eventos.Comision{Tipo: "porcentaje", Valor: 10},
		CriteriosAfiliados:  eventos.CriteriosAfiliados{SegmentoAudiencia: "gamers"},
		CanalesNotificacion: []string{"email"},
	}
	if got := puenteEntradaLanzamiento(t, sol); !reflect.DeepEqual(got, quiereL) {
		t.Errorf("entrada de lanzamiento\n got %+v\nwant %+v", got, quiereL)
	}
	if n := puenteCuenta(t, reg, p.topicoCampania, ResultadoIniciada); n != 1 {
		t.Errorf("iniciadas en eventos-campania = %v, se espera 1", n)
	}
	if n := puenteCuenta(t, reg, p.topicoLanzar, ResultadoIniciada); n != 1 {
		t.Errorf("iniciadas en comando-lanzar-campania-completa = %v, se espera 1", n)
	}
}

func TestPuenteCampaniaDeLanzamientoEsDeterministaYDistintaPorId(t *testing.T) {
	a, b := CampaniaDeLanzamiento("x"), CampaniaDeLanzamiento("x")
	if a != b || a == CampaniaDeLanzamiento("y") {
		t.Fatalf("CampaniaDeLanzamiento: %q, %q, %q", a, b, CampaniaDeLanzamiento("y"))
	}
	if _, err := uuid.Parse(a); err != nil {
		t.Fatalf("CampaniaDeLanzamiento(x) = %q no es un UUID: %v", a, err)
	}
}

func TestPuenteMismoMensajeUnaSagaYMismoIdConOtraCampaniaOtraSaga(t *testing.T) {
	esquema := puenteEsquemaLegado(t, legado.EventoCampaniaCreada)
	esquemaL := puenteEsquemaLegado(t, legado.ComandoLanzarCampaniaCompleta)
	fuente := &puenteFuenteFalsa{versiones: map[int64]string{0: esquema, 1: esquemaL}}
	ini := &puenteIniciadorFalso{}
	p, reg := puenteNuevo(t, ini, fuente)
	campania := p.manejador(p.topicoCampania, solicitudCampana)
	lanzar := p.manejador(p.topicoLanzar, solicitudLanzamiento)
	ctx := context.Background()
	enviar := func(m bus.Manejador, carga []byte, version int64) {
		t.Helper()
		if err := m(ctx, puenteMensajeFalso{carga: carga, version: puenteVersion(version)}); err != nil {
			t.Fatal(err)
		}
	}

	a := puenteCodificar(t, esquema, puenteValoresCampania("reusado", "camp-a", "CampaniaCreadaPayload"))
	enviar(campania, a, 0)
	enviar(campania, a, 0)
	enviar(campania, puenteCodificar(t, esquema, puenteValoresCampania("reusado", "camp-b", "CampaniaCreadaPayload")), 0)
	l := puenteCodificar(t, esquemaL, puenteValoresLanzar("saga-del-bff", "LanzarCampaniaCompletaPayload"))
	enviar(lanzar, l, 1)
	enviar(lanzar, l, 1)

	var claves []string
	for _, s := range ini.sagas() {
		claves = append(claves, s.ClaveIdempotencia)
	}
	quiere := []string{
		"legado:eventos-campania:reusado:camp-a", "legado:eventos-campania:reusado:camp-b", "legado:lanzar:saga-del-bff",
	}
	if !slices.Equal(claves, quiere) {
		t.Errorf("sagas iniciadas por clave = %q, se esperan %q", claves, quiere)
	}
	for _, c := range []struct {
		topico, resultado string
		n                 float64
	}{
		{p.topicoCampania, ResultadoIniciada, 2}, {p.topicoCampania, ResultadoDuplicado, 1},
		{p.topicoLanzar, ResultadoIniciada, 1}, {p.topicoLanzar, ResultadoDuplicado, 1},
		{p.topicoCampania, ResultadoDeadLetter, 0},
	} {
		if n := puenteCuenta(t, reg, c.topico, c.resultado); n != c.n {
			t.Errorf("sagas_puente_eventos_total{%s,%s} = %v, se espera %v", bus.NombreTopico(c.topico), c.resultado, n, c.n)
		}
	}
	if n := fuente.pedidos[0] + fuente.pedidos[1]; n != 2 {
		t.Errorf("esquemas pedidos al registro = %d, se esperan 2 (uno por versión, luego en caché)", n)
	}
}

func TestPuenteMandaADeadLetterLoQueNoPuedeConvertirEnSaga(t *testing.T) {
	esquema := puenteEsquemaLegado(t, legado.EventoCampaniaCreada)
	bueno := puenteValoresCampania("env", "camp", "CampaniaCreadaPayload")
	con := func(cambiar func(v, datos map[string]any)) []byte {
		v := puenteValoresCampania("env", "camp", "CampaniaCreadaPayload")
		cambiar(v, v["data"].(map[string]any)["CampaniaCreadaPayload"].(map[string]any))
		return puenteCodificar(t, esquema, v)
	}
	// presupuesto written as a string by a careless producer.
	var sobre map[string]any
	if err := json.Unmarshal([]byte(esquema), &sobre); err != nil {
		t.Fatal(err)
	}
	for _, c := range sobre["fields"].([]any) {
		if c := c.(map[string]any); c["name"] == "data" {
			for _, f := range c["type"].([]any)[1].(map[string]any)["fields"].([]any) {
				if f := f.(map[string]any); f["name"] == "presupuesto" {
					f["type"] = []any{"null", "string"}
				}
			}
		}
	}
	b, err := json.Marshal(sobre)
	if err != nil {
		t.Fatal(err)
	}
	esquemaTexto := string(b)
	valoresTexto := puenteValoresCampania("env", "camp", "CampaniaCreadaPayload")
	valoresTexto["data"].(map[string]any)["CampaniaCreadaPayload"].(map[string]any)["presupuesto"] = "mil"
	correcto := puenteCodificar(t, esquema, bueno)

	casos := []struct {
		nombre  string
		carga   []byte
		version []byte
		fuente  *puenteFuenteFalsa
		ini     *puenteIniciadorFalso
		motivo  string
	}{
		{nombre: "sin versión de esquema", carga: correcto, motivo: "sin versión de esquema"},
		{nombre: "versión desconocida", carga: correcto, version: puenteVersion(9), motivo: "esquema no encontrado"},
		{nombre: "bytes que no son avro", carga: []byte("esto no es avro"), version: puenteVersion(0), motivo: "avro: decode union"},
		{nombre: "record truncado", carga: correcto[:len(correcto)/2], version: puenteVersion(0), motivo: "EOF"},
		{nombre: "bytes de más", carga: append(slices.Clone(correcto), 0, 0), version: puenteVersion(0), motivo: "no son un record"},
		{nombre: "sin id de sobre", carga: con(func(v, _ map[string]any) { v["id"] = nil }), version: puenteVersion(0), motivo: "sin id"},
		{nombre: "id de sobre vacío", carga: con(func(v, _ map[string]any) { v["id"] = "" }), version: puenteVersion(0), motivo: "sin id"},
		{nombre: "sin data", carga: con(func(v, _ map[string]any) { v["data"] = nil }), version: puenteVersion(0), motivo: "sin data"},
		{nombre: "sin id_campania", carga: con(func(_, d map[string]any) { d["id_campania"] = nil }), version: puenteVersion(0), motivo: "sin id_campania"},
		{nombre: "campo con otro tipo", carga: puenteCodificar(t, esquemaTexto, valoresTexto), version: puenteVersion(1), motivo: "presupuesto es string"},
		{nombre: "esquema no avro", carga: correcto, version: puenteVersion(0), fuente: &puenteFuenteFalsa{
			versiones: map[int64]string{0: esquema}, tipo: "JSON"}, motivo: "no AVRO"},
		{nombre: "el motor rechaza la entrada", carga: correcto, version: puenteVersion(0), ini: &puenteIniciadorFalso{
			err: fmt.Errorf("%w: tipo desconocido", motor.ErrEntradaInvalida)}, motivo: "tipo desconocido"},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			fuente := c.fuente
			if fuente == nil {
				fuente = &puenteFuenteFalsa{versiones: map[int64]string{0: esquema, 1: esquemaTexto}}
			}
			ini := c.ini
			if ini == nil {
				ini = &puenteIniciadorFalso{}
			}
			p, reg := puenteNuevo(t, ini, fuente)
			err := p.manejador(p.topicoCampania, solicitudCampana)(context.Background(), puenteMensajeFalso{carga: c.carga, version: c.version})
			if !errors.Is(err, bus.ErrPermanente) {
				t.Fatalf("error = %v, se espera uno que envuelva bus.ErrPermanente", err)
			}
			if !strings.Contains(err.Error(), c.motivo) {
				t.Errorf("error = %v, debe decir %q", err, c.motivo)
			}
			if len(ini.sagas()) != 0 {
				t.Errorf("se inició una saga: %+v", ini.sagas())
			}
			if n := puenteCuenta(t, reg, p.topicoCampania, ResultadoDeadLetter); n != 1 {
				t.Errorf("dead letters contados = %v, se espera 1", n)
			}
		})
	}
}

func TestPuenteReintentaLosFallosPasajeros(t *testing.T) {
	esquema := puenteEsquemaLegado(t, legado.EventoCampaniaCreada)
	carga := puenteCodificar(t, esquema, puenteValoresCampania("env", "camp", "CampaniaCreadaPayload"))
	casos := []struct {
		nombre string
		fuente *puenteFuenteFalsa
		ini    *puenteIniciadorFalso
	}{
		{"registro de esquemas caído", &puenteFuenteFalsa{err: errors.New("connection refused")}, &puenteIniciadorFalso{}},
		{"base de datos caída", &puenteFuenteFalsa{versiones: map[int64]string{0: esquema}},
			&puenteIniciadorFalso{err: errors.New("database is locked")}},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			p, reg := puenteNuevo(t, c.ini, c.fuente)
			m := p.manejador(p.topicoCampania, solicitudCampana)
			err := m(context.Background(), puenteMensajeFalso{carga: carga, version: puenteVersion(0)})
			if err == nil || errors.Is(err, bus.ErrPermanente) {
				t.Fatalf("error = %v, se espera uno reintentable", err)
			}
			for _, r := range []string{ResultadoIniciada, ResultadoDuplicado, ResultadoDeadLetter} {
				if n := puenteCuenta(t, reg, p.topicoCampania, r); n != 0 {
					t.Errorf("%s = %v, se espera 0", r, n)
				}
			}
			// The failure was not cached: once the dependency is back, the same message starts its saga.
			c.fuente.err, c.ini.err = nil, nil
			c.fuente.versiones = map[int64]string{0: esquema}
			if err := m(context.Background(), puenteMensajeFalso{carga: carga, version: puenteVersion(0)}); err != nil {
				t.Fatalf("segundo intento: %v", err)
			}
			if len(c.ini.sagas()) != 1 {
				t.Errorf("sagas tras el reintento = %d, se espera 1", len(c.ini.sagas()))
			}
		})
	}
}

func TestPuenteNuevoExigeSusDependencias(t *testing.T) {
	_, err := Nuevo(Opciones{})
	for _, falta := range []string{"Iniciador", "Cliente", "Esquemas"} {
		if err == nil || !strings.Contains(err.Error(), falta) {
			t.Errorf("error = %v, debe nombrar %s", err, falta)
		}
	}
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := Nuevo(Opciones{
			Iniciador: &puenteIniciadorFalso{}, Cliente: puenteClienteNulo{}, Esquemas: &puenteFuenteFalsa{}, Registro: reg,
		}); err != nil {
			t.Fatalf("dos puentes sobre un registro: %v", err)
		}
	}
}

// --- with the real Python legacy producer and the real broker ----------------

// puentePython returns the path of the legacy producer, or skips (fails under
// SAGAS_TEST_REQUIRED=1) when python3 with pulsar-client[avro] is missing.
func puentePython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import fastavro, pulsar; from pulsar.schema import AvroSchema").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("the legacy producer needs python3 with the Pulsar client and Avro support "+
			"(pip install 'pulsar-client[avro]'): %v: %s", err, strings.TrimSpace(string(out)))
		if integracion.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return "testdata/productor_legado.py"
}

// puenteProductorPython publishes count copies of one legacy message with
// the Python producer and returns the message it printed.
func puenteProductorPython(t *testing.T, broker, tipo, topico, id, idCampania string, count int) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", puentePython(t), broker, tipo, id, idCampania, fmt.Sprint(count), "--topico", topico)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("productor legado de Python: %v\n%s", err, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("salida del productor legado %q: %v", out, err)
	}
	return m
}

func puenteEsperar(t *testing.T, desc string, cond func() bool) {
	t.Helper()
	limite := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(limite) {
			t.Fatalf("timeout esperando %s", desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// puenteTopicos returns unique legacy-like topics in public/default and
// deletes them (and their schemas and dead-letter topics) after the test.
func puenteTopicos(t *testing.T, adminURL string) (campania, lanzar string) {
	t.Helper()
	sufijo := strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	campania = eventos.TopicoLegacyCampania + "-prueba-" + sufijo
	lanzar = eventos.TopicoLegacyLanzarCompleta + "-prueba-" + sufijo
	t.Cleanup(func() {
		for _, topico := range []string{campania, lanzar, eventos.DLQ(campania), eventos.DLQ(lanzar)} {
			corto := nombreCortoTopico(topico)
			for _, ruta := range []string{
				"/admin/v2/persistent/public/default/" + corto + "?force=true",
				"/admin/v2/schemas/public/default/" + corto + "/schema",
			} {
				req, err := http.NewRequest(http.MethodDelete, adminURL+ruta, nil)
				if err != nil {
					t.Error(err)
					continue
				}
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	return campania, lanzar
}

type puenteEntorno struct {
	cliente  pulsar.Client
	puente   *Puente
	reg      *prometheus.Registry
	ini      *puenteIniciadorFalso
	fuente   *puenteFuenteContada
	campania string
	lanzar   string
	broker   string
}

func puenteIntegracion(t *testing.T) *puenteEntorno {
	t.Helper()
	broker, adminURL := integracion.PulsarURL(t), integracion.PulsarAdminURL(t)
	w := &puenteLogTest{t: t}
	t.Cleanup(w.callar) // registered first, so it runs last
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cliente, err := bus.Conectar(broker, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cliente.Close)
	e := &puenteEntorno{cliente: cliente, reg: prometheus.NewRegistry(), ini: &puenteIniciadorFalso{}, broker: broker}
	e.fuente = &puenteFuenteContada{FuenteEsquemas: bus.NuevoAdmin(adminURL)}
	e.campania, e.lanzar = puenteTopicos(t, adminURL)
	e.puente, err = Nuevo(Opciones{
		Iniciador: e.ini, Cliente: cliente, Esquemas: e.fuente, Logger: logger,
		Metricas: bus.NuevasMetricas(e.reg), Registro: e.reg, TopicoCampania: e.campania, TopicoLanzar: e.lanzar,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancelar := context.WithCancel(context.Background())
	fin := make(chan error, 1)
	go func() { fin <- e.puente.Correr(ctx) }()
	select {
	case <-e.puente.Listo():
	case err := <-fin:
		cancelar()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancelar()
		if err := <-fin; err != nil {
			t.Errorf("Correr: %v", err)
		}
	})
	return e
}

// puenteLogTest sends logs to the test log until the test ends (the Pulsar
// client may still log from its own goroutines while closing).
type puenteLogTest struct {
	mu      sync.Mutex
	t       *testing.T
	cerrado bool
}

func (w *puenteLogTest) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.cerrado {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func (w *puenteLogTest) callar() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cerrado = true
}

func (e *puenteEntorno) esperarCuentas(t *testing.T, topico string, iniciadas, duplicados, deadLetters float64) {
	t.Helper()
	puenteEsperar(t, fmt.Sprintf("%s: %v iniciadas, %v duplicados, %v dead letters", nombreCortoTopico(topico), iniciadas, duplicados, deadLetters), func() bool {
		return puenteCuenta(t, e.reg, topico, ResultadoIniciada) == iniciadas &&
			puenteCuenta(t, e.reg, topico, ResultadoDuplicado) == duplicados &&
			puenteCuenta(t, e.reg, topico, ResultadoDeadLetter) == deadLetters
	})
}

// puenteEntradaDePython is the campana input the bridge must build from the
// message the Python producer printed.
func puenteEntradaDePython(t *testing.T, m map[string]any) eventos.EntradaCampana {
	t.Helper()
	d := m["data"].(map[string]any)
	ms := func(k string) *time.Time { return puenteFecha(int64(d[k].(float64))) }
	return eventos.EntradaCampana{
		CampaniaID: d["id_campania"].(string), Nombre: d["nombre"].(string), Tipo: d["tipo"].(string),
		Presupuesto: d["presupuesto"].(float64), Descripcion: d["descripcion"].(string),
		CanalPublicidad: d["canal_publicidad"].(string), Objetivo: d["objetivo"].(string),
		SegmentoAudiencia: d["segmento_audiencia"].(string), Moneda: d["moneda"].(string),
		FechaInicio: ms("fecha_inicio"), FechaFin: ms("fecha_fin"),
	}
}

func TestPuenteProductorPythonLegado(t *testing.T) {
	puentePython(t)
	e := puenteIntegracion(t)
	dlq, err := e.cliente.Subscribe(pulsar.ConsumerOptions{
		Topic: eventos.DLQ(e.campania), SubscriptionName: "prueba-dlq",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	id := "evento-" + uuid.NewString()

	// The same message published twice: one saga.
	enviado := puenteProductorPython(t, e.broker, "campania", e.campania, id, "camp-py-1", 2)
	e.esperarCuentas(t, e.campania, 1, 1, 0)
	sagas := e.ini.sagas()
	sol := sagas[0]
	if sol.Tipo != saga.TipoCampana || sol.CampaniaID != "camp-py-1" || sol.ClaveIdempotencia != ClaveEventoCampania(id, "camp-py-1") {
		t.Errorf("solicitud = %+v", sol)
	}
	got := puenteEntradaCampana(t, sol)
	if quiere := puenteEntradaDePython(t, enviado); !reflect.DeepEqual(got, quiere) {
		t.Errorf("entrada de campana\n got %+v\nwant %+v", got, quiere)
	}
	// Guard against a producer that prints something else than it sends.
	if got.Nombre != "Campaña camp-py-1" || got.Presupuesto != 15000.5 || got.Tipo != "influencer" ||
		!got.FechaInicio.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!got.FechaFin.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) || got.Moneda != "COP" {
		t.Errorf("entrada de campana inesperada: %+v", got)
	}

	// The same envelope id for another campaign (a legacy default id): another saga.
	puenteProductorPython(t, e.broker, "campania", e.campania, id, "camp-py-2", 1)
	e.esperarCuentas(t, e.campania, 2, 1, 0)

	// Poison messages: bytes without a schema, and bytes that are not Avro
	// under the topic's schema version. Both go to the dead-letter topic.
	crudo, err := bus.NuevoProductor(e.cliente, e.campania, "", "", bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	defer crudo.Close()
	conEsquema, err := bus.NuevoProductor(e.cliente, e.campania, "", puenteEsquemaLegado(t, legado.EventoCampaniaCreada), bus.LotesPorClave)
	if err != nil {
		t.Fatal(err)
	}
	defer conEsquema.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	venenos := [][]byte{[]byte("esto no es avro"), []byte("tampoco esto")}
	if _, err := crudo.Send(ctx, &pulsar.ProducerMessage{Payload: venenos[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := conEsquema.Send(ctx, &pulsar.ProducerMessage{Payload: venenos[1]}); err != nil {
		t.Fatal(err)
	}
	for range venenos {
		m, err := dlq.Receive(ctx)
		if err != nil {
			t.Fatalf("dead letter: %v", err)
		}
		if !slices.ContainsFunc(venenos, func(v []byte) bool { return string(v) == string(m.Payload()) }) ||
			m.Properties()["dlq_topico_origen"] != e.campania || !strings.Contains(m.Properties()["dlq_motivo"], eventos.ErrMalformado.Error()) {
			t.Errorf("dead letter %q %v", m.Payload(), m.Properties())
		}
		if err := dlq.Ack(m); err != nil {
			t.Error(err)
		}
	}

	// The next good message still goes through.
	puenteProductorPython(t, e.broker, "campania", e.campania, "evento-"+uuid.NewString(), "camp-py-3", 1)
	e.esperarCuentas(t, e.campania, 3, 1, 2)
	var campanias []string
	for _, s := range e.ini.sagas() {
		campanias = append(campanias, s.CampaniaID)
	}
	if !slices.Equal(campanias, []string{"camp-py-1", "camp-py-2", "camp-py-3"}) {
		t.Errorf("sagas por campaña = %q", campanias)
	}

	// The BFF's launch command, sent twice: one saga named by its id.
	idLanzar := "saga-" + uuid.NewString()
	enviado = puenteProductorPython(t, e.broker, "lanzar", e.lanzar, idLanzar, "py", 2)
	e.esperarCuentas(t, e.lanzar, 1, 1, 0)
	sagas = e.ini.sagas()
	sol = sagas[len(sagas)-1]
	if sol.Tipo != saga.TipoLanzarCampaniaCompleta || sol.SagaID != idLanzar || sol.ClaveIdempotencia != ClaveLanzamiento(idLanzar) ||
		sol.CampaniaID != CampaniaDeLanzamiento(idLanzar) {
		t.Errorf("solicitud de lanzamiento = %+v", sol)
	}
	d := enviado["data"].(map[string]any)
	quiere := eventos.EntradaLanzamiento{
		CampaniaID: CampaniaDeLanzamiento(idLanzar), Nombre: d["nombre"].(string), Descripcion: d["descripcion"].(string),
		Tipo: d["tipo"].(string), CanalPublicidad: d["canal_publicidad"].(string), Objetivo: d["objetivo"].(string),
		FechaInicio: *puenteFecha(int64(d["fecha_inicio"].(float64))), FechaFin: *puenteFecha(int64(d["fecha_fin"].(float64))),
		Presupuesto: d["presupuesto"].(float64), Moneda: d["moneda"].(string),
		Comision:            eventos.Comision{Tipo: "porcentaje", Valor: 10},
		CriteriosAfiliados:  eventos.CriteriosAfiliados{SegmentoAudiencia: d["segmento_audiencia"].(string)},
		CanalesNotificacion: []string{"email"},
	}
	gotL := puenteEntradaLanzamiento(t, sol)
	if !reflect.DeepEqual(gotL, quiere) {
		t.Errorf("entrada de lanzamiento\n got %+v\nwant %+v", gotL, quiere)
	}
	if gotL.Nombre != "Lanzamiento py" || gotL.Presupuesto != 4200.25 || gotL.Moneda != "USD" {
		t.Errorf("entrada de lanzamiento inesperada: %+v", gotL)
	}
}

func TestPuenteProductorGoConCamposEnOtroOrden(t *testing.T) {
	e := puenteIntegracion(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Version 0: the legacy field order; version 1: fields reversed plus an
	// optional extra field in envelope and payload (FULL-compatible).
	for _, esquema := range []string{
		puenteEsquemaLegado(t, legado.EventoCampaniaCreada),
		puenteEsquemaModificado(t, legado.EventoCampaniaCreada, ""),
	} {
		prod, err := bus.NuevoProductor(e.cliente, e.campania, "", esquema, bus.LotesPorClave)
		if err != nil {
			t.Fatal(err)
		}
		s, err := avro.ParseWithCache(esquema, "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		v := puenteRecortar(s, puenteValoresCampania("go-"+uuid.NewString(), "camp-go-"+fmt.Sprint(len(e.ini.sagas())), "CampaniaCreadaPayload"))
		for range 2 {
			if _, err := prod.Send(ctx, &pulsar.ProducerMessage{Value: v}); err != nil {
				t.Fatal(err)
			}
		}
		prod.Close()
	}
	e.esperarCuentas(t, e.campania, 2, 2, 0)
	for i, sol := range e.ini.sagas() {
		quiere := eventos.EntradaCampana{
			CampaniaID: fmt.Sprintf("camp-go-%d", i), Nombre: fmt.Sprintf("Campaña camp-go-%d", i), Tipo: "influencer",
			Presupuesto: 987.25, Descripcion: "desde Go", CanalPublicidad: "youtube", Objetivo: "alcance",
			SegmentoAudiencia: "familias", Moneda: "EUR", FechaInicio: puenteFecha(puenteFechaInicio), FechaFin: puenteFecha(puenteFechaFin),
		}
		if got := puenteEntradaCampana(t, sol); !reflect.DeepEqual(got, quiere) {
			t.Errorf("saga %d (esquema versión %d)\n got %+v\nwant %+v", i, i, got, quiere)
		}
	}
	e.fuente.mu.Lock()
	defer e.fuente.mu.Unlock()
	if !maps.Equal(e.fuente.pedidos, map[int64]int{0: 1, 1: 1}) {
		t.Errorf("esquemas pedidos por versión = %v, se espera uno por versión", e.fuente.pedidos)
	}
}

func TestPuenteEsquemasLegadoSonLosDelProductorPython(t *testing.T) {
	script := puentePython(t)
	for tipo, nombre := range map[string]string{"campania": legado.EventoCampaniaCreada, "lanzar": legado.ComandoLanzarCampaniaCompleta} {
		out, err := exec.Command("python3", script, "-", tipo, "-", "-", "1", "--esquema").Output()
		if err != nil {
			t.Fatalf("esquema de %s en Python: %v", tipo, err)
		}
		py, err := avro.ParseWithCache(string(out), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		goS, err := avro.ParseWithCache(puenteEsquemaLegado(t, nombre), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		if py.String() != goS.String() {
			t.Errorf("legado/%s.avsc difiere del esquema de Python:\n  go %s\n  py %s", nombre, goS, py)
		}
	}
}
