package e2e

import (
	"os"
	"testing"

	"github.com/alpespartner/sagas/internal/sistema"
)

func TestMain(m *testing.M) { os.Exit(sistema.EjecutarPruebas(m)) }
