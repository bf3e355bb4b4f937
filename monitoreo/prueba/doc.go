// Package prueba tests the Grafana dashboard (monitoreo/grafana/dashboards)
// and the alert rules (monitoreo/alertas.yml) against the real system: the
// coordinator and the six participants run as processes on the test broker,
// Debian's prometheus scrapes them, and every PromQL expression of the
// dashboard must return data. It holds tests only.
package prueba
