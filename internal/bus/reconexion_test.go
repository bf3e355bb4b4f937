package bus

import (
	"testing"
	"time"
)

func TestReconexionDoblaHastaElTopeYSeReinicia(t *testing.T) {
	r := Reconexion()
	var ultima time.Duration
	for i := range 20 {
		d := r.Next()
		base := min(100*time.Millisecond<<i, MaxEsperaReconexion)
		if d < base || d > base+base/5 {
			t.Fatalf("attempt %d: wait %v, want within [%v, %v]", i, d, base, base+base/5)
		}
		ultima = d
	}
	if !r.IsMaxBackoffReached() || ultima > MaxEsperaReconexion*6/5 {
		t.Fatalf("after 20 attempts: cap reached %v, last wait %v", r.IsMaxBackoffReached(), ultima)
	}
	r.Reset()
	if d := r.Next(); d > 120*time.Millisecond {
		t.Fatalf("after Reset: wait %v, want about 100ms", d)
	}
}
