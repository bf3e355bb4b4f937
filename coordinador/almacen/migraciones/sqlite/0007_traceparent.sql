-- The saga's W3C trace context (the traceparent of the request or legacy
-- message that started it), so that commands sent later, by any replica,
-- after a deadline or an operator's retry, stay in the saga's trace, and the
-- API can show its trace_id. Sagas started before this have none.
ALTER TABLE sagas ADD COLUMN traceparent TEXT;
