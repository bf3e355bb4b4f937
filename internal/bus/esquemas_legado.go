package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// ErrEsquemaNoEncontrado is returned when the schema registry has no schema
// of the asked version for a topic. Versions are never reused, so a message
// that names such a version can never be read.
var ErrEsquemaNoEncontrado = errors.New("esquema no encontrado")

// EsquemaVersion returns the schema a topic had at version (the version a
// consumed message carries in its metadata): its type (AVRO, JSON, ...) and
// its text. Readers of topics written by foreign producers use it to decode
// each message with the schema it was written with.
//
// An unknown topic or version wraps ErrEsquemaNoEncontrado; any other
// failure (broker unreachable, 5xx, access denied) is worth retrying later.
func (a *Admin) EsquemaVersion(ctx context.Context, topico string, version int64) (tipo, texto string, err error) {
	ruta, err := rutaSchema(topico)
	if err != nil {
		return "", "", err
	}
	ruta += "/" + strconv.FormatInt(version, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+ruta, nil)
	if err != nil {
		return "", "", fmt.Errorf("esquema %d de %s: %w", version, topico, err)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("esquema %d de %s: %w", version, topico, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", fmt.Errorf("esquema %d de %s: leer respuesta: %w", version, topico, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", "", fmt.Errorf("esquema %d de %s: %w: %s", version, topico, ErrEsquemaNoEncontrado, strings.TrimSpace(string(b)))
	case resp.StatusCode/100 != 2:
		return "", "", fmt.Errorf("esquema %d de %s: GET %s: %s: %s", version, topico, ruta, resp.Status, strings.TrimSpace(string(b)))
	}
	var r struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", "", fmt.Errorf("esquema %d de %s: respuesta ilegible: %w", version, topico, err)
	}
	return r.Type, r.Data, nil
}
