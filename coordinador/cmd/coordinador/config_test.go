package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func entornoDe(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPorDefectoEsValida(t *testing.T) {
	c, err := leerConfig(entornoDe(map[string]string{"SAGAS_DB_PATH": t.TempDir() + "/c.db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Almacen != "sqlite" || c.APIAddr != "127.0.0.1:8003" || c.PulsarURL != "pulsar://127.0.0.1:6650" || !c.Puente || c.LogDir != "logs/sagas" {
		t.Fatalf("defaults: %+v", c)
	}
	if !strings.HasPrefix(c.Replica, "coordinador-") {
		t.Fatalf("replica %q", c.Replica)
	}
}

func TestConfigInvalidaReportaTodosLosProblemasALaVez(t *testing.T) {
	_, err := leerConfig(entornoDe(map[string]string{
		"SAGAS_STORAGE_TYPE": "postgres", "SAGAS_DB_PORT": "99999", "SAGAS_PULSAR_URL": "http://x",
		"SAGAS_PUENTE": "quizas", "SAGAS_LOG_LEVEL": "ruido", "SAGAS_TIMER_INTERVAL": "1ns",
		"SAGAS_PULSAR_NAMESPACE": "a/b", "SAGAS_LEGADO_TOPICO_LANZAR": "x",
	}))
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{
		`SAGAS_STORAGE_TYPE="postgres": allowed values are sqlite, mysql`, "SAGAS_DB_PORT", "SAGAS_PULSAR_URL",
		"SAGAS_PUENTE", "SAGAS_LOG_LEVEL", "SAGAS_TIMER_INTERVAL", "SAGAS_PULSAR_NAMESPACE", "SAGAS_LEGADO_TOPICO_LANZAR",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

func TestCheckConfigNoArrancaNada(t *testing.T) {
	var out bytes.Buffer
	env := entornoDe(map[string]string{"SAGAS_DB_PATH": t.TempDir() + "/c.db", "SAGAS_PULSAR_ADMIN_URL": "http://127.0.0.1:1"})
	if err := run(context.Background(), []string{"coordinador", "-check-config"}, env, &out, nil); err != nil || !strings.Contains(out.String(), "OK") {
		t.Fatalf("check-config: %v %q", err, out.String())
	}
	err := run(context.Background(), []string{"coordinador", "-check-config"}, entornoDe(map[string]string{"SAGAS_STORAGE_TYPE": "postgres"}), &out, nil)
	if err == nil || !strings.Contains(err.Error(), "SAGAS_STORAGE_TYPE") {
		t.Fatalf("check-config with a bad store: %v", err)
	}
}

func TestConfigLeeTrabajadoresConSuNombreObsoleto(t *testing.T) {
	for _, c := range []struct {
		nombre string
		env    map[string]string
		want   int
	}{
		{"nombre", map[string]string{"SAGAS_CONSUMER_WORKERS": "8"}, 8},
		{"alias obsoleto de los participantes", map[string]string{"SAGAS_TRABAJADORES": "16"}, 16},
		{"el nombre gana al alias", map[string]string{"SAGAS_CONSUMER_WORKERS": "8", "SAGAS_TRABAJADORES": "16"}, 8},
	} {
		c.env["SAGAS_DB_PATH"] = t.TempDir() + "/c.db"
		cfg, err := leerConfig(entornoDe(c.env))
		if err != nil || cfg.Trabajadores != c.want {
			t.Errorf("%s: %d, %v; want %d", c.nombre, cfg.Trabajadores, err, c.want)
		}
	}
}

func TestConfigSQLiteEnElDirectorioDeDatosSinRutaExplicita(t *testing.T) {
	dir := t.TempDir()
	c, err := leerConfig(entornoDe(map[string]string{"SAGAS_DATA_DIR": dir}))
	if err != nil || c.SQLitePath != dir+"/coordinador.db" {
		t.Fatalf("%q, %v", c.SQLitePath, err)
	}
}

func TestConfigTokenDeSoloLecturaJuntoAlDeOperador(t *testing.T) {
	dir := t.TempDir()
	c, err := leerConfig(entornoDe(map[string]string{"SAGAS_DATA_DIR": dir, "SAGAS_API_TOKEN": "op", "SAGAS_API_READ_TOKEN": "lec"}))
	if err != nil || c.APIToken != "op" || c.TokenLectura != "lec" {
		t.Fatalf("%q %q, %v", c.APIToken, c.TokenLectura, err)
	}
	for _, env := range []map[string]string{
		{"SAGAS_API_READ_TOKEN": "lec"},
		{"SAGAS_API_READ_TOKEN": "igual", "SAGAS_API_TOKEN": "igual"},
	} {
		env["SAGAS_DATA_DIR"] = dir
		_, err := leerConfig(entornoDe(env))
		if err == nil || !strings.Contains(err.Error(), "SAGAS_API_READ_TOKEN") || !strings.Contains(err.Error(), "SAGAS_API_TOKEN") {
			t.Errorf("%v: %v, want an error naming both variables", env, err)
		}
		if err != nil && strings.Contains(err.Error(), `"`+env["SAGAS_API_READ_TOKEN"]+`"`) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}
