// Command gen writes docs/configuration.md from the table of package configuracion
// (run by go generate ./internal/configuracion).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/alpespartner/sagas/internal/configuracion"
)

func main() {
	salida := flag.String("o", "docs/configuration.md", "file to write")
	flag.Parse()
	if err := os.WriteFile(*salida, configuracion.Documento(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
