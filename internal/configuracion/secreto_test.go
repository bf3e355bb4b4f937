package configuracion

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretoDeLaVariableODeSuFichero(t *testing.T) {
	dir := t.TempDir()
	conSalto := filepath.Join(dir, "token")
	if err := os.WriteFile(conSalto, []byte("abc \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vacio := filepath.Join(dir, "vacio")
	if err := os.WriteFile(vacio, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		nombre string
		env    map[string]string
		want   string
		err    string
	}{
		{"variable", map[string]string{"SAGAS_API_TOKEN": "t1"}, "t1", ""},
		{"fichero sin el salto de línea final", map[string]string{"SAGAS_API_TOKEN_FILE": conSalto}, "abc ", ""},
		{"ninguno", nil, "", ""},
		{"los dos", map[string]string{"SAGAS_API_TOKEN": "t1", "SAGAS_API_TOKEN_FILE": conSalto}, "t1", "set either SAGAS_API_TOKEN or SAGAS_API_TOKEN_FILE, not both"},
		{"fichero que falta", map[string]string{"SAGAS_API_TOKEN_FILE": filepath.Join(dir, "no")}, "", `SAGAS_API_TOKEN_FILE="` + filepath.Join(dir, "no") + `": cannot read it`},
		{"fichero vacío", map[string]string{"SAGAS_API_TOKEN_FILE": vacio}, "", "the file is empty"},
	} {
		l := Leer(entorno(c.env))
		got := l.Secreto("SAGAS_API_TOKEN")
		err := l.Err()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.nombre, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err = %v, want %q", c.nombre, err, c.err)
		case got != c.want:
			t.Errorf("%s: %q, want %q", c.nombre, got, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "t1") {
			t.Errorf("%s: the secret leaks into the message: %v", c.nombre, err)
		}
	}
}

func TestCadaSecretoTieneSuFichero(t *testing.T) {
	for _, n := range []string{"SAGAS_DB_PASSWORD", "SAGAS_DB_MIGRATION_PASSWORD", "SAGAS_DB_DSN", "SAGAS_API_TOKEN", "SAGAS_PULSAR_TOKEN"} {
		v, ok := Buscar(n + "_FILE")
		if !ok {
			t.Errorf("%s has no %s_FILE row", n, n)
			continue
		}
		if s, _ := Buscar(n); s.Binarios != v.Binarios {
			t.Errorf("%s is read by %s but its file variable by %s", n, s.Binarios, v.Binarios)
		}
	}
}
