-- A saga's deadline does not run while its command still waits in the outbox
-- (broker down): the sweep looks the saga's pending rows up by key.
CREATE INDEX IF NOT EXISTS idx_outbox_clave ON outbox (clave);
