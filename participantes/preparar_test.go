package participantes_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/alpespartner/sagas/internal/basedatos"
	"github.com/alpespartner/sagas/internal/integracion"
	"github.com/alpespartner/sagas/participantes"
	"github.com/alpespartner/sagas/participantes/internal/prueba"
)

// TestPrepararMigraConElUsuarioDeMigracionYLuegoArrancaElDeEjecucion runs
// the provisioning step and the runtime the way production does: MariaDB
// over TLS with the CA, passwords from files, a migration user apart.
func TestPrepararMigraConElUsuarioDeMigracionYLuegoArrancaElDeEjecucion(t *testing.T) {
	seg := integracion.MySQLSeguro(t)
	env := seg.Entorno(t)
	// The participant's database is <prefix><servicio>.
	env["SAGAS_DB_PREFIJO"] = seg.BaseNueva(t, "pp_") + "_"
	seg.BorrarAlTerminar(t, env["SAGAS_DB_PREFIJO"]+"prueba")
	getenv := func(k string) string { return env[k] }
	s := prueba.Servicio()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))

	cfg, err := participantes.LeerConfig(s.Nombre, getenv)
	if err != nil {
		t.Fatal(err)
	}
	// Before -preparar the runtime refuses, naming the command.
	_, err = participantes.Nuevo(t.Context(), cfg, s, logger)
	if !errors.Is(err, basedatos.ErrEsquema) || !strings.Contains(err.Error(), "ejecute `prueba -preparar`") {
		t.Fatalf("Nuevo before -preparar: %v", err)
	}

	var out bytes.Buffer
	if err := participantes.Correr(t.Context(), []string{s.Nombre, "-preparar"}, getenv, &out, s); err != nil {
		t.Fatalf("-preparar: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "almacén preparado") {
		t.Errorf("-preparar output:\n%s", out.String())
	}
	p, err := participantes.Nuevo(t.Context(), cfg, s, logger)
	if err != nil {
		t.Fatalf("Nuevo after -preparar: %v", err)
	}
	p.Close()

	// -preparar without the migration password says what is missing.
	delete(env, "SAGAS_DB_MIGRATION_PASSWORD_FILE")
	err = participantes.Correr(t.Context(), []string{s.Nombre, "-preparar"}, getenv, &out, s)
	if err == nil || !strings.Contains(err.Error(), "SAGAS_DB_MIGRATION_PASSWORD") {
		t.Errorf("-preparar without the password: %v", err)
	}
}
