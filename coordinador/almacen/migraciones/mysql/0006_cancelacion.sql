-- When an operator cancelled the saga (POST /api/v1/sagas/{id}/cancelar);
-- NULL if never. A cancelled saga compensates like a failed one and ends
-- CANCELADA instead of COMPENSADA, so the cancel must survive every
-- transition until then, on whichever replica applies it.
ALTER TABLE sagas ADD COLUMN timestamp_cancelacion DATETIME(6) NULL;
