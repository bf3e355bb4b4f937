package almacen

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// formatoSQLite is how SQLite stores times: UTC, fixed width, microseconds,
// so that text order is time order and range queries can use indexes. SQLite's
// own date functions understand it.
const formatoSQLite = "2006-01-02 15:04:05.000000"

// normalizar is the precision both databases keep: microseconds, in UTC, with
// no monotonic reading. Callers compare what they wrote with what they read
// through it.
func normalizar(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// nuloSiVacio stores an empty string as NULL.
func nuloSiVacio(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonONulo stores empty raw JSON as NULL and the rest as text, byte for byte.
func jsonONulo(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// segundos is the duration column derived from two times (NULL unless both
// are set).
func segundos(inicio, fin time.Time) any {
	if inicio.IsZero() || fin.IsZero() {
		return nil
	}
	return normalizar(fin).Sub(normalizar(inicio)).Seconds()
}

// The scan targets below accept what either driver returns for a column,
// NULL included (a LEFT JOIN without steps yields NULL step columns).

// texto scans a string column; NULL is "".
type texto string

// Scan implements sql.Scanner.
func (t *texto) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*t = ""
	case string:
		*t = texto(x)
	case []byte:
		*t = texto(x)
	default:
		return fmt.Errorf("columna de texto: tipo %T inesperado", v)
	}
	return nil
}

// entero scans an integer column; NULL is 0.
type entero int64

// Scan implements sql.Scanner.
func (e *entero) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*e = 0
	case int64:
		*e = entero(x)
	case bool:
		*e = 0
		if x {
			*e = 1
		}
	case []byte:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return fmt.Errorf("columna entera: %w", err)
		}
		*e = entero(n)
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return fmt.Errorf("columna entera: %w", err)
		}
		*e = entero(n)
	default:
		return fmt.Errorf("columna entera: tipo %T inesperado", v)
	}
	return nil
}

// crudo scans raw bytes (JSON text or a blob); NULL and empty are nil. The
// bytes are copied: drivers reuse their buffers.
type crudo []byte

// Scan implements sql.Scanner.
func (c *crudo) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c = nil
	case string:
		if x == "" {
			*c = nil
		} else {
			*c = crudo(x)
		}
	case []byte:
		if len(x) == 0 {
			*c = nil
		} else {
			*c = bytes.Clone(x)
		}
	default:
		return fmt.Errorf("columna de bytes: tipo %T inesperado", v)
	}
	return nil
}

// instante scans a time column (DATETIME(6) with parseTime on MySQL, TEXT in
// formatoSQLite on SQLite); NULL is the zero time. The result is UTC.
type instante time.Time

// Scan implements sql.Scanner.
func (i *instante) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*i = instante{}
	case time.Time:
		*i = instante(normalizar(x))
	case string:
		return i.parsear(x)
	case []byte:
		return i.parsear(string(x))
	default:
		return fmt.Errorf("columna de tiempo: tipo %T inesperado", v)
	}
	return nil
}

func (i *instante) parsear(s string) error {
	if s == "" {
		*i = instante{}
		return nil
	}
	// time.DateTime also accepts a fractional second of any length.
	t, err := time.ParseInLocation(time.DateTime, s, time.UTC)
	if err != nil {
		t, err = time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("columna de tiempo %q: %w", s, err)
		}
	}
	*i = instante(normalizar(t))
	return nil
}

func (i instante) tiempo() time.Time { return time.Time(i) }
