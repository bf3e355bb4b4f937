-- An outbox row the broker refuses (incompatible schema, missing topic,
-- permission denied) counts its attempts and waits longer after each one;
-- after SAGAS_OUTBOX_MAX_ATTEMPTS it is parked: kept, never claimed again,
-- until an operator acts. The relay claims only unparked rows that are due.
ALTER TABLE outbox ADD COLUMN intentos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN ultimo_error TEXT;
ALTER TABLE outbox ADD COLUMN reintentar_desde TEXT;
ALTER TABLE outbox ADD COLUMN aparcado TEXT;
CREATE INDEX IF NOT EXISTS idx_outbox_aparcado ON outbox (aparcado, id);
