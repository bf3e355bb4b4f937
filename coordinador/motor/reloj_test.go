package motor_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alpespartner/sagas/coordinador/almacen"
	"github.com/alpespartner/sagas/coordinador/motor"
	"github.com/alpespartner/sagas/coordinador/saga"
	"github.com/alpespartner/sagas/eventos"
)

// TestRelojesDesfasadosNoAdelantanNiPierdenPlazos: two replicas whose own
// clocks are five minutes apart share one database. A deadline set by one is
// neither due early nor late for the other: both read the database's clock.
func TestRelojesDesfasadosNoAdelantanNiPierdenPlazos(t *testing.T) {
	enCadaAlmacen(t, "sagas_reloj_", func(t *testing.T, db *almacen.DB) {
		const plazo = 2 * time.Second
		def := saga.Campana()
		for i := range def.Pasos {
			def.Pasos[i].Plazo = saga.Duracion(plazo)
		}
		replica := func(desfase time.Duration) (*motor.Motor, *almacen.Reloj) {
			r, err := db.NuevoReloj(t.Context(), func() time.Time { return time.Now().Add(desfase) }, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Ahora().Sub(time.Now()); got < -time.Second || got > time.Second {
				t.Fatalf("a replica %s off reads the database clock %s off", desfase, got)
			}
			cc, ec := codecs()
			return motor.Nuevo(motor.Opciones{
				Store: db, Catalogo: saga.Catalogo{def.Tipo: def}, Topologia: eventos.TopologiaPorDefecto,
				Comandos: cc, Eventos: ec, Reloj: r.Ahora,
			}), r
		}
		atrasada, _ := replica(-5 * time.Minute)
		adelantada, _ := replica(5 * time.Minute)

		// Set by the replica behind, the deadline is not due for the one
		// ahead...
		id, _, err := atrasada.Iniciar(t.Context(), motor.Solicitud{Tipo: def.Tipo, Datos: json.RawMessage(`{"nombre":"reloj"}`)})
		if err != nil {
			t.Fatal(err)
		}
		// The relay published the command (a deadline runs from then on).
		if _, err := db.DrenarOutbox(t.Context(), 10, func(_ context.Context, ms []almacen.Mensaje) ([]int64, error) {
			var ids []int64
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			return ids, nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := adelantada.VencerPlazos(t.Context(), 10); err != nil || n != 0 {
			t.Fatalf("the replica 5 min ahead fired a %s deadline at once: %d, %v", plazo, n, err)
		}
		// ...and it is due for both once its time passed on the database.
		time.Sleep(plazo + 200*time.Millisecond)
		if n, err := atrasada.VencerPlazos(context.Background(), 10); err != nil || n != 1 {
			t.Fatalf("the replica 5 min behind did not fire a due deadline: %d, %v", n, err)
		}
		s, err := db.Saga(t.Context(), id)
		if err != nil || s.Pasos[0].Intento != 2 {
			t.Fatalf("after the deadline the first step is retried once: %+v, %v", s.Pasos[0], err)
		}
	})
}
