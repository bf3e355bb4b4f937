package acceso

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPortadorExigeElTokenExacto(t *testing.T) {
	h := Portador("s3cr3t", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dentro")) }))
	for _, c := range []struct {
		nombre, cabecera string
		want             int
	}{
		{"sin cabecera", "", http.StatusUnauthorized},
		{"otro token", "Bearer otro", http.StatusUnauthorized},
		{"prefijo del token", "Bearer s3cr3", http.StatusUnauthorized},
		{"token más largo", "Bearer s3cr3tx", http.StatusUnauthorized},
		{"otro esquema", "Basic s3cr3t", http.StatusUnauthorized},
		{"solo el token", "s3cr3t", http.StatusUnauthorized},
		{"esquema vacío", "Bearer ", http.StatusUnauthorized},
		{"correcto", "Bearer s3cr3t", http.StatusOK},
		{"esquema en minúsculas", "bearer s3cr3t", http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.cabecera != "" {
			req.Header.Set("Authorization", c.cabecera)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d, want %d", c.nombre, rec.Code, c.want)
		}
		if rec.Code == http.StatusUnauthorized {
			if rec.Header().Get("WWW-Authenticate") == "" || rec.Body.String() == "dentro" {
				t.Errorf("%s: 401 without WWW-Authenticate or with the protected body: %q", c.nombre, rec.Body.String())
			}
		}
	}
}

func TestPortadorSinTokenNoProtege(t *testing.T) {
	h := Portador("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%d", rec.Code)
	}
}
