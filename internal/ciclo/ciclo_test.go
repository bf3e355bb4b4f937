package ciclo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// registro records what the fake parts did, in order.
type registro struct {
	mu      sync.Mutex
	eventos []string
}

func (r *registro) anotar(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eventos = append(r.eventos, e)
}

func (r *registro) lista() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.eventos)
}

// falsa is a part: it records its start and stop, may fail at start or
// later, may need a while to become ready and may refuse to stop.
type falsa struct {
	nombre     string
	r          *registro
	preparada  bool          // implements Listo
	falla      error         // returned at once (before ready)
	fallaLuego error         // returned after ready, while running
	terminar   bool          // returns nil once ready, before ctx ends
	terca      time.Duration // how long it ignores its cancellation
	listo      chan struct{}
}

func (f *falsa) Correr(ctx context.Context) error {
	f.r.anotar("inicia " + f.nombre)
	if f.falla != nil {
		return f.falla
	}
	if f.preparada {
		time.Sleep(10 * time.Millisecond) // the next part must still wait
		f.r.anotar("lista " + f.nombre)
		close(f.listo)
	}
	if f.fallaLuego != nil {
		time.Sleep(20 * time.Millisecond)
		return f.fallaLuego
	}
	if f.terminar {
		f.r.anotar("termina " + f.nombre)
		return nil
	}
	<-ctx.Done()
	time.Sleep(f.terca)
	f.r.anotar("detiene " + f.nombre)
	return nil
}

type falsaPreparada struct{ *falsa }

func (f falsaPreparada) Listo() <-chan struct{} { return f.listo }

func parte(f *falsa) Parte {
	f.listo = make(chan struct{})
	if f.preparada {
		return Parte{Nombre: f.nombre, Componente: falsaPreparada{f}}
	}
	return Parte{Nombre: f.nombre, Componente: f}
}

var errFalla = errors.New("falla")

func TestGrupo(t *testing.T) {
	casos := []struct {
		nombre   string
		partes   []falsa
		cancelar bool // cancel ctx once every part is ready
		plazo    time.Duration
		eventos  []string
		err      string // substring; "" for nil
		listo    bool   // the Listo hook ran
	}{
		{
			nombre:   "arranca en orden, espera a cada preparada y detiene en orden inverso",
			partes:   []falsa{{nombre: "a", preparada: true}, {nombre: "b", preparada: true}, {nombre: "c", preparada: true}},
			cancelar: true,
			eventos:  []string{"inicia a", "lista a", "inicia b", "lista b", "inicia c", "lista c", "detiene c", "detiene b", "detiene a"},
			listo:    true,
		},
		{
			nombre:  "una parte que falla al arrancar detiene las anteriores y no arranca las siguientes",
			partes:  []falsa{{nombre: "a", preparada: true}, {nombre: "b", preparada: true, falla: errFalla}, {nombre: "c"}},
			eventos: []string{"inicia a", "lista a", "inicia b", "detiene a"},
			err:     "b: falla",
		},
		{
			nombre:  "una parte que falla ya en marcha detiene a todas",
			partes:  []falsa{{nombre: "a", preparada: true}, {nombre: "b", preparada: true}, {nombre: "c", preparada: true, fallaLuego: errFalla}},
			eventos: []string{"inicia a", "lista a", "inicia b", "lista b", "inicia c", "lista c", "detiene b", "detiene a"},
			err:     "c: falla",
			listo:   true,
		},
		{
			nombre:   "una parte que termina sin error no detiene a las demás",
			partes:   []falsa{{nombre: "a", preparada: true}, {nombre: "b", preparada: true, terminar: true}},
			cancelar: true,
			eventos:  []string{"inicia a", "lista a", "inicia b", "lista b", "termina b", "detiene a"},
			listo:    true,
		},
		{
			nombre:   "el plazo de parada nombra a las partes que no se detuvieron",
			partes:   []falsa{{nombre: "a", preparada: true, terca: time.Second}, {nombre: "b", preparada: true}},
			cancelar: true,
			plazo:    100 * time.Millisecond,
			eventos:  []string{"inicia a", "lista a", "inicia b", "lista b", "detiene b"},
			err:      "no se detuvieron en 100ms: [a]",
			listo:    true,
		},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			r := &registro{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			g := &Grupo{Plazo: c.plazo}
			for i := range c.partes {
				c.partes[i].r = r
				g.Partes = append(g.Partes, parte(&c.partes[i]))
			}
			listo := false
			g.Listo = func() {
				listo = true
				if c.cancelar {
					cancel()
				}
			}
			err := g.Correr(ctx)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
			if got := r.lista(); !slices.Equal(got, c.eventos) {
				t.Fatalf("events\n got %q\nwant %q", got, c.eventos)
			}
			if listo != c.listo {
				t.Fatalf("Listo hook ran: %v, want %v", listo, c.listo)
			}
		})
	}
}

func TestGrupoContextoCanceladoAntesDeEstarListoNoEsUnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &registro{}
	a := &falsa{nombre: "a", r: r, preparada: true}
	g := &Grupo{Partes: []Parte{parte(a)}, Listo: func() { t.Error("Listo ran") }}
	if err := g.Correr(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestServidorHTTPSirveHastaQueTerminaElContexto(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hola") })
	s := NuevoServidorHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux}, time.Second, slog.New(slog.DiscardHandler))
	if s.Direccion() != "" {
		t.Fatal("address before listening")
	}
	ctx, cancel := context.WithCancel(context.Background())
	fin := make(chan error, 1)
	go func() { fin <- s.Correr(ctx) }()
	<-s.Listo()
	resp, err := http.Get("http://" + s.Direccion() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hola" {
		t.Fatalf("body %q", b)
	}
	cancel()
	if err := <-fin; err != nil {
		t.Fatalf("Correr: %v", err)
	}
	if _, err := http.Get("http://" + s.Direccion() + "/"); err == nil {
		t.Fatal("still serving after Correr returned")
	}
}

func TestServidorHTTPDevuelveElErrorDeEscucha(t *testing.T) {
	s := NuevoServidorHTTP(&http.Server{Addr: "127.0.0.1:-1"}, 0, nil)
	if err := s.Correr(context.Background()); err == nil || !strings.Contains(err.Error(), "escuchar en") {
		t.Fatalf("err = %v", err)
	}
}

func TestAjustarGCSinGOGCUsaElValorPorDefecto(t *testing.T) {
	antes := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(antes) })
	if got := AjustarGC(func(string) string { return "" }); got != GCPorDefecto {
		t.Fatalf("AjustarGC = %d, quiero %d", got, GCPorDefecto)
	}
	if got := debug.SetGCPercent(100); got != GCPorDefecto {
		t.Fatalf("porcentaje en efecto %d, quiero %d", got, GCPorDefecto)
	}
}

func TestAjustarGCRespetaGOGC(t *testing.T) {
	antes := debug.SetGCPercent(150) // as the runtime would have read GOGC=150
	t.Cleanup(func() { debug.SetGCPercent(antes) })
	env := map[string]string{"GOGC": "150"}
	if got := AjustarGC(func(k string) string { return env[k] }); got != 150 {
		t.Fatalf("AjustarGC = %d, quiero 150", got)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("porcentaje en efecto %d, quiero 150", got)
	}
}
