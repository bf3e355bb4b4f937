-- Initial schema (MySQL 8 / MariaDB 10.6+). Every statement is idempotent
-- (IF NOT EXISTS, indexes inline) so a migration interrupted half-way can
-- simply run again. Binary collation: ids and keys compare byte for byte, as
-- in Go and in SQLite. Raw JSON is MEDIUMTEXT, not JSON, so it is kept byte
-- for byte (MySQL's JSON type would normalise it).

CREATE TABLE IF NOT EXISTS sagas (
    saga_id                 VARCHAR(191) NOT NULL,
    tipo                    VARCHAR(100) NOT NULL,
    version_definicion      INT          NOT NULL,
    estado                  VARCHAR(32)  NOT NULL,
    timestamp_inicio        DATETIME(6)  NOT NULL,
    timestamp_fin           DATETIME(6)  NULL,
    duracion_total_segundos DOUBLE       NULL,
    campania_id             VARCHAR(191) NULL,
    usuario_id              VARCHAR(191) NULL,
    metadatos               MEDIUMTEXT   NULL,
    version                 BIGINT       NOT NULL,
    paso_actual             INT          NOT NULL,
    plazo                   DATETIME(6)  NULL,
    en_espera               TINYINT(1)   NOT NULL DEFAULT 0,
    paso_fallido            VARCHAR(191) NULL,
    compensaciones          TEXT         NOT NULL,
    error_mensaje           TEXT         NULL,
    clave_idempotencia      VARCHAR(255) NULL,
    PRIMARY KEY (saga_id),
    UNIQUE KEY uq_sagas_clave (clave_idempotencia),
    KEY idx_sagas_plazo (plazo, estado),
    KEY idx_sagas_inicio (timestamp_inicio),
    KEY idx_sagas_estado (estado, timestamp_inicio),
    KEY idx_sagas_tipo (tipo, timestamp_inicio),
    KEY idx_sagas_campania (campania_id, timestamp_inicio)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS pasos_saga (
    paso_id                       VARCHAR(200) NOT NULL,
    saga_id                       VARCHAR(191) NOT NULL,
    orden                         INT          NOT NULL,
    nombre                        VARCHAR(100) NOT NULL,
    descripcion                   VARCHAR(500) NOT NULL DEFAULT '',
    microservicio                 VARCHAR(100) NOT NULL,
    estado                        VARCHAR(32)  NOT NULL,
    timestamp_inicio              DATETIME(6)  NULL,
    timestamp_fin                 DATETIME(6)  NULL,
    duracion_segundos             DOUBLE       NULL,
    datos_entrada                 MEDIUMTEXT   NULL,
    datos_salida                  MEDIUMTEXT   NULL,
    error_mensaje                 TEXT         NULL,
    intento_numero                INT          NOT NULL DEFAULT 0,
    intento_compensacion          INT          NOT NULL DEFAULT 0,
    timestamp_inicio_compensacion DATETIME(6)  NULL,
    timestamp_fin_compensacion    DATETIME(6)  NULL,
    datos_salida_compensacion     MEDIUMTEXT   NULL,
    error_compensacion            TEXT         NULL,
    PRIMARY KEY (paso_id),
    UNIQUE KEY uq_pasos_saga_orden (saga_id, orden),
    CONSTRAINT fk_pasos_saga FOREIGN KEY (saga_id) REFERENCES sagas (saga_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The AUTO_INCREMENT counter survives restarts on MySQL 8 and MariaDB 10.2.4+,
-- so ids (the relay's broker sequence ids) are never reused.
CREATE TABLE IF NOT EXISTS outbox (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    topico      VARCHAR(255) NOT NULL,
    clave       VARCHAR(255) NOT NULL,
    tipo        VARCHAR(255) NOT NULL,
    carga       LONGBLOB     NOT NULL,
    propiedades TEXT         NULL,
    creado      DATETIME(6)  NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS inbox (
    clave    VARCHAR(255) NOT NULL,
    recibido DATETIME(6)  NOT NULL,
    PRIMARY KEY (clave),
    KEY idx_inbox_recibido (recibido)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
