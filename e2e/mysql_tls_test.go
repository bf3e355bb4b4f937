package e2e

import (
	"testing"

	"github.com/alpespartner/sagas/internal/sistema"
)

// TestAmbosFlujosSobreMySQLConTLSComoUsuarioDeEjecucion runs both flows the
// way production stores are set up: MariaDB requiring TLS, verified with its
// CA, every process as a user with data privileges only, after each
// binary's -preparar ran as the migration user.
func TestAmbosFlujosSobreMySQLConTLSComoUsuarioDeEjecucion(t *testing.T) {
	ambosFlujos(t, sistema.Arrancar(t, sistema.Opciones{Almacen: "mysql-tls"}))
}
