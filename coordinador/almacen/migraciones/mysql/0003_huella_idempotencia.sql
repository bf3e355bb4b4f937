-- The fingerprint of the request that created a saga with an idempotency
-- key: the same key with another fingerprint is refused. Older rows keep
-- NULL and match any request, as before.
ALTER TABLE sagas ADD COLUMN huella_idempotencia CHAR(64) NULL;
