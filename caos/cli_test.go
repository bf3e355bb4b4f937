package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestAyudaListaFlagsYVariablesYSaleSinError(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"caos", arg}, sinEntorno, &out); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"-corto", "-plan", "-version", "SAGAS_CACHE_DIR", "SAGAS_PULSAR_AUTH", "SAGAS_PULSAR_TOKEN_FILE"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: help does not list %s:\n%s", arg, want, out.String())
			}
		}
	}
}

func TestVersionImprimeLaVersionSinPrepararNada(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"caos", "-version"}, sinEntorno, &out); err != nil || !strings.HasPrefix(out.String(), "caos ") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("%v %q", err, out.String())
	}
}

func sinEntorno(string) string { return "" }

// The cluster plans run on scripts/cluster.sh's cluster: both brokers in
// the service URL, the admin URL on the broker the plan does not kill,
// 4 partitions unless told; plans that restart or proxy the world's own
// broker are refused there, and so is a broker the cluster does not have.
func TestConfigDeLosPlanesDelCluster(t *testing.T) {
	c, err := leerConfig([]string{"caos", "-plan", "broker-cluster"}, sinEntorno, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster || c.Particiones != 4 || c.urlPulsar() != "pulsar://127.0.0.1:6680,127.0.0.1:6681" || c.urlAdmin() != "http://127.0.0.1:8091" {
		t.Errorf("broker-cluster: Cluster %v, %d partitions, %s, %s", c.Cluster, c.Particiones, c.urlPulsar(), c.urlAdmin())
	}
	c, err = leerConfig([]string{"caos", "-plan", "unload", "-broker-victima", "2", "-particiones", "3"}, sinEntorno, &bytes.Buffer{})
	if err != nil || c.urlAdmin() != "http://127.0.0.1:8090" || c.Particiones != 3 {
		t.Errorf("unload -broker-victima 2 -particiones 3: %v, %s, %d", err, c.urlAdmin(), c.Particiones)
	}
	c, err = leerConfig([]string{"caos", "-plan", "zombie"}, sinEntorno, &bytes.Buffer{})
	if err != nil || c.Cluster || c.Particiones != 1 || c.urlPulsar() != "pulsar://127.0.0.1:6661" {
		t.Errorf("zombie: %v, Cluster %v, %d partitions, %s", err, c.Cluster, c.Particiones, c.urlPulsar())
	}
	for _, args := range [][]string{
		{"-cluster"}, // completo restarts the world's own broker
		{"-cluster", "-plan", "partition"},
		{"-plan", "broker-cluster", "-broker-victima", "3"},
		{"-plan", "unload", "-particiones", "-1"},
		{"-plan", "unload", "-particiones", "1025"},
	} {
		if _, err := leerConfig(append([]string{"caos"}, args...), sinEntorno, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// particionesMundo names every partition of the world's command, reply and
// event topics as the lookup API takes them.
func TestParticionesMundo(t *testing.T) {
	m := &mundo{cfg: config{Namespace: "ns", Particiones: 2}}
	ps := m.particionesMundo()
	if len(ps) != 16 || ps[0] != "persistent/alpespartner/ns/comandos-influencer-partition-0" || ps[15] != "persistent/alpespartner/ns/eventos-saga-partition-1" {
		t.Errorf("%d partitions: %v", len(ps), ps)
	}
	m.cfg.Particiones = 1
	if ps := m.particionesMundo(); len(ps) != 8 || ps[7] != "persistent/alpespartner/ns/eventos-saga" {
		t.Errorf("non-partitioned: %v", ps)
	}
}
