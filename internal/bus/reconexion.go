package bus

import (
	"math/rand/v2"
	"time"

	"github.com/apache/pulsar-client-go/pulsar/backoff"
)

// MaxEsperaReconexion caps the wait between a producer's or consumer's
// attempts to reach its topic again after losing the broker. The client's
// default doubles to 60 s: after a broker outage of a minute, or a broker
// killed on a cluster (its topics move in ~30 s), a participant could wait
// up to a minute more before it tried again, while the coordinator's step
// deadlines ran out. Measured on the local cluster with the default: sagas
// stalled 29-61 s after a broker's kill -9, of which the handover took 30 s.
const MaxEsperaReconexion = 5 * time.Second

// Reconexion is the reconnection policy of every producer and consumer of
// ours: 100 ms doubling to MaxEsperaReconexion, with 20 % jitter so that
// many clients do not come back in step. It never gives up (the client
// bounds nothing; our processes stop on their own deadlines).
func Reconexion() backoff.Policy { return &reconexion{} }

type reconexion struct{ espera time.Duration }

func (r *reconexion) Next() time.Duration {
	r.espera = min(max(2*r.espera, 100*time.Millisecond), MaxEsperaReconexion)
	return r.espera + time.Duration(rand.Float64()*0.2*float64(r.espera))
}

func (r *reconexion) IsMaxBackoffReached() bool { return r.espera >= MaxEsperaReconexion }

func (r *reconexion) Reset() { r.espera = 0 }
