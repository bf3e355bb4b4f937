package configuracion

import (
	"os"
	"strings"
)

// Secreto is the value of the secret nombre, set inline or, through the
// variable nombre_FILE, as the content of a file (a Docker or Kubernetes
// secret) without its trailing line break. Setting both, an unreadable file
// and an empty one are problems. "" when neither is set.
func (l *Lector) Secreto(nombre string) string {
	archivo := nombre + "_FILE"
	valor, ruta := l.Texto(nombre), l.Texto(archivo)
	switch {
	case ruta == "":
		return valor
	case valor != "":
		l.Problema(archivo, ruta, "set either "+nombre+" or "+archivo+", not both")
		return valor
	}
	b, err := os.ReadFile(ruta)
	if err != nil {
		l.Problema(archivo, ruta, "cannot read it: "+err.Error())
		return ""
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		l.Problema(archivo, ruta, "the file is empty")
	}
	return s
}
