-- Initial schema (SQLite). Times are TEXT 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC:
-- fixed width, so text order is time order and indexes serve range queries.
-- Raw JSON is TEXT, kept byte for byte. NULL means "empty" or "zero time".

CREATE TABLE IF NOT EXISTS sagas (
    saga_id                 TEXT    NOT NULL PRIMARY KEY,
    tipo                    TEXT    NOT NULL,
    version_definicion      INTEGER NOT NULL,
    estado                  TEXT    NOT NULL,
    timestamp_inicio        TEXT    NOT NULL,
    timestamp_fin           TEXT,
    duracion_total_segundos REAL,
    campania_id             TEXT,
    usuario_id              TEXT,
    metadatos               TEXT,
    version                 INTEGER NOT NULL,
    paso_actual             INTEGER NOT NULL,
    plazo                   TEXT,
    en_espera               INTEGER NOT NULL DEFAULT 0,
    paso_fallido            TEXT,
    compensaciones          TEXT    NOT NULL DEFAULT '[]',
    error_mensaje           TEXT,
    clave_idempotencia      TEXT UNIQUE
);

CREATE INDEX IF NOT EXISTS idx_sagas_plazo ON sagas (plazo, estado);
CREATE INDEX IF NOT EXISTS idx_sagas_inicio ON sagas (timestamp_inicio);
CREATE INDEX IF NOT EXISTS idx_sagas_estado ON sagas (estado, timestamp_inicio);
CREATE INDEX IF NOT EXISTS idx_sagas_tipo ON sagas (tipo, timestamp_inicio);
CREATE INDEX IF NOT EXISTS idx_sagas_campania ON sagas (campania_id, timestamp_inicio);

CREATE TABLE IF NOT EXISTS pasos_saga (
    paso_id                       TEXT    NOT NULL PRIMARY KEY,
    saga_id                       TEXT    NOT NULL REFERENCES sagas (saga_id) ON DELETE CASCADE,
    orden                         INTEGER NOT NULL,
    nombre                        TEXT    NOT NULL,
    descripcion                   TEXT    NOT NULL DEFAULT '',
    microservicio                 TEXT    NOT NULL,
    estado                        TEXT    NOT NULL,
    timestamp_inicio              TEXT,
    timestamp_fin                 TEXT,
    duracion_segundos             REAL,
    datos_entrada                 TEXT,
    datos_salida                  TEXT,
    error_mensaje                 TEXT,
    intento_numero                INTEGER NOT NULL DEFAULT 0,
    intento_compensacion          INTEGER NOT NULL DEFAULT 0,
    timestamp_inicio_compensacion TEXT,
    timestamp_fin_compensacion    TEXT,
    datos_salida_compensacion     TEXT,
    error_compensacion            TEXT,
    UNIQUE (saga_id, orden)
);

-- AUTOINCREMENT: ids are never reused, even after the table empties, because
-- the relay uses them as broker sequence ids.
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    topico      TEXT    NOT NULL,
    clave       TEXT    NOT NULL,
    tipo        TEXT    NOT NULL,
    carga       BLOB    NOT NULL,
    propiedades TEXT,
    creado      TEXT    NOT NULL
);

-- WITHOUT ROWID: the key is the row, one B-tree less to write per transition.
CREATE TABLE IF NOT EXISTS inbox (
    clave    TEXT NOT NULL PRIMARY KEY,
    recibido TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS idx_inbox_recibido ON inbox (recibido);
