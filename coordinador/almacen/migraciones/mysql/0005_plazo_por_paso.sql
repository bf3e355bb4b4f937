-- Each step keeps its own deadline, so that the members of a parallel group
-- (several steps in flight) are retried and timed out each on its own; the
-- saga's plazo becomes the earliest of them. A saga in flight when this runs
-- has one step out, the current one: it gets the saga's deadline.
ALTER TABLE pasos_saga ADD COLUMN plazo DATETIME(6) NULL;
UPDATE pasos_saga p JOIN sagas s ON s.saga_id = p.saga_id SET p.plazo = s.plazo
 WHERE p.estado IN ('EJECUTANDO', 'COMPENSANDO') AND p.orden = s.paso_actual + 1;
