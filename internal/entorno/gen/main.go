// Command gen writes docs/configuration.md from the table of package entorno
// (run by go generate ./internal/entorno).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/alpespartner/sagas/internal/entorno"
)

func main() {
	salida := flag.String("o", "docs/configuration.md", "file to write")
	flag.Parse()
	if err := os.WriteFile(*salida, entorno.Documento(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
