package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/internal/sistema"
)

// TestCredencialesRechazadasNombranLaCausaSinTocarAlSistema starts, next to
// a running system on the secured broker, processes whose credentials are
// wrong in each way an operator gets them wrong. Each must exit at start-up
// with a message that names the cause, before it serves anything; the
// running system is untouched and still completes sagas.
func TestCredencialesRechazadasNombranLaCausaSinTocarAlSistema(t *testing.T) {
	s := sistema.Arrancar(t, sistema.Opciones{Seguro: true})
	b := integracion.PulsarSeguro(t)
	dir := t.TempDir()
	vencido := filepath.Join(dir, "vencido.token")
	escribir(t, vencido, integracion.TokenDelBroker(t, b.Dir, "coordinador", time.Now().Add(-time.Hour)))
	otraCA := filepath.Join(dir, "otra-ca.pem")
	ca, _ := integracion.CAAjena(t)
	escribir(t, otraCA, ca)
	apiLibre := fmt.Sprint(sistema.PuertoLibre(t))

	casos := []struct {
		nombre, binario string
		extra           map[string]string
		debe            []string // every one in the output
	}{
		{"un participante con el rol de otro servicio", "marca",
			map[string]string{"SAGAS_PULSAR_TOKEN_FILE": filepath.Join(b.Dir, "influencer.token"), "SAGAS_METRICS_ADDR": "127.0.0.1:0"},
			[]string{"influencer", "comandos-marca", "permiso"}},
		{"sin credenciales", "coordinador",
			map[string]string{"SAGAS_PULSAR_AUTH": "none", "SAGAS_PULSAR_TOKEN_FILE": "", "SAGAS_API_PORT": apiLibre, "SAGAS_REPLICA_ID": "sin-credenciales"},
			[]string{"autenticación rechazada", "SAGAS_PULSAR_AUTH=none"}},
		{"un token vencido", "coordinador",
			map[string]string{"SAGAS_PULSAR_TOKEN_FILE": vencido, "SAGAS_API_PORT": apiLibre, "SAGAS_REPLICA_ID": "vencido"},
			[]string{"autenticación rechazada", "the token expired at", vencido}},
		{"un certificado del broker que no firma la CA de confianza", "coordinador",
			map[string]string{"SAGAS_PULSAR_TLS_TRUST_CERTS_FILE": otraCA, "SAGAS_API_PORT": apiLibre, "SAGAS_REPLICA_ID": "otra-ca"},
			[]string{"verificación TLS fallida", otraCA}},
	}
	for _, c := range casos {
		t.Run(c.nombre, func(t *testing.T) {
			inicio := time.Now()
			out, err := s.Ejecutar(c.binario, c.extra, 90*time.Second)
			if err == nil {
				t.Fatalf("%s started with bad credentials:\n%s", c.binario, out)
			}
			t.Logf("%s refused in %s: %v", c.binario, time.Since(inicio).Round(time.Millisecond), err)
			for _, d := range c.debe {
				if !strings.Contains(out, d) {
					t.Errorf("the output does not name %q:\n%s", d, out)
				}
			}
			for _, nunca := range []string{"coordinador listo", "participante iniciado"} {
				if strings.Contains(out, nunca) {
					t.Errorf("half-started: the output says %q:\n%s", nunca, out)
				}
			}
		})
	}

	// The system next to them still completes a saga.
	code, cuerpo, err := s.Post(context.Background(), "/campana-saga?esperar=60s", fmt.Sprintf(cuerpoCampana, ""))
	if err != nil || code != 200 || decodificar(t, cuerpo).Estado != "COMPLETADA" {
		t.Fatalf("the running system after the refusals: %d %v %s", code, err, cuerpo)
	}
}

func escribir(t *testing.T, ruta, contenido string) {
	t.Helper()
	if err := os.WriteFile(ruta, []byte(contenido), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestProduccionBrokerSeguroYMySQLConTLS is the deployment production runs:
// the secured broker (TLS, token authentication, authorization, no topic
// created on use) and MariaDB requiring TLS; one provisioning run as the
// admin role and the migration user; then two coordinator replicas and the
// six participants, each with its own broker role and the data-only database
// user. Both flows complete and compensate, started through either replica.
func TestProduccionBrokerSeguroYMySQLConTLS(t *testing.T) {
	s := sistema.Arrancar(t, sistema.Opciones{Seguro: true, Almacen: "mysql-tls", Replicas: 2})
	t.Logf("broker %s as %s, database %s:%s as %s with TLS %s", s.Env["SAGAS_PULSAR_URL"], s.Env["SAGAS_PULSAR_AUTH"],
		s.Env["SAGAS_DB_HOST"], s.Env["SAGAS_DB_PORT"], s.Env["SAGAS_DB_USER"], s.Env["SAGAS_DB_TLS"])
	if !strings.HasPrefix(s.Env["SAGAS_PULSAR_URL"], "pulsar+ssl://") || s.Env["SAGAS_DB_TLS"] != "on" || len(s.APIs) != 1 {
		t.Fatalf("not the production set-up: %v", s.Env)
	}
	ambosFlujos(t, s)
	segunda := *s
	segunda.API = s.APIs[0]
	code, cuerpo, err := segunda.Post(context.Background(), "/campana-saga?esperar=60s", fmt.Sprintf(cuerpoCampana, `,"simular_fallo":"marca"`))
	if err != nil || code != 200 {
		t.Fatalf("through the second replica: %d %v %s", code, err, cuerpo)
	}
	if r := decodificar(t, cuerpo); r.Estado != "COMPENSADA" || r.PasoFallido != "marca" {
		t.Fatalf("through the second replica: %s", cuerpo)
	}
}
