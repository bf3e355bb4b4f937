package motor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// vencedorFalso answers each VencerPlazos call with the next count of
// resultados (then 0), and cancels the context once they run out.
type vencedorFalso struct {
	mu         sync.Mutex
	resultados []int
	err        error
	llamadas   int
	cancelar   context.CancelFunc
}

func (v *vencedorFalso) VencerPlazos(ctx context.Context, limite int) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.llamadas++
	if len(v.resultados) == 0 {
		v.cancelar()
		return 0, v.err
	}
	n := v.resultados[0]
	v.resultados = v.resultados[1:]
	return n, v.err
}

func TestTemporizador(t *testing.T) {
	casos := []struct {
		nombre     string
		resultados []int
		err        error
		llamadas   int
	}{
		{"un lote lleno barre otra vez sin esperar al siguiente periodo", []int{loteVencidas, loteVencidas, 3}, nil, 4},
		{"un lote corto espera al siguiente periodo", []int{3, 0}, nil, 3},
		{"un error se registra y se reintenta en el siguiente periodo", []int{loteVencidas, loteVencidas}, errors.New("caída"), 3},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v := &vencedorFalso{resultados: c.resultados, err: c.err, cancelar: cancel}
			tm := nuevoTemporizador(v, time.Millisecond, slog.New(slog.DiscardHandler))
			if err := tm.Correr(ctx); err != nil {
				t.Fatalf("Correr: %v", err)
			}
			if v.llamadas != c.llamadas {
				t.Fatalf("%d calls, want %d", v.llamadas, c.llamadas)
			}
		})
	}
}
