// Package configuracion is the one table of the environment variables the
// binaries read (name, default, allowed values, meaning, which binaries read
// it) and the reader that validates them, shared by the coordinator, the
// participants, carga and caos. docs/configuration.md is generated from the
// table (go generate ./internal/configuracion).
package configuracion

//go:generate go run ./gen -o ../../docs/configuration.md

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Binario is a set of the binaries that read a variable.
type Binario uint8

// The binaries.
const (
	Coordinador Binario = 1 << iota
	Participantes
	Carga
	Caos
)

// Binarios lists each binary once, in the documentation's order.
var Binarios = []Binario{Coordinador, Participantes, Carga, Caos}

func (b Binario) String() string {
	var nombres []string
	for i, n := range []string{"coordinador", "participantes", "carga", "caos"} {
		if b&(1<<i) != 0 {
			nombres = append(nombres, n)
		}
	}
	return strings.Join(nombres, ", ")
}

// Variable is one setting.
type Variable struct {
	Nombre string
	// Defecto is the value used when the variable is unset or blank.
	Defecto string
	// DefectoTexto, when set, is how the documentation states a default the
	// reading code derives (from another variable, the clock, the host).
	DefectoTexto string
	Valores      Valores
	Descripcion  string
	Binarios     Binario
	// Alias are deprecated names still read when Nombre is unset.
	Alias []string
}

// Variables is the table of every setting, in the documentation's order.
var Variables = []Variable{
	// The broker.
	{Nombre: "SAGAS_PULSAR_URL", Defecto: "pulsar://127.0.0.1:6650", Valores: URL{"pulsar", "pulsar+ssl"},
		Descripcion: "broker binary protocol URL (carga: the default of -pulsar)", Binarios: Coordinador | Participantes | Carga},
	{Nombre: "SAGAS_PULSAR_ADMIN_URL", Defecto: "http://127.0.0.1:8080", Valores: URL{"http", "https"},
		Descripcion: "broker admin REST URL (carga: the default of -admin)", Binarios: Coordinador | Participantes | Carga},
	{Nombre: "SAGAS_PULSAR_TENANT", Defecto: "alpespartner", Valores: Nombre{},
		Descripcion: "tenant of our topics (carga: the default of -tenant)", Binarios: Coordinador | Participantes | Carga},
	{Nombre: "SAGAS_PULSAR_NAMESPACE", Defecto: "sagas", Valores: Nombre{},
		Descripcion: "namespace of our topics (carga: the default of -namespace)", Binarios: Coordinador | Participantes | Carga},
	{Nombre: "SAGAS_PULSAR_PARTITIONS", Defecto: "1", Valores: Entero{1, 1024},
		Descripcion: "partitions of the command, reply and event topics: 1 = non-partitioned topics; above 1, coordinador -preparar creates partitioned topics of that many partitions and every process's start-up check refuses a topic partitioned otherwise. The same value for every process; an existing topic cannot be converted in place (docs/production.md, Partitioned topics)", Binarios: Coordinador | Participantes},
	// Provisioning (coordinador -preparar): read only by that step.
	{Nombre: "SAGAS_PULSAR_ROLES", DefectoTexto: "each component's own name",
		Valores: Texto{}, Descripcion: "broker role of each component, granted its permissions by coordinador -preparar: comma-separated componente=rol (componentes: coordinador and the participant services), e.g. coordinador=sagas-coord,marca=sagas-marca", Binarios: Coordinador},
	{Nombre: "SAGAS_PULSAR_RETENTION_TIME", Defecto: "24h", Valores: Duracion{Min: time.Minute},
		Descripcion: "namespace retention of acknowledged messages, set by coordinador -preparar (minute resolution)", Binarios: Coordinador},
	{Nombre: "SAGAS_PULSAR_RETENTION_SIZE_MB", Defecto: "1024", Valores: Entero{-1, 1 << 30},
		Descripcion: "namespace retention bound per topic in MiB, set by coordinador -preparar (-1 = no bound)", Binarios: Coordinador},
	// Authentication and TLS towards the broker, binary protocol and admin API
	// alike (bus.Seguridad).
	{Nombre: "SAGAS_PULSAR_AUTH", Defecto: "none", Valores: Opciones{"none", "token", "oauth2", "tls"},
		Descripcion: "how to authenticate to the broker: none, token (SAGAS_PULSAR_TOKEN or _TOKEN_FILE), oauth2 (client credentials, SAGAS_PULSAR_OAUTH2_*), tls (client certificate, SAGAS_PULSAR_TLS_CERT_FILE and _KEY_FILE); carga and caos use the family for the clients they open themselves (caos's own world runs an open broker and passes none of it to its processes)", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_TOKEN", Valores: Texto{},
		Descripcion: "the JWT itself, with SAGAS_PULSAR_AUTH=token (prefer SAGAS_PULSAR_TOKEN_FILE)", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_TOKEN_FILE", Valores: Texto{},
		Descripcion: "file holding the JWT, with SAGAS_PULSAR_AUTH=token; re-read at every new broker connection, at every re-authentication the broker asks for, and at every admin request, so a replaced file is picked up without a restart", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_OAUTH2_ISSUER_URL", Valores: URL{"http", "https"},
		Descripcion: "OAuth2 issuer, with SAGAS_PULSAR_AUTH=oauth2: the token endpoint is read from <issuer>/.well-known/openid-configuration and asked for a client_credentials grant", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_OAUTH2_AUDIENCE", Valores: Texto{},
		Descripcion: "OAuth2 audience the broker expects", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_OAUTH2_PRIVATE_KEY", Valores: Texto{},
		Descripcion: "OAuth2 credentials file, as Pulsar clients read it: JSON {\"client_id\": …, \"client_secret\": …} (optionally \"issuer_url\"); a path, file:///path or data: URL", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_OAUTH2_SCOPE", Valores: Texto{},
		Descripcion: "OAuth2 scopes, space-separated", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_OAUTH2_TRUST_CERTS_FILE", Valores: Texto{}, DefectoTexto: "the system's CAs",
		Descripcion: "CAs (PEM) that sign the OAuth2 issuer's certificate, when it is not a public one (SAGAS_PULSAR_TLS_TRUST_CERTS_FILE is the broker's)", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_TLS_CERT_FILE", Valores: Texto{},
		Descripcion: "client certificate (PEM) presented in the TLS handshake: the credential with SAGAS_PULSAR_AUTH=tls", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_TLS_KEY_FILE", Valores: Texto{},
		Descripcion: "the client certificate's private key (PEM)", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_TLS_TRUST_CERTS_FILE", Valores: Texto{}, DefectoTexto: "the system's CAs",
		Descripcion: "CAs (PEM) that sign the broker's certificate, for pulsar+ssl:// and https://; the host name is verified too", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_PULSAR_TLS_ALLOW_INSECURE_CONNECTION", Defecto: "off", Valores: Interruptor{},
		Descripcion: "on accepts any broker certificate, chain and host name unverified (the Go client cannot skip only the host name check); for tests only", Binarios: Coordinador | Participantes | Carga | Caos},
	{Nombre: "SAGAS_CONSUMER_WORKERS", Defecto: "2", Valores: Entero{1, 256}, Alias: []string{"SAGAS_TRABAJADORES"},
		Descripcion: "workers that consume in parallel (the coordinator's replies, a participant's commands); each applies the messages queued for it in one transaction, per saga in order",
		Binarios:    Coordinador | Participantes},
	{Nombre: "SAGAS_MAX_REDELIVERIES", Defecto: "10", Valores: Entero{1, 1000},
		Descripcion: "redeliveries of a consumed message whose handling failed transiently (database down, timeout) before it is dead-lettered with its history (the coordinator's replies and legacy events, a participant's commands); a permanent failure is dead-lettered at once",
		Binarios:    Coordinador | Participantes},
	{Nombre: "SAGAS_REDELIVERY_DELAY", Defecto: "1s", Valores: Duracion{10 * time.Millisecond, time.Hour},
		Descripcion: "wait before the first redelivery of a message that failed transiently; it doubles on every further failure up to SAGAS_REDELIVERY_DELAY_MAX, and the message's later ones of the same saga wait behind it",
		Binarios:    Coordinador | Participantes},
	{Nombre: "SAGAS_REDELIVERY_DELAY_MAX", Defecto: "1m", Valores: Duracion{10 * time.Millisecond, time.Hour},
		Descripcion: "cap of the wait between two deliveries of a message that keeps failing transiently (at least SAGAS_REDELIVERY_DELAY)",
		Binarios:    Coordinador | Participantes},

	// The store.
	{Nombre: "SAGAS_STORAGE_TYPE", Defecto: "sqlite", Valores: Opciones{"sqlite", "mysql"},
		Descripcion: "sqlite (embedded; one coordinator replica) or mysql", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DATA_DIR", Defecto: ".run/data", Valores: Texto{},
		Descripcion: "directory of the SQLite files (participante-<servicio>.db, coordinador.db)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_PATH", DefectoTexto: "$SAGAS_DATA_DIR/coordinador.db", Valores: Texto{},
		Descripcion: "the coordinator's SQLite file", Binarios: Coordinador},
	{Nombre: "SAGAS_DB_HOST", Defecto: "127.0.0.1", Valores: Texto{},
		Descripcion: "MySQL host (compose: sagas-db)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_PORT", Defecto: "3306", Valores: Puerto{1},
		Descripcion: "MySQL port", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_USER", Defecto: "sagas", Valores: Texto{},
		Descripcion: "MySQL user", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_PASSWORD", DefectoTexto: "sagas123 when SAGAS_DB_HOST is loopback (127.0.0.1, ::1, localhost); otherwise required", Valores: Texto{},
		Descripcion: "MySQL password of SAGAS_DB_USER (prefer SAGAS_DB_PASSWORD_FILE)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_PASSWORD_FILE", Valores: Texto{},
		Descripcion: "file holding SAGAS_DB_PASSWORD, read at start (a trailing newline is dropped); set only one of the two", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_DSN", Valores: Texto{},
		Descripcion: "the server as a go-sql-driver/mysql DSN without a database (user:password@tcp(host:3306)/?tls=true&...), instead of SAGAS_DB_HOST, _PORT, _USER and _PASSWORD (setting both is an error); the database still comes from SAGAS_DB_NAME or SAGAS_DB_PREFIJO", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_DSN_FILE", Valores: Texto{},
		Descripcion: "file holding SAGAS_DB_DSN, read at start; set only one of the two", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_TLS", Defecto: "off", Valores: Opciones{"off", "on", "skip-verify"},
		Descripcion: "TLS to MySQL: on verifies the server's certificate chain (SAGAS_DB_TLS_CA_FILE, or the system's CAs) and host name; skip-verify encrypts but verifies nothing (tests only)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_TLS_CA_FILE", DefectoTexto: "the system's CAs", Valores: Texto{},
		Descripcion: "CAs (PEM) that sign the MySQL server's certificate, with SAGAS_DB_TLS=on", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_MIGRATION_USER", Valores: Texto{},
		Descripcion: "MySQL user that owns the schema (DDL), used only by -preparar; when set, the runtime (SAGAS_DB_USER, data privileges only) never changes the schema and refuses to start if it is not at the binary's version. Unset: SAGAS_DB_USER migrates at start (development)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_MIGRATION_PASSWORD", Valores: Texto{},
		Descripcion: "password of SAGAS_DB_MIGRATION_USER, needed by -preparar (prefer SAGAS_DB_MIGRATION_PASSWORD_FILE)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_MIGRATION_PASSWORD_FILE", Valores: Texto{},
		Descripcion: "file holding SAGAS_DB_MIGRATION_PASSWORD, read at start; set only one of the two", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_DB_NAME", Defecto: "sagas", Valores: Texto{},
		Descripcion: "the coordinator's MySQL database", Binarios: Coordinador},
	{Nombre: "SAGAS_DB_PREFIJO", Defecto: "participante_", Valores: Texto{},
		Descripcion: "prefix of a participant's MySQL database (<prefix><servicio>, created if missing)", Binarios: Participantes},
	{Nombre: "SAGAS_DB_MAX_CONNS", Defecto: "32", Valores: Entero{1, 1000},
		Descripcion: "MySQL connection pool size", Binarios: Coordinador},

	// HTTP and logs.
	{Nombre: "SAGAS_API_HOST", Defecto: "127.0.0.1", Valores: Texto{},
		Descripcion: "HTTP listen host of the API; any host but a loopback one (127.0.0.1, ::1, localhost), 0.0.0.0 included, needs SAGAS_API_TOKEN or SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on (compose: 0.0.0.0 with a token)", Binarios: Coordinador},
	{Nombre: "SAGAS_API_PORT", Defecto: "8003", Valores: Puerto{0},
		Descripcion: "HTTP port (API, /healthz, /readyz; /metrics too while SAGAS_API_HOST is loopback and SAGAS_METRICS_ADDR unset)", Binarios: Coordinador},
	{Nombre: "SAGAS_API_TOKEN", Valores: Texto{},
		Descripcion: "if set, POSTs and saga reads need Authorization: Bearer <token> (carga: the default of -token)", Binarios: Coordinador | Carga},
	{Nombre: "SAGAS_API_TOKEN_FILE", Valores: Texto{},
		Descripcion: "file holding SAGAS_API_TOKEN, read at start (a trailing newline is dropped); set only one of the two", Binarios: Coordinador | Carga},
	{Nombre: "SAGAS_API_READ_TOKEN", Valores: Texto{},
		Descripcion: "a read-only token: it opens the GET routes (and so the inspector's views), and the POSTs (start, retry) answer it 403; needs SAGAS_API_TOKEN, and must differ from it", Binarios: Coordinador},
	{Nombre: "SAGAS_API_READ_TOKEN_FILE", Valores: Texto{},
		Descripcion: "file holding SAGAS_API_READ_TOKEN, read at start (a trailing newline is dropped); set only one of the two", Binarios: Coordinador},
	{Nombre: "SAGAS_METRICS_ADDR", Valores: Direccion{},
		DefectoTexto: "participants: 127.0.0.1:0 (a free port); coordinator: none",
		Descripcion:  "the operations listener: a participant serves /metrics, /healthz, /readyz and /efectos/{saga_id} there; the coordinator /metrics (when unset, on the API listener while SAGAS_API_HOST is loopback, else nowhere); an address that is not loopback needs SAGAS_METRICS_TOKEN or SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on",
		Binarios:     Coordinador | Participantes},
	{Nombre: "SAGAS_METRICS_TOKEN", Valores: Texto{},
		Descripcion: "if set, every route on the SAGAS_METRICS_ADDR listener needs Authorization: Bearer <token> (the scraper's token: it cannot start sagas)", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_METRICS_TOKEN_FILE", Valores: Texto{},
		Descripcion: "file holding SAGAS_METRICS_TOKEN (a Docker or Kubernetes secret), read at start", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_PPROF_ADDR", Valores: Direccion{},
		Descripcion: "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); off when empty; pprof has no authentication, so an address that is not loopback needs SAGAS_HTTP_ALLOW_UNAUTHENTICATED=on", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_HTTP_ALLOW_UNAUTHENTICATED", Defecto: "off", Valores: Interruptor{},
		Descripcion: "on lets an HTTP listener that is not loopback answer without authentication (the API without SAGAS_API_TOKEN, the metrics listener without SAGAS_METRICS_TOKEN, pprof); each such listener is logged as a warning at start. Only for a network you control end to end", Binarios: Coordinador | Participantes},
	// Tracing (internal/traza; docs/operations.md, Traces). The standard
	// OpenTelemetry names, so the collector's usual settings apply.
	{Nombre: "OTEL_EXPORTER_OTLP_ENDPOINT", Valores: URL{"http", "https"},
		Descripcion: "OTLP/HTTP base URL of a trace collector (Jaeger, the OpenTelemetry Collector), e.g. http://127.0.0.1:4318: spans are posted to <url>/v1/traces. Unset (and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT unset): no spans are made; the W3C traceparent still travels on every message and trace_id is still logged. The SDK reads OTEL_EXPORTER_OTLP_HEADERS, _CERTIFICATE, _TIMEOUT and _COMPRESSION (and their _TRACES_ forms) itself", Binarios: Coordinador | Participantes},
	{Nombre: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Valores: URL{"http", "https"},
		Descripcion: "full OTLP/HTTP URL spans are posted to (e.g. http://127.0.0.1:4318/v1/traces), used as given; wins over OTEL_EXPORTER_OTLP_ENDPOINT", Binarios: Coordinador | Participantes},
	{Nombre: "OTEL_TRACES_EXPORTER", Defecto: "otlp", Valores: Opciones{"otlp", "none"},
		Descripcion: "none turns span export off even when an OTLP endpoint is set (propagation and trace_id in logs stay)", Binarios: Coordinador | Participantes},
	// Retention.
	{Nombre: "SAGAS_RETENTION", Defecto: "168h", Valores: Duracion{},
		Descripcion: "age after which what is no longer needed is purged: the coordinator's finished sagas (COMPLETADA, COMPENSADA, CANCELADA) with their steps, its inbox keys and per-saga log files; a participant's inbox rows and step locks (its tables of effects are kept). Must exceed the longest time before an operator retries a COMPENSACION_FALLIDA saga. 0s turns purging off", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_RETENTION_INTERVAL", Defecto: "10m", Valores: Duracion{Min: 100 * time.Millisecond, Max: 24 * time.Hour},
		Descripcion: "how often the purge runs", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_LOG_MAX_SIZE_MB", Defecto: "100", Valores: Entero{0, 1 << 20},
		Descripcion: "the general saga log (SAGAS_LOG_DIR/sagas_general.log) rotates at this size, keeping 3 older files; 0 never rotates", Binarios: Coordinador},
	{Nombre: "SAGAS_LOG_LEVEL", Defecto: "info", Valores: Opciones{"debug", "info", "warn", "error"},
		Descripcion: "log level", Binarios: Coordinador | Participantes},
	{Nombre: "SAGAS_LOG_DIR", Defecto: "logs/sagas", Valores: Texto{},
		Descripcion: "the seeds' per-saga log files, written in batches (a line appears within 200 ms of its transition); \"off\" disables them", Binarios: Coordinador},

	// The coordinator's engine.
	{Nombre: "SAGAS_REPLICA_ID", Defecto: "hostname", DefectoTexto: "coordinador-<hostname>", Valores: SinSeparadores{},
		Descripcion: "stable replica id (producer names for broker de-duplication)", Binarios: Coordinador},
	{Nombre: "SAGAS_OUTBOX_MAX_ATTEMPTS", Defecto: "10", Valores: Entero{1, 1000},
		Descripcion: "times the broker may refuse an outbox row (incompatible schema, missing topic, permission denied) before the relay parks it: kept in the outbox, never sent, counted in sagas_outbox_aparcados_total (docs/operations.md, Parked outbox rows, says how to list them); its saga's step then times out and the saga retries, fails and compensates. The attempts are spaced like redeliveries (SAGAS_REDELIVERY_DELAY, doubling up to SAGAS_REDELIVERY_DELAY_MAX); a timeout or an unreachable broker never counts",
		Binarios:    Coordinador},
	{Nombre: "SAGAS_TIMER_INTERVAL", Defecto: "250ms", Valores: Duracion{10 * time.Millisecond, time.Minute},
		Descripcion: "how often deadlines are swept", Binarios: Coordinador},
	{Nombre: "SAGAS_DEFINICIONES", Valores: Texto{},
		Descripcion: "directory of saga definitions (*.json): new tipos and new versions; of one tipo the highest version is current and every other stays loadable, so sagas started on it finish on it (the coordinator refuses to start while a saga in flight needs a version no file gives); a definition with esquema_entrada starts through POST /api/v1/sagas/{tipo}", Binarios: Coordinador},
	{Nombre: "SAGAS_PUENTE", Defecto: "on", Valores: Interruptor{},
		Descripcion: "consume the legacy choreography topics", Binarios: Coordinador},
	{Nombre: "SAGAS_LEGADO_TOPICO_CAMPANIA", Defecto: "persistent://public/default/eventos-campania", Valores: Topico{},
		Descripcion: "legacy topic of EventoCampaniaCreada", Binarios: Coordinador},
	{Nombre: "SAGAS_LEGADO_TOPICO_LANZAR", Defecto: "persistent://public/default/comando-lanzar-campania-completa", Valores: Topico{},
		Descripcion: "legacy topic of ComandoLanzarCampaniaCompleta", Binarios: Coordinador},

	// A participant's failure injection, off by default.
	{Nombre: "SAGAS_FALLOS", Defecto: "no", Valores: Opciones{"no", "semillas"},
		Descripcion: "semillas: fail commands at the seeds' failure rate of the service", Binarios: Participantes},
	{Nombre: "SAGAS_TASA_FALLO", DefectoTexto: "SAGAS_FALLOS decides", Valores: Decimal{Min: 0, Max: 1, Ejemplo: "0.2 fails one command in five"},
		Descripcion: "the failure rate, whatever SAGAS_FALLOS says", Binarios: Participantes},
	{Nombre: "SAGAS_SEMILLA", DefectoTexto: "from the clock", Valores: Entero{},
		Descripcion: "seed of the failure injection's RNG", Binarios: Participantes},
	{Nombre: "SAGAS_LATENCIA", Defecto: "0s", Valores: Duracion{},
		Descripcion: "delay added to every command", Binarios: Participantes},

	// Tools.
	{Nombre: "SAGAS_CACHE_DIR", DefectoTexto: "$HOME/.cache/alpespartner", Valores: Texto{},
		Descripcion: "where scripts/ keep the Pulsar download; the only SAGAS_ variable caos passes to its isolated world", Binarios: Caos},
}

// Buscar returns the variable named nombre (or one of its aliases).
func Buscar(nombre string) (Variable, bool) {
	for _, v := range Variables {
		if v.Nombre == nombre {
			return v, true
		}
		for _, a := range v.Alias {
			if a == nombre {
				return v, true
			}
		}
	}
	return Variable{}, false
}

// De lists the variables binario reads, in the table's order.
func De(binario Binario) []Variable {
	var vs []Variable
	for _, v := range Variables {
		if v.Binarios&binario != 0 {
			vs = append(vs, v)
		}
	}
	return vs
}

// Comprobar checks valor against the allowed values of variable nombre; the
// error names the variable and what it allows. It is for values that did
// not come through a Lector (a configuration built in code).
func Comprobar(nombre, valor string) error {
	v, ok := Buscar(nombre)
	if !ok {
		return fmt.Errorf("%s: not in the configuration table", nombre)
	}
	if !v.Valores.valido(valor) {
		return fmt.Errorf("%s=%q: %s", nombre, valor, v.Valores.Permitidos())
	}
	return nil
}

// Lector reads variables of the table from an environment, collecting every
// problem; Err reports them all at once. The zero value is not usable: use
// Leer.
type Lector struct {
	getenv func(string) string
	errs   []error
	avisos []string
}

// Leer returns a Lector of the environment getenv (os.Getenv in a binary).
func Leer(getenv func(string) string) *Lector { return &Lector{getenv: getenv} }

// Err is every problem found so far, joined, or nil.
func (l *Lector) Err() error { return errors.Join(l.errs...) }

// Problema records a problem found by the caller (a check that needs I/O or
// spans variables), in the same "NAME=value: what it allows" form.
func (l *Lector) Problema(nombre, valor, permitidos string) {
	l.errs = append(l.errs, fmt.Errorf("%s=%q: %s", nombre, valor, permitidos))
}

// Anotar records err, a problem found by the caller that is already in the
// "NAME=value: ..." form (ComprobarExposicion); nil is ignored.
func (l *Lector) Anotar(err error) {
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

// Avisos are the notices for the operator the reads produced (a deprecated
// name in use), to be logged by the binary.
func (l *Lector) Avisos() []string { return l.avisos }

// crudo is the trimmed value of nombre, from its name, else from the first
// alias that is set (with a notice), else its default; origen is the name it
// came from. ok is false when the value does not belong to the table or
// fails its check (the problem is recorded).
func (l *Lector) crudo(nombre string) (valor, origen string, v Variable, ok bool) {
	v, encontrada := Buscar(nombre)
	if !encontrada || v.Nombre != nombre {
		l.errs = append(l.errs, fmt.Errorf("%s: not in the configuration table (internal/configuracion)", nombre))
		return "", nombre, v, false
	}
	valor, origen = strings.TrimSpace(l.getenv(nombre)), nombre
	for _, a := range v.Alias {
		av := strings.TrimSpace(l.getenv(a))
		if av == "" {
			continue
		}
		if valor == "" {
			valor, origen = av, a
			l.avisos = append(l.avisos, fmt.Sprintf("%s is deprecated: use %s (same meaning)", a, nombre))
		} else {
			l.avisos = append(l.avisos, fmt.Sprintf("%s is deprecated and ignored: %s is set", a, nombre))
		}
	}
	if valor == "" {
		valor, origen = v.Defecto, nombre
	}
	if valor != "" && !v.Valores.valido(valor) {
		l.Problema(origen, valor, v.Valores.Permitidos())
		return valor, origen, v, false
	}
	return valor, origen, v, true
}

// Definida reports whether nombre (or an alias) is set to a non-blank value
// in the environment, whatever its default.
func (l *Lector) Definida(nombre string) bool {
	v, _ := Buscar(nombre)
	for _, n := range append([]string{nombre}, v.Alias...) {
		if strings.TrimSpace(l.getenv(n)) != "" {
			return true
		}
	}
	return false
}

// Texto is the value of nombre, as set even when invalid ("" when unset
// without a default). Words of an Opciones set come back in lower case.
func (l *Lector) Texto(nombre string) string {
	s, _, v, _ := l.crudo(nombre)
	if _, opciones := v.Valores.(Opciones); opciones {
		s = strings.ToLower(s)
	}
	return s
}

// Entero is the integer value of nombre; def when unset without a default
// or invalid, so that a problem is reported once and not again downstream.
func (l *Lector) Entero(nombre string, def int) int {
	s, _, _, ok := l.crudo(nombre)
	if !ok || s == "" {
		return def
	}
	n, _ := strconv.Atoi(s)
	return n
}

// Entero64 is Entero for values beyond int's range (a seed).
func (l *Lector) Entero64(nombre string, def int64) int64 {
	s, _, _, ok := l.crudo(nombre)
	if !ok || s == "" {
		return def
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Decimal is the number value of nombre; def when unset or invalid.
func (l *Lector) Decimal(nombre string, def float64) float64 {
	s, _, _, ok := l.crudo(nombre)
	if !ok || s == "" {
		return def
	}
	x, _ := strconv.ParseFloat(s, 64)
	return x
}

// Duracion is the duration value of nombre; def when unset or invalid.
func (l *Lector) Duracion(nombre string, def time.Duration) time.Duration {
	s, _, _, ok := l.crudo(nombre)
	if !ok || s == "" {
		return def
	}
	d, _ := time.ParseDuration(s)
	return d
}

// Interruptor is the on/off value of nombre; false when unset or invalid.
func (l *Lector) Interruptor(nombre string) bool {
	s, _, _, ok := l.crudo(nombre)
	if !ok {
		return false
	}
	on, _ := encendido(s)
	return on
}
