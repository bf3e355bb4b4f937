package almacen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// ejecutorAnotado records the texts it executes; each answers with its
// number of statements as affected rows (a driver that does not report
// each statement's figures, as mysqltx.ConResultados would).
type ejecutorAnotado struct {
	textos []string
	args   []any
	fallo  error
}

func (e *ejecutorAnotado) ExecContext(_ context.Context, q string, args ...any) (sql.Result, error) {
	e.textos, e.args = append(e.textos, q), append(e.args, args...)
	if e.fallo != nil {
		return nil, e.fallo
	}
	return resultadoFijo{filas: int64(strings.Count(q, ";\n") + 1)}, nil
}

func (e *ejecutorAnotado) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, errors.New("no queries in this test")
}

func (e *ejecutorAnotado) QueryRowContext(context.Context, string, ...any) *sql.Row { return nil }

func TestDiferidasVanConElUltimoEnunciadoEnOrden(t *testing.T) {
	e := &ejecutorAnotado{}
	d := &diferidas{tx: e}
	ctx := t.Context()
	if _, err := d.ExecContext(ctx, "A ?", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, "B ? ?", 2, 3); err != nil {
		t.Fatal(err)
	}
	if len(e.textos) != 0 || d.enviadas {
		t.Fatalf("sent before the last statement: %q", e.textos)
	}
	q, args, con := d.con("F ?", []any{4})
	if q != "A ?;\nB ? ?;\nF ?" || fmt.Sprint(args) != "[1 2 3 4]" || !con {
		t.Fatalf("con = %q %v %v", q, args, con)
	}
	if q, _, con := d.con("G", nil); q != "G" || con {
		t.Fatalf("nothing held: con = %q %v", q, con)
	}
}

func TestLeerUnResultadoEnviaHastaEseEnunciado(t *testing.T) {
	e := &ejecutorAnotado{}
	d := &diferidas{tx: e}
	ctx := t.Context()
	a, _ := d.ExecContext(ctx, "A")
	b, _ := d.ExecContext(ctx, "B")
	if _, err := d.ExecContext(ctx, "C"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.RowsAffected(); err != nil || n != 2 {
		t.Fatalf("B: %d, %v; want the figure of the text it ended (2 statements)", n, err)
	}
	if n, err := b.RowsAffected(); err != nil || n != 2 || len(e.textos) != 1 {
		t.Fatalf("B again: %d, %v, %d texts sent; want the same, nothing sent", n, err, len(e.textos))
	}
	if e.textos[0] != "A;\nB" || !d.enviadas {
		t.Fatalf("sent %q; want A and B only", e.textos)
	}
	if _, err := a.RowsAffected(); !errors.Is(err, errResultadoPerdido) {
		t.Fatalf("A, sent with B and not reported: %v; want errResultadoPerdido", err)
	}
	if q, _, _ := d.con("F", nil); q != "C;\nF" {
		t.Fatalf("still held: %q; want C", q)
	}
}

func TestEnunciadoGrandeVaSoloYElErrorLlegaAlLeer(t *testing.T) {
	e := &ejecutorAnotado{}
	d := &diferidas{tx: e}
	ctx := t.Context()
	if _, err := d.ExecContext(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	grande := strings.Repeat("x", maxDiferidas+1)
	if _, err := d.ExecContext(ctx, "G ?", grande); err != nil {
		t.Fatal(err)
	}
	if len(e.textos) != 2 || e.textos[0] != "A" || e.textos[1] != "G ?" {
		t.Fatalf("sent %q; want A, then the large one alone", e.textos)
	}
	e.fallo = errors.New("duplicate key")
	r, err := d.ExecContext(ctx, "B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RowsAffected(); !errors.Is(err, e.fallo) {
		t.Fatalf("reading B: %v; want the error sending it", err)
	}
}
