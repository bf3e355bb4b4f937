package configuracion

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// ComandoDocumento is the command that regenerates docs/configuration.md.
const ComandoDocumento = "go generate ./internal/configuracion"

// Documento is docs/configuration.md as the table generates it.
func Documento() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Configuration\n\n")
	fmt.Fprintf(&b, "<!-- Generated from the table in internal/configuracion/tabla.go by `%s`. Do not edit: a test fails when this file and the table drift. -->\n\n", ComandoDocumento)
	fmt.Fprintf(&b, "Every binary reads its environment once at start and reports every problem at once, each naming the variable and what it allows; a blank variable counts as unset. `coordinador -check-config` and a participant's `-check-config` validate and exit. `-h` lists a binary's flags and these variables.\n")
	fmt.Fprintf(&b, "\nGo's own variables apply as usual (`GOMAXPROCS`, `GOMEMLIMIT`, `GOGC`). The coordinator and the participants run the garbage collector at `GOGC=400` when `GOGC` is unset: their live heap is small, and at Go's default of 100 a loaded coordinator spent ~14 %% of its CPU marking (docs/performance.md).\n")
	for _, bin := range Binarios {
		fmt.Fprintf(&b, "\n## %s\n\n", bin)
		fmt.Fprintf(&b, "| variable | default | allowed | meaning |\n|---|---|---|---|\n")
		for _, v := range De(bin) {
			defecto := celda(v.Defecto, true)
			if v.DefectoTexto != "" {
				defecto = celda(v.DefectoTexto, false)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Nombre, defecto, celda(permitidos(v.Valores), false), celda(v.Descripcion, false))
		}
	}
	fmt.Fprintf(&b, "\n## Deprecated names\n\nStill read when the new name is unset; the binary logs a notice at start.\n\n| deprecated | use |\n|---|---|\n")
	for _, v := range Variables {
		for _, a := range v.Alias {
			fmt.Fprintf(&b, "| `%s` | `%s` |\n", a, v.Nombre)
		}
	}
	return b.Bytes()
}

// permitidos is what vs allows without the error message's preamble.
func permitidos(vs Valores) string {
	s := vs.Permitidos()
	for _, p := range []string{"allowed values are ", "allowed are "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// defectoDe is the default as the documentation and -h state it.
func defectoDe(v Variable) string {
	if v.DefectoTexto != "" {
		return v.DefectoTexto
	}
	return v.Defecto
}

// celda escapes s for a Markdown table cell; codigo sets it as code.
func celda(s string, codigo bool) string {
	if s == "" {
		return ""
	}
	if codigo {
		return "`" + strings.ReplaceAll(s, "|", "\\|") + "`"
	}
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "<", "\\<")
}

// Ayuda writes the variables binario reads, for its -h.
func Ayuda(w io.Writer, binario Binario) {
	vs := De(binario)
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nEnvironment (docs/configuration.md):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range vs {
		d := defectoDe(v)
		if d != "" {
			d = " (default " + d + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", v.Nombre, v.Descripcion, d)
	}
	tw.Flush()
}

// PideAyuda reports whether the command line args (without the program name)
// ask for help, which then goes to stdout (asked for) rather than stderr (a
// mistake). Arguments after "--" do not count.
func PideAyuda(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "--h":
			return true
		case "--":
			return false
		}
	}
	return false
}
