package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Admin calls the tools (carga, caos) make, beside the provisioning ones.

// BorrarTopico deletes the non-partitioned topic persistent://tenant/ns/name,
// its subscriptions included (force). A topic that does not exist counts as
// deleted.
func (a *Admin) BorrarTopico(ctx context.Context, topico string) error {
	ruta, ok := strings.CutPrefix(topico, "persistent://")
	if !ok || strings.Count(ruta, "/") != 2 {
		return fmt.Errorf("tópico %q: se espera persistent://tenant/namespace/nombre", topico)
	}
	if _, err := a.hacer(ctx, http.MethodDelete, "/admin/v2/persistent/"+ruta+"?force=true", nil, http.StatusNotFound); err != nil {
		return fmt.Errorf("borrar tópico %s: %w", topico, err)
	}
	return nil
}

// Topicos lists the persistent topics of namespace tenant/ns, partitions
// of a partitioned topic each on its own (name-partition-N).
func (a *Admin) Topicos(ctx context.Context, tenant, ns string) ([]string, error) {
	b, err := a.hacer(ctx, http.MethodGet, "/admin/v2/persistent/"+tenant+"/"+ns, nil)
	if err != nil {
		return nil, fmt.Errorf("listar tópicos de %s/%s: %w", tenant, ns, err)
	}
	var ts []string
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("listar tópicos de %s/%s: %w", tenant, ns, err)
	}
	return ts, nil
}
