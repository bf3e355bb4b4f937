package esquemas

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestLosEsquemasRegistradosNoCambianSinVersion guards the schemas that
// deployments have registered. Every process checks at start that the
// broker holds its binary's exact schema text; Pulsar does not store a
// change of "doc" text alone as a new version, so such an edit makes every
// upgraded process refuse to start against a broker provisioned before.
// A real change (a new field with a default, BACKWARD_TRANSITIVE) is a new
// version that `coordinador -preparar` registers: update the hash then, and
// say so in the release notes.
func TestLosEsquemasRegistradosNoCambianSinVersion(t *testing.T) {
	registrados := map[string]string{
		ComandoSaga:   "df8b15a51209142954bac26d90d7bd2fd981f44f5e8959b6bd786ef56aa86a26",
		RespuestaSaga: "c879f25a3a81c4072ccca466266156907c1490662c45b69ddb6008211785c5f6",
		EventoSaga:    "14aa4b936bf27030a9d3dd478cacc4aa475adfd02f0ec5601bcf13225785e2ce",
	}
	for nombre, quiere := range registrados {
		s, err := Avro(nombre)
		if err != nil {
			t.Fatal(err)
		}
		suma := sha256.Sum256([]byte(s))
		if got := hex.EncodeToString(suma[:]); got != quiere {
			t.Errorf("%s.avsc changed (sha256 %s, registered %s): a doc-only edit breaks the start check of deployed brokers; a field change needs a new registered version", nombre, got, quiere)
		}
	}
}
