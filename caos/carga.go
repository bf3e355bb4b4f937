package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The two flows and their routes.
const (
	tipoCampana     = "campana"
	tipoLanzamiento = "lanzar-campania-completa"
	rutaCampana     = "/campana-saga"
	rutaLanzamiento = "/api/v1/comandos/lanzar-campania-completa"
)

// Load bounds: sagas whose POST is in flight at once, one attempt's timeout
// and the retry backoff.
const (
	enVueloMax       = 128
	plazoIntento     = 15 * time.Second
	esperaInicial    = 100 * time.Millisecond
	esperaMaximaPOST = 2 * time.Second
)

// pedido is one saga to start: its flow, Idempotency-Key and body, and how
// many effect rows one application of each step leaves in its participant's
// tables, as far as the input says (afiliados depends on the registry: its
// count is read from the participant's recorded reply instead).
type pedido struct {
	I        int
	Tipo     string
	Ruta     string
	Clave    string
	Cuerpo   []byte
	Esperado map[string]int // step name → rows
}

// iniciada is the outcome of one pedido's POSTs.
type iniciada struct {
	pedido
	ID       string
	Replica  int // index of the replica that answered 202
	Intentos int
	Enviado  time.Time // first attempt
	Aceptado time.Time
	Err      error // set when no attempt got a 202
}

// generarPedidos makes n bodies from a seeded RNG: a share lanz of
// lanzar-campania-completa, the rest campana, each with a unique key.
func generarPedidos(n int, lanz float64, semilla int64, prefijo string) []pedido {
	rng := rand.New(rand.NewPCG(uint64(semilla), uint64(semilla)^0x5eed))
	nombres := []string{"Lucía", "Mateo", "Valentina", "Diego", "Camila", "Tomás"}
	plataformas := []string{"instagram", "youtube", "tiktok", "twitch"}
	segmentos := []string{"jovenes", "familias", "deportistas", "profesionales", "gamers", "viajeros"}
	canales := []string{"email", "sms", "push", "whatsapp"}
	inicio := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	ps := make([]pedido, n)
	for i := range ps {
		p := pedido{I: i, Clave: fmt.Sprintf("%s-%05d", prefijo, i)}
		var cuerpo map[string]any
		if rng.Float64() < lanz {
			p.Tipo, p.Ruta = tipoLanzamiento, rutaLanzamiento
			cs := append([]string(nil), canales...)
			rng.Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
			cs = cs[:1+rng.IntN(3)]
			ini := inicio.Add(time.Duration(rng.IntN(365)) * 24 * time.Hour)
			cuerpo = map[string]any{
				"campania_id": fmt.Sprintf("%s-c%05d", prefijo, i), "nombre": fmt.Sprintf("Caos lanzamiento %d", i),
				"descripcion": "lanzamiento del run de fallas", "tipo": "afiliados", "canal_publicidad": "redes_sociales",
				"objetivo":     "conversiones",
				"fecha_inicio": ini.Format(time.RFC3339), "fecha_fin": ini.Add(30 * 24 * time.Hour).Format(time.RFC3339),
				"presupuesto": 5000 + rng.IntN(50000), "moneda": "COP",
				"comision":             map[string]any{"tipo": "porcentaje", "valor": 5 + rng.IntN(11)},
				"criterios_afiliados":  map[string]any{"segmento_audiencia": segmentos[rng.IntN(len(segmentos))], "maximo": 1 + rng.IntN(5)},
				"canales_notificacion": cs,
			}
			p.Esperado = map[string]int{
				"configurar_comisiones_campania":    1,
				"inicializar_tracking_conversiones": 1,
				"preparar_notificaciones_campania":  len(cs),
			}
		} else {
			p.Tipo, p.Ruta = tipoCampana, rutaCampana
			k := 1 + rng.IntN(3)
			var infs []map[string]any
			vistos := map[string]bool{}
			for len(infs) < k {
				n, pl := nombres[rng.IntN(len(nombres))], plataformas[rng.IntN(len(plataformas))]
				if vistos[n+"/"+pl] {
					continue
				}
				vistos[n+"/"+pl] = true
				infs = append(infs, map[string]any{"nombre": n, "plataforma": pl})
			}
			cuerpo = map[string]any{
				"nombre": fmt.Sprintf("Caos campaña %d", i), "tipo": "influencer_marketing", "presupuesto": 1000 + rng.IntN(9000),
				"marca":       map[string]any{"id_marca": fmt.Sprintf("m-%03d", 1+rng.IntN(8)), "nombre_marca": "Marca del caos"},
				"influencers": infs,
			}
			p.Esperado = map[string]int{"influencer": k, "marca": 1, "tracking": 1}
		}
		p.Cuerpo, _ = json.Marshal(cuerpo)
		ps[i] = p
	}
	return ps
}

// lanzador POSTs sagas to the replicas' APIs, each retried with a bounded
// backoff (alternating replicas, same Idempotency-Key) until it gets a 202.
type lanzador struct {
	apis       []string // base URLs, one per replica
	httpc      *http.Client
	plazo      time.Duration // retry one saga for at most this long
	b          *bitacora
	reintentos atomic.Int64
	aceptadas  atomic.Int64
	// registro holds every POST attempt, for the API's 5xx and latency
	// during each fault.
	registro registroPOST
}

func nuevoLanzador(apis []string, plazo time.Duration, b *bitacora) *lanzador {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConnsPerHost: enVueloMax,
	}
	return &lanzador{apis: apis, httpc: &http.Client{Timeout: plazoIntento, Transport: tr}, plazo: plazo, b: b}
}

// Correr starts every pedido at a steady rate (sagas/s) and returns when
// each has its 202 or gave up.
func (l *lanzador) Correr(ctx context.Context, pedidos []pedido, tasa float64) []iniciada {
	res := make([]iniciada, len(pedidos))
	sem := make(chan struct{}, enVueloMax)
	var wg sync.WaitGroup
	inicio := time.Now()
	paso := max(1, len(pedidos)/10)
	retrasoAvisado := time.Time{}
	for i, p := range pedidos {
		objetivo := inicio.Add(time.Duration(float64(i) / tasa * float64(time.Second)))
		if d := time.Until(objetivo); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		} else if d < -5*time.Second && time.Since(retrasoAvisado) > 10*time.Second {
			retrasoAvisado = time.Now()
			l.b.Printf("carga: %s de retraso sobre la tasa objetivo (%d POSTs en vuelo)", (-d).Round(time.Second), len(sem))
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			for j := i; j < len(pedidos); j++ {
				res[j] = iniciada{pedido: pedidos[j], Err: ctx.Err()}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res[i] = l.iniciar(ctx, p)
		}()
		if (i+1)%paso == 0 || i+1 == len(pedidos) {
			l.b.Printf("carga: %d/%d enviadas, %d aceptadas (202), %d reintentos de POST", i+1, len(pedidos), l.aceptadas.Load(), l.reintentos.Load())
		}
	}
	wg.Wait()
	return res
}

// iniciar POSTs one saga until a 202, alternating replicas.
func (l *lanzador) iniciar(ctx context.Context, p pedido) iniciada {
	r := iniciada{pedido: p, Enviado: time.Now()}
	limite := r.Enviado.Add(l.plazo)
	espera := esperaInicial
	for intento := 0; ; intento++ {
		replica := (p.I + intento) % len(l.apis)
		id, reintentable, err := l.post(ctx, l.apis[replica], p)
		r.Intentos++
		if err == nil {
			r.ID, r.Replica, r.Aceptado = id, replica, time.Now()
			l.aceptadas.Add(1)
			return r
		}
		if !reintentable || ctx.Err() != nil || time.Now().Add(espera).After(limite) {
			r.Err = fmt.Errorf("%d intentos: %w", r.Intentos, err)
			return r
		}
		l.reintentos.Add(1)
		jitter := time.Duration(rand.Int64N(int64(espera) / 2))
		select {
		case <-time.After(espera + jitter):
		case <-ctx.Done():
		}
		espera = min(2*espera, esperaMaximaPOST)
	}
}

// errPermanente marks an answer no retry can change (a 4xx other than 408
// and 429: our body or route is wrong).
var errPermanente = errors.New("respuesta permanente")

func (l *lanzador) post(ctx context.Context, api string, p pedido) (id string, reintentable bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+p.Ruta, bytes.NewReader(p.Cuerpo))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", p.Clave)
	enviado := time.Now()
	resp, err := l.httpc.Do(req)
	if err != nil {
		l.registro.anotar(intentoPOST{Enviado: enviado, Duracion: time.Since(enviado)})
		return "", true, err
	}
	l.registro.anotar(intentoPOST{Enviado: enviado, Duracion: time.Since(enviado), Codigo: resp.StatusCode})
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var cuerpo struct {
		ID string `json:"id_saga"`
	}
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		if json.Unmarshal(b, &cuerpo) != nil || cuerpo.ID == "" {
			return "", false, fmt.Errorf("POST %s%s: %s sin id_saga: %s", api, p.Ruta, resp.Status, recortar(string(b), 300))
		}
		return cuerpo.ID, false, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return "", true, fmt.Errorf("POST %s%s: %s: %s", api, p.Ruta, resp.Status, recortar(string(b), 300))
	default:
		return "", false, fmt.Errorf("%w: POST %s%s: %s: %s", errPermanente, api, p.Ruta, resp.Status, recortar(string(b), 300))
	}
}

// guardarIniciadas writes one line per saga (index, flow, key, id, replica,
// attempts, error) to ruta, so a run's sagas can be looked up afterwards.
func guardarIniciadas(ruta string, is []iniciada) error {
	var sb strings.Builder
	sb.WriteString("i\ttipo\tidempotency_key\tid_saga\treplica\tintentos\terror\n")
	for _, r := range is {
		e := ""
		if r.Err != nil {
			e = strings.ReplaceAll(r.Err.Error(), "\n", " ")
		}
		fmt.Fprintf(&sb, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", r.I, r.Tipo, r.Clave, r.ID, r.Replica+1, r.Intentos, e)
	}
	return os.WriteFile(ruta, []byte(sb.String()), 0o644)
}

func recortar(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
