// Package puente is the choreography bridge: Puente lets the legacy Python
// services keep publishing unchanged and turns their messages into sagas (the
// rules below). Subpackage legado holds the legacy messages' Avro schemas.
//
// # The rules
//
// Puente consumes the two legacy topics of public/default with a Shared
// subscription ("coordinador-puente"; legacy messages carry no key) and
// starts one saga per distinct legacy message:
//
//   - eventos-campania (record EventoCampaniaCreada, payload
//     CampaniaCreadaPayload) starts a "campana" saga with campania_id =
//     id_campania.
//   - comando-lanzar-campania-completa (record ComandoLanzarCampaniaCompleta,
//     payload LanzarCampaniaCompletaPayload) starts a
//     "lanzar-campania-completa" saga whose saga id is the envelope id (the
//     BFF has already handed it to its caller). The command names no
//     campaign, so the campaign id is derived from the envelope id (a
//     name-based UUID, the same for every copy), and the inputs the legacy
//     command lacks get defaults: a 10 % commission (comision {tipo:
//     porcentaje, valor: 10}), affiliates chosen by the command's
//     segmento_audiencia with no other criteria, and notification by email.
//
// # Exactly once
//
// Legacy producers reuse envelope ids (some compute a default once at
// import), so the envelope id alone is not a message's identity; it counts
// together with the business key (ClaveEventoCampania, ClaveLanzamiento):
//
//   - eventos-campania: the key is the envelope id plus id_campania. The same
//     pair again (a redelivery, a re-publish, even with other content) is the
//     same saga; the same envelope id with another id_campania is another
//     saga.
//   - comando-lanzar-campania-completa: the envelope id is the saga id, and
//     so the business key; the payload's fingerprint is stored with it. The
//     same id with the same payload is the same saga; the same id with
//     another payload cannot be a second saga under that id and must not be
//     merged into the first: it is refused as poison (dead-lettered, with
//     the saga that holds the id in the reason).
//
// A repeated message maps to its saga: the store answers "already there"
// (creada == false), the bridge counts it as a duplicate and acks it. Only
// after Iniciar returned (the saga and its first command are committed) is a
// message acked, so together this is exactly one saga per distinct legacy
// message, even with several coordinator replicas on the shared
// subscription.
//
// Messages are decoded with their writer schema, fetched from the broker's
// schema registry by the message's schema version (cached per version), and
// read by field name, so producers with another field order or extra fields
// work. A message that cannot be decoded, has no envelope id, no payload or
// (eventos-campania) no campaign id is a poison message: it goes to the
// topic's dead-letter topic (<topic>-DLQ) and the next message goes on.
// Dates are epoch milliseconds.
package puente
