-- Each step keeps its own deadline, so that the members of a parallel group
-- (several steps in flight) are retried and timed out each on its own; the
-- saga's plazo becomes the earliest of them. A saga in flight when this runs
-- has one step out, the current one: it gets the saga's deadline.
ALTER TABLE pasos_saga ADD COLUMN plazo TEXT;
UPDATE pasos_saga SET plazo = (SELECT s.plazo FROM sagas s WHERE s.saga_id = pasos_saga.saga_id)
 WHERE estado IN ('EJECUTANDO', 'COMPENSANDO')
   AND orden = (SELECT s.paso_actual + 1 FROM sagas s WHERE s.saga_id = pasos_saga.saga_id);
