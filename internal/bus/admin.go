package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Admin talks to the broker's admin REST API (the same API scripts/pulsar-admin
// uses) to prepare the tenant, namespace, policies and schemas, idempotently.
type Admin struct {
	URL  string // e.g. http://127.0.0.1:8080
	HTTP *http.Client
	// seguridad names the trust store in TLS errors.
	seguridad Seguridad
}

// NuevoAdmin returns an Admin of an open broker with a bounded HTTP client.
func NuevoAdmin(url string) *Admin {
	return &Admin{URL: strings.TrimRight(url, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// NuevoAdminSeguro returns an Admin that sends s's credentials with every
// request (a token file is re-read, an OAuth2 token refreshed, per request)
// and verifies an https broker against s's trust store. It fails when the
// credentials cannot be loaded.
func NuevoAdminSeguro(url string, s Seguridad) (*Admin, error) {
	t, err := s.transporte()
	if err != nil {
		return nil, fmt.Errorf("admin de pulsar %s: %w", url, err)
	}
	a := NuevoAdmin(url)
	a.HTTP.Transport = t
	a.seguridad = s
	return a, nil
}

// ErrRechazado is returned when the broker refuses a request (4xx), e.g. an
// incompatible schema. A 401 is also ErrAutenticacion, a 403 also
// ErrAutorizacion.
var ErrRechazado = errors.New("rechazado por el broker")

func (a *Admin) hacer(ctx context.Context, metodo, ruta string, cuerpo any, ok ...int) ([]byte, error) {
	var r io.Reader
	if cuerpo != nil {
		b, err := json.Marshal(cuerpo)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, metodo, a.URL+ruta, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", metodo, ruta, causaTLS(err, a.seguridad))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	for _, c := range ok {
		if resp.StatusCode == c {
			return b, nil
		}
	}
	detalle := ": " + strings.TrimSpace(string(b))
	if strings.HasPrefix(strings.TrimSpace(string(b)), "<") || len(b) == 0 {
		detalle = "" // Jetty's HTML page says no more than the status
	}
	err = fmt.Errorf("%s %s: %s%s", metodo, ruta, resp.Status, detalle)
	switch {
	case resp.StatusCode == http.StatusUnauthorized && falsoNoAutenticado(b):
		// Pulsar answers some authorization refusals with 401.
		err = a.denegado(metodo, ruta, fmt.Errorf("%w: %w", ErrRechazado, err))
	case resp.StatusCode == http.StatusUnauthorized:
		err = fmt.Errorf("%w (SAGAS_PULSAR_AUTH=%s%s): %w: %w", ErrAutenticacion, a.seguridad.metodo(), a.seguridad.pista(time.Now()), ErrRechazado, err)
	case resp.StatusCode == http.StatusForbidden:
		err = a.denegado(metodo, ruta, fmt.Errorf("%w: %w", ErrRechazado, err))
	case resp.StatusCode/100 == 4:
		err = fmt.Errorf("%w: %w", ErrRechazado, err)
	}
	return nil, err
}

// falsoNoAutenticado reports whether a 401's body is an authorization
// refusal (the role is known but lacks a permission) rather than failed
// authentication.
func falsoNoAutenticado(cuerpo []byte) bool {
	m := string(cuerpo)
	return strings.Contains(m, "Unauthorized to validate") || strings.Contains(m, "Don't have permission")
}

// Clusters lists the broker's clusters (standalone answers ["standalone"]).
func (a *Admin) Clusters(ctx context.Context) ([]string, error) {
	b, err := a.hacer(ctx, http.MethodGet, "/admin/v2/clusters", nil)
	if err != nil {
		return nil, err
	}
	var cs []string
	return cs, json.Unmarshal(b, &cs)
}

// Politicas are the namespace policies an operator chooses; the design's
// own (broker de-duplication, BACKWARD_TRANSITIVE schema compatibility) are
// not choices and always set.
type Politicas struct {
	// Retencion keeps acknowledged messages this long (minute resolution;
	// negative = forever), for inspection and replays.
	Retencion time.Duration
	// RetencionMB bounds the retained size per topic (-1 = no bound).
	RetencionMB int64
}

// PoliticasPorDefecto keep acknowledged messages one day, up to 1 GiB per topic.
var PoliticasPorDefecto = Politicas{Retencion: 24 * time.Hour, RetencionMB: 1024}

// PrepararNamespace creates tenant and namespace when missing and sets their
// policies: de-duplication, retention (pol) and the schema compatibility
// strategy (BACKWARD_TRANSITIVE: a new schema must read every older one).
// It is the operator's provisioning step and needs a role that administers
// the tenant (creating a tenant needs a super-user). Several callers may run
// it at once: Pulsar 4.0 answers 500 (BadVersionException) to one of two
// concurrent creations, so a failed creation after which the resource
// exists counts as success.
func (a *Admin) PrepararNamespace(ctx context.Context, tenant, namespace string, pol Politicas) error {
	crear := func(ruta string, cuerpo func() (any, error)) error {
		if _, err := a.hacer(ctx, http.MethodGet, ruta, nil); err == nil {
			return nil
		}
		c, err := cuerpo()
		if err != nil {
			return err
		}
		_, err = a.hacer(ctx, http.MethodPut, ruta, c, http.StatusConflict)
		if err == nil {
			return nil
		}
		if _, errGet := a.hacer(ctx, http.MethodGet, ruta, nil); errGet == nil {
			return nil // someone else created it meanwhile
		}
		return err
	}
	tenantNuevo := func() (any, error) {
		cs, err := a.Clusters(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"allowedClusters": cs, "adminRoles": []string{}}, nil
	}
	if err := crear("/admin/v2/tenants/"+tenant, tenantNuevo); err != nil {
		return fmt.Errorf("crear tenant %s: %w", tenant, err)
	}
	ns := "/admin/v2/namespaces/" + tenant + "/" + namespace
	if err := crear(ns, func() (any, error) { return map[string]any{}, nil }); err != nil {
		return fmt.Errorf("crear namespace %s/%s: %w", tenant, namespace, err)
	}
	minutos := int64(-1)
	if pol.Retencion >= 0 {
		minutos = int64(pol.Retencion / time.Minute)
	}
	pasos := []struct {
		metodo, ruta string
		valor        any
	}{
		{http.MethodPost, "/deduplication", true},
		{http.MethodPost, "/retention", map[string]any{"retentionTimeInMinutes": minutos, "retentionSizeInMB": pol.RetencionMB}},
		{http.MethodPut, "/schemaCompatibilityStrategy", "BACKWARD_TRANSITIVE"},
	}
	for _, p := range pasos {
		if _, err := a.hacer(ctx, p.metodo, ns+p.ruta, p.valor); err != nil {
			return fmt.Errorf("política %s de %s/%s: %w", p.ruta, tenant, namespace, err)
		}
	}
	return nil
}

// RegistrarEsquema uploads an Avro schema for a topic
// (persistent://tenant/ns/name). The broker checks it against the topic's
// compatibility strategy and answers ErrRechazado if it is incompatible.
func (a *Admin) RegistrarEsquema(ctx context.Context, topico, esquemaAvro string) error {
	ruta, err := rutaSchema(topico)
	if err != nil {
		return err
	}
	_, err = a.hacer(ctx, http.MethodPost, ruta, map[string]any{
		"type": "AVRO", "schema": esquemaAvro, "properties": map[string]string{},
	})
	if err != nil {
		return fmt.Errorf("registrar esquema de %s: %w", topico, err)
	}
	return nil
}

// Esquema returns the topic's latest schema text and version.
func (a *Admin) Esquema(ctx context.Context, topico string) (texto string, version int64, err error) {
	ruta, err := rutaSchema(topico)
	if err != nil {
		return "", 0, err
	}
	b, err := a.hacer(ctx, http.MethodGet, ruta, nil)
	if err != nil {
		return "", 0, err
	}
	var r struct {
		Version int64  `json:"version"`
		Data    string `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", 0, err
	}
	return r.Data, r.Version, nil
}

// VersionEsquema returns the version under which the topic's registry holds
// the Avro schema esquemaAvro, or -1 when it holds no such schema (or the
// topic has none). Any role that may produce or consume on the topic may ask.
func (a *Admin) VersionEsquema(ctx context.Context, topico, esquemaAvro string) (int64, error) {
	ruta, err := rutaSchema(topico)
	if err != nil {
		return 0, err
	}
	b, err := a.hacer(ctx, http.MethodPost, strings.TrimSuffix(ruta, "/schema")+"/version", map[string]any{
		"type": "AVRO", "schema": esquemaAvro, "properties": map[string]string{},
	}, http.StatusNotFound)
	if err != nil {
		return 0, fmt.Errorf("versión del esquema de %s: %w", topico, err)
	}
	var r struct {
		Version *int64 `json:"version"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Version == nil {
		return -1, nil // 404: no schema at all
	}
	return *r.Version, nil
}

// Suscripciones lists the topic's subscriptions. Any role that may consume
// from the topic may ask, so it doubles as a check of that permission; a
// missing topic is ErrTopicoInexistente.
func (a *Admin) Suscripciones(ctx context.Context, topico string) ([]string, error) {
	ruta, ok := strings.CutPrefix(topico, "persistent://")
	if !ok || strings.Count(ruta, "/") != 2 {
		return nil, fmt.Errorf("tópico %q: se espera persistent://tenant/namespace/nombre", topico)
	}
	b, err := a.hacer(ctx, http.MethodGet, "/admin/v2/persistent/"+ruta+"/subscriptions", nil, http.StatusNotFound)
	if err != nil {
		return nil, fmt.Errorf("suscripciones de %s: %w", topico, err)
	}
	var subs []string
	if json.Unmarshal(b, &subs) != nil {
		return nil, fmt.Errorf("%s: %w", topico, ErrTopicoInexistente) // the 404's {"reason": ...}
	}
	return subs, nil
}

// Vivo reports whether the broker answers its admin API.
func (a *Admin) Vivo(ctx context.Context) error {
	_, err := a.Clusters(ctx)
	return err
}

func rutaSchema(topico string) (string, error) {
	resto, ok := strings.CutPrefix(topico, "persistent://")
	partes := strings.Split(resto, "/")
	if !ok || len(partes) != 3 {
		return "", fmt.Errorf("tópico %q: se espera persistent://tenant/namespace/nombre", topico)
	}
	return "/admin/v2/schemas/" + resto + "/schema", nil
}

// ActivarDeduplicacion turns broker de-duplication on for one topic.
func (a *Admin) ActivarDeduplicacion(ctx context.Context, topico string) error {
	ruta, ok := strings.CutPrefix(topico, "persistent://")
	if !ok {
		return fmt.Errorf("tópico %q: se espera persistent://...", topico)
	}
	if _, err := a.hacer(ctx, http.MethodPost, "/admin/v2/persistent/"+ruta+"/deduplicationEnabled", true); err != nil {
		return fmt.Errorf("de-duplicación de %s: %w", topico, err)
	}
	return nil
}

// ConcederPermiso grants rol the actions (produce, consume) on one topic
// persistent://tenant/namespace/name.
func (a *Admin) ConcederPermiso(ctx context.Context, topico, rol string, acciones ...string) error {
	ruta, ok := strings.CutPrefix(topico, "persistent://")
	if !ok || strings.Count(ruta, "/") != 2 {
		return fmt.Errorf("tópico %q: se espera persistent://tenant/namespace/nombre", topico)
	}
	if _, err := a.hacer(ctx, http.MethodPost, "/admin/v2/persistent/"+ruta+"/permissions/"+rol, acciones); err != nil {
		return fmt.Errorf("conceder %v sobre %s a %s: %w", acciones, topico, rol, err)
	}
	return nil
}

// CrearTopico creates the non-partitioned topic persistent://tenant/namespace/name
// if it does not exist. A partitioned topic of that name counts as existing:
// Particiones tells the two apart.
func (a *Admin) CrearTopico(ctx context.Context, topico string) error {
	ruta, err := rutaTopico(topico)
	if err != nil {
		return err
	}
	if _, err := a.hacer(ctx, http.MethodPut, ruta, nil, http.StatusConflict); err != nil {
		return fmt.Errorf("crear tópico %s: %w", topico, err)
	}
	return nil
}

// CrearTopicoParticionado creates the partitioned topic
// persistent://tenant/namespace/name with n partitions if no topic of that
// name exists. An existing topic, partitioned or not and whatever its
// count, counts as existing: Particiones tells what it is.
func (a *Admin) CrearTopicoParticionado(ctx context.Context, topico string, n int) error {
	ruta, err := rutaTopico(topico)
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("crear tópico %s con %d particiones: se necesita al menos una", topico, n)
	}
	if _, err := a.hacer(ctx, http.MethodPut, ruta+"/partitions", n, http.StatusConflict); err != nil {
		return fmt.Errorf("crear tópico particionado %s (%d particiones): %w", topico, n, err)
	}
	return nil
}

// Particiones returns the partition count of a partitioned topic, and 0 for
// a non-partitioned one (or none at all: the broker's partition metadata does
// not tell a missing topic from a non-partitioned one). Any role that may
// produce or consume on the topic may ask.
func (a *Admin) Particiones(ctx context.Context, topico string) (int, error) {
	ruta, err := rutaTopico(topico)
	if err != nil {
		return 0, err
	}
	b, err := a.hacer(ctx, http.MethodGet, ruta+"/partitions", nil)
	if err != nil {
		return 0, fmt.Errorf("particiones de %s: %w", topico, err)
	}
	var r struct {
		Partitions int `json:"partitions"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("particiones de %s: respuesta ilegible %q: %w", topico, b, err)
	}
	return r.Partitions, nil
}

// rutaTopico is the admin API path of persistent://tenant/namespace/name.
func rutaTopico(topico string) (string, error) {
	ruta, ok := strings.CutPrefix(topico, "persistent://")
	if !ok || strings.Count(ruta, "/") != 2 {
		return "", fmt.Errorf("tópico %q: se espera persistent://tenant/namespace/nombre", topico)
	}
	return "/admin/v2/persistent/" + ruta, nil
}
