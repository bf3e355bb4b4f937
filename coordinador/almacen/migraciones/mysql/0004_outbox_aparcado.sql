-- An outbox row the broker refuses (incompatible schema, missing topic,
-- permission denied) counts its attempts and waits longer after each one;
-- after SAGAS_OUTBOX_MAX_ATTEMPTS it is parked: kept, never claimed again,
-- until an operator acts. The relay claims only unparked rows that are due.
ALTER TABLE outbox ADD COLUMN intentos INT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN ultimo_error TEXT NULL;
ALTER TABLE outbox ADD COLUMN reintentar_desde DATETIME(6) NULL;
ALTER TABLE outbox ADD COLUMN aparcado DATETIME(6) NULL;
CREATE INDEX idx_outbox_aparcado ON outbox (aparcado, id);
