package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// ejemplosPorComprobacion bounds the examples printed under a failed check.
const ejemplosPorComprobacion = 10

// imprimir writes the run's summary: the plan as it happened, outcomes,
// throughput, the table of checks and examples of each violation.
func imprimir(w io.Writer, r *resultado) {
	fmt.Fprintf(w, "\n=== caos: resumen ===\n")
	if len(r.Plan) > 0 {
		fmt.Fprintf(w, "plan de fallas:\n")
		for i, v := range r.Plan {
			fmt.Fprintf(w, "  %d. +%6.1fs  %-60s reparado +%6.1fs (%.1fs caído); primera saga terminada %s tras la falla, %s tras la reparación; última de las solapadas terminada %s tras la reparación\n", i+1,
				v.Inicio.Sub(r.Inicio).Seconds(), v.Falla, v.Fin.Sub(r.Inicio).Seconds(), v.Fin.Sub(v.Inicio).Seconds(),
				demora(v.Inicio, v.PrimeraTrasFalla), demora(v.Fin, v.PrimeraTrasReparacion), demora(v.Fin, v.UltimaSolapada))
			if !v.Reanudada.IsZero() {
				fmt.Fprintf(w, "     ninguna saga terminó durante %.1fs tras la falla; la primera terminó de nuevo %s tras la falla\n", v.Detenida.Seconds(), demora(v.Inicio, v.Reanudada))
			}
			if i < len(r.API) {
				fmt.Fprintf(w, "       durante la falla, %s\n", r.API[i])
			}
		}
	}
	fmt.Fprintf(w, "en todo el run, %s\n", r.APITotal)

	fmt.Fprintf(w, "desenlaces:\n")
	tipos := make([]string, 0, len(r.Desenlaces))
	for t := range r.Desenlaces {
		tipos = append(tipos, t)
	}
	sort.Strings(tipos)
	total := map[string]int{}
	for _, t := range tipos {
		var partes []string
		for _, e := range []string{"COMPLETADA", "COMPENSADA", "CANCELADA", "COMPENSACION_FALLIDA"} {
			partes = append(partes, fmt.Sprintf("%s %d", e, r.Desenlaces[t][e]))
			total[e] += r.Desenlaces[t][e]
		}
		fmt.Fprintf(w, "  %-26s %s\n", t, strings.Join(partes, "  "))
	}
	terminales := total["COMPLETADA"] + total["COMPENSADA"] + total["CANCELADA"] + total["COMPENSACION_FALLIDA"]
	pct := 0.0
	if terminales > 0 {
		pct = 100 * float64(total["COMPENSADA"]) / float64(terminales)
	}
	fmt.Fprintf(w, "  total: %d completadas, %d compensadas (%.1f%%), %d con compensación fallida\n",
		total["COMPLETADA"], total["COMPENSADA"], pct, total["COMPENSACION_FALLIDA"])

	fmt.Fprintf(w, "rendimiento:\n")
	if d := r.UltimoAceptado.Sub(r.PrimerPOST).Seconds(); d > 0 {
		fmt.Fprintf(w, "  POST:              %d aceptadas en %.1fs = %.1f/s (objetivo %.1f/s), %d reintentos de POST\n",
			r.Aceptadas, d, float64(r.Aceptadas)/d, r.TasaObjetivo, r.ReintentosPOST)
	}
	if d := r.UltimoFin.Sub(r.PrimerPOST).Seconds(); d > 0 && terminales > 0 {
		fmt.Fprintf(w, "  extremo a extremo: %d sagas terminales en %.1fs (primer POST → última terminal) = %.1f sagas/s, con las fallas\n",
			terminales, d, float64(terminales)/d)
	}
	if !r.Terminadas.IsZero() {
		fmt.Fprintf(w, "  fin:               todas terminales y outbox vacío %.1fs tras la última reparación y %.1fs tras el último 202 (cota %s desde el más tardío); última timestamp_fin %.1fs tras la última reparación\n",
			r.Terminadas.Sub(r.FinFallas).Seconds(), r.Terminadas.Sub(r.UltimoAceptado).Seconds(), r.Cota, r.UltimoFin.Sub(r.FinFallas).Seconds())
	} else {
		fmt.Fprintf(w, "  fin:               NO todas terminales dentro de la cota de %s\n", r.Cota)
	}

	fmt.Fprintf(w, "comprobaciones (leídas de los almacenes: MySQL del coordinador y de cada participante, y el broker):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  \tcomprobación\trevisados\tfallos\tnota\n")
	for _, f := range r.Filas {
		marca := "ok"
		switch {
		case f.Info:
			marca = "--"
		case f.Fallos > 0:
			marca = "MAL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", marca, f.Comprobacion, f.Revisados, f.Fallos, f.Nota)
	}
	tw.Flush()
	for _, f := range r.Filas {
		ej := r.Detalle[f.Comprobacion]
		if len(ej) == 0 {
			continue
		}
		sort.Strings(ej)
		fmt.Fprintf(w, "detalle de %q (%d):\n", f.Comprobacion, len(ej))
		for i, e := range ej {
			if i == ejemplosPorComprobacion {
				fmt.Fprintf(w, "  … y %d más\n", len(ej)-i)
				break
			}
			fmt.Fprintf(w, "  - %s\n", e)
		}
	}
	for _, c := range r.Caidas {
		fmt.Fprintf(w, "últimas líneas de %s antes de su caída (%s):\n%s\n", c.Proceso, c.Cuando.Format(time.TimeOnly), indentar(c.Cola))
	}
	if n := r.Violaciones(); n > 0 {
		fmt.Fprintf(w, "RESULTADO: %d violaciones\n", n)
	} else {
		fmt.Fprintf(w, "RESULTADO: ninguna violación\n")
	}
}
