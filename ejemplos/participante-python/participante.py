#!/usr/bin/env python3
"""A saga participant written in Python: the `marca` service.

It speaks the same contract as the Go participant in participantes/marca:
it consumes ComandoSaga messages (Avro, esquemas/avro/ComandoSaga.avsc) from
persistent://<tenant>/<namespace>/comandos-marca with the Key_Shared
subscription participante-marca, and answers each with a RespuestaSaga
(esquemas/avro/RespuestaSaga.avsc) on respuestas-saga, keyed by saga_id.

Commands: NotificarMarca (EJECUTAR) records a notification to the campaign's
brand; CompensarNotificacionMarca (COMPENSAR) cancels it.

The inbox rules (docs/python-participant.md walks through them):
  * the inbox row (saga_id, paso, accion) and the effect commit in one local
    transaction, so a redelivered command gets the stored reply and nothing
    else happens;
  * a compensation that arrives before its action is recorded and answered as
    done, and the late action is then refused without effect;
  * a business failure leaves no effect (rolled back to a savepoint) and is
    recorded as the step's reply;
  * a command is acknowledged only after the broker acknowledged its reply.

Usage:
    participante.py [--db FILE] [--pulsar-url URL] [--tenant T] [--namespace N]

The broker and namespace default to SAGAS_PULSAR_URL, SAGAS_PULSAR_TENANT and
SAGAS_PULSAR_NAMESPACE (pulsar://127.0.0.1:6650, alpespartner, sagas), as for
the Go participants. It prints "listo" on stdout once subscribed, and stops
on SIGINT or SIGTERM. Needs `pip install 'pulsar-client[avro]'`.
"""

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import time

import pulsar
from pulsar.schema import AvroSchema

SERVICIO = "marca"
EJECUTAR, COMPENSAR = "EJECUTAR", "COMPENSAR"
# Command name -> the action it must carry.
OPERACIONES = {"NotificarMarca": EJECUTAR, "CompensarNotificacionMarca": COMPENSAR}
PREFIJO_TIPO = "alpespartner.sagas."
ESQUEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "esquemas", "avro")

ESQUEMA_SQL = """
CREATE TABLE IF NOT EXISTS inbox (
    saga_id TEXT NOT NULL,
    paso TEXT NOT NULL,
    accion TEXT NOT NULL,
    exito INTEGER NOT NULL,
    error TEXT,
    datos TEXT NOT NULL,
    respondido_ms INTEGER NOT NULL,
    PRIMARY KEY (saga_id, paso, accion)
);
CREATE TABLE IF NOT EXISTS notificaciones_marca (
    saga_id TEXT NOT NULL,
    paso TEXT NOT NULL,
    id_marca TEXT NOT NULL,
    nombre_marca TEXT NOT NULL,
    campania TEXT NOT NULL,
    estado TEXT NOT NULL,
    PRIMARY KEY (saga_id, paso)
);
"""

log = logging.getLogger("participante-python")


# --- the contract -------------------------------------------------------------


def murmur3(datos: bytes) -> int:
    """MurmurHash3_x86_32 with seed 0, the hash of Pulsar's Murmur3_32Hash."""
    c1, c2, m = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = 0
    bloques = len(datos) // 4
    for i in range(bloques):
        k = int.from_bytes(datos[4 * i:4 * i + 4], "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        h ^= (k * c2) & m
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xE6546B64) & m
    cola, k = datos[4 * bloques:], 0
    if len(cola) == 3:
        k ^= cola[2] << 16
    if len(cola) >= 2:
        k ^= cola[1] << 8
    if cola:
        k ^= cola[0]
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        h ^= (k * c2) & m
    h ^= len(datos)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    return h ^ (h >> 16)


def particion(clave: str, n: int) -> int:
    """The partition, of n, that the Go producers (pulsar.Murmur3_32Hash)
    route a message keyed clave to: Murmur3 with the sign bit cleared, as
    the Java client does, modulo n."""
    return (murmur3(clave.encode()) & 0x7FFFFFFF) % n

def tipo(nombre):
    """Versioned type name: tipo("NotificarMarca") == "alpespartner.sagas.NotificarMarca.v1"."""
    return PREFIJO_TIPO + nombre + ".v1"


def nombre_de_tipo(t):
    """The inverse of tipo: strips the prefix and the version."""
    s = t[len(PREFIJO_TIPO):] if t.startswith(PREFIJO_TIPO) else t
    i = s.rfind(".v")
    return s[:i] if i >= 0 else s


def esquema(nombre):
    with open(os.path.join(ESQUEMAS, nombre + ".avsc")) as f:
        return json.load(f)


def respuesta(cmd, guardada):
    """The reply to cmd from a stored outcome. Its id and time come from the
    command's idempotency key and the stored reply time, so a redelivery of
    the same attempt gets a byte-identical reply (the coordinator drops it)."""
    exito = bool(guardada["exito"])
    return {
        "id": "%s:%d:%s" % (cmd["clave_idempotencia"], cmd["intento"], "ok" if exito else "fallo"),
        "time": guardada["respondido_ms"],
        "specversion": "1.0",
        "type": tipo(nombre_de_tipo(cmd["type"]) + "Respondido"),
        "datacontenttype": "application/json",
        "service_name": SERVICIO,
        "saga_id": cmd["saga_id"],
        "paso": cmd["paso"],
        "accion": cmd["accion"],
        "intento": cmd["intento"],
        "exito": exito,
        "error": guardada["error"],
        "datos": guardada["datos"],
    }


# --- the inbox rules: a pure decision -----------------------------------------

REPETIR = "repetir"                      # a redelivery: send the stored reply
RECHAZAR = "rechazar"                    # an action after its compensation
NADA_QUE_DESHACER = "nada_que_deshacer"  # compensation of an action not run or failed
APLICAR = "aplicar"                      # run the action or the compensation


def decidir(accion, previas):
    """What to do with a command, given the step's inbox rows (accion -> row)."""
    if accion in previas:
        return REPETIR
    if accion == EJECUTAR:
        return RECHAZAR if COMPENSAR in previas else APLICAR
    hecha = previas.get(EJECUTAR)
    if hecha is None or not hecha["exito"]:
        return NADA_QUE_DESHACER
    return APLICAR


# --- the effects --------------------------------------------------------------

class Rechazo(Exception):
    """A business failure: the step fails and leaves no effect."""


def notificar(db, cmd, entrada):
    marca = entrada.get("marca") or {}
    if not marca.get("id_marca") or not marca.get("nombre_marca"):
        raise Rechazo("la marca necesita id_marca y nombre_marca")
    db.execute(
        "INSERT INTO notificaciones_marca (saga_id, paso, id_marca, nombre_marca, campania, estado)"
        " VALUES (?, ?, ?, ?, ?, 'ENVIADA')",
        (cmd["saga_id"], cmd["paso"], marca["id_marca"], marca["nombre_marca"], entrada.get("nombre", "")))
    # Demos and tests force a failure at a named step (or service), as the Go
    # participants do: after the write, to show that it is undone.
    if entrada.get("simular_fallo") in (cmd["paso"], SERVICIO):
        raise Rechazo("fallo simulado en el paso %s" % cmd["paso"])
    return {"marca": {"id_marca": marca["id_marca"], "nombre_marca": marca["nombre_marca"]}, "origen": "entrada"}


def cancelar(db, cmd, entrada):
    n = db.execute(
        "UPDATE notificaciones_marca SET estado = 'CANCELADA'"
        " WHERE saga_id = ? AND paso = ? AND estado = 'ENVIADA'",
        (cmd["saga_id"], cmd["paso"])).rowcount
    return {"notificaciones_canceladas": n}


# --- one command, one local transaction ---------------------------------------

def procesar(db, cmd, ahora_ms):
    """Applies cmd in one transaction and returns the stored outcome to reply."""
    try:
        entrada = json.loads(cmd["datos"]).get("entrada") or {}
    except (ValueError, AttributeError):
        entrada = None
    db.execute("BEGIN IMMEDIATE")  # one writer at a time: the step is locked
    try:
        filas = db.execute(
            "SELECT accion, exito, error, datos, respondido_ms FROM inbox WHERE saga_id = ? AND paso = ?",
            (cmd["saga_id"], cmd["paso"])).fetchall()
        previas = {f["accion"]: dict(f) for f in filas}
        decision = decidir(cmd["accion"], previas)
        if decision == REPETIR:
            db.execute("ROLLBACK")
            return previas[cmd["accion"]]
        guardada = {"exito": True, "error": None, "datos": "{}", "respondido_ms": ahora_ms}
        if decision == RECHAZAR:
            guardada.update(exito=False, error="el paso %s de la saga %s ya fue compensado: la acción llegó tarde "
                            "y se rechaza sin efecto" % (cmd["paso"], cmd["saga_id"]))
        elif decision == NADA_QUE_DESHACER:
            guardada["datos"] = json.dumps({"deshecho": False, "motivo": "nada que deshacer"})
        elif entrada is None:
            guardada.update(exito=False, error="datos del comando no válidos")
        else:
            efecto = notificar if cmd["accion"] == EJECUTAR else cancelar
            db.execute("SAVEPOINT efecto")
            try:
                guardada["datos"] = json.dumps(efecto(db, cmd, entrada))
            except Rechazo as e:
                db.execute("ROLLBACK TO SAVEPOINT efecto")
                if cmd["accion"] == COMPENSAR:
                    # A failed compensation is replied but not recorded: the
                    # coordinator's retry is evaluated again.
                    db.execute("ROLLBACK")
                    return dict(guardada, exito=False, error=str(e))
                guardada.update(exito=False, error=str(e))
            db.execute("RELEASE SAVEPOINT efecto")
        db.execute(
            "INSERT INTO inbox (saga_id, paso, accion, exito, error, datos, respondido_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cmd["saga_id"], cmd["paso"], cmd["accion"], int(guardada["exito"]), guardada["error"],
             guardada["datos"], guardada["respondido_ms"]))
        db.execute("COMMIT")
        return guardada
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def valido(cmd):
    """Why cmd cannot be processed, or None."""
    for campo in ("id", "saga_id", "paso", "type", "clave_idempotencia"):
        if not cmd.get(campo):
            return "falta " + campo
    accion = OPERACIONES.get(nombre_de_tipo(cmd["type"]))
    if accion is None:
        return "comando %s desconocido para el servicio %s" % (cmd["type"], SERVICIO)
    if accion != cmd["accion"]:
        return "comando %s con accion %s" % (cmd["type"], cmd["accion"])
    return None


# --- the Pulsar adapter -------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="participante-marca-python.db", help="SQLite file (inbox and effects)")
    p.add_argument("--pulsar-url", default=os.environ.get("SAGAS_PULSAR_URL", "pulsar://127.0.0.1:6650"))
    p.add_argument("--tenant", default=os.environ.get("SAGAS_PULSAR_TENANT", "alpespartner"))
    p.add_argument("--namespace", default=os.environ.get("SAGAS_PULSAR_NAMESPACE", "sagas"))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    db = sqlite3.connect(args.db, isolation_level=None)  # transactions are explicit
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(ESQUEMA_SQL)

    base = "persistent://%s/%s/" % (args.tenant, args.namespace)
    topico = base + "comandos-" + SERVICIO
    cliente = pulsar.Client(args.pulsar_url, logger=logging.getLogger("pulsar"))
    consumidor = cliente.subscribe(
        topico, "participante-" + SERVICIO,
        consumer_type=pulsar.ConsumerType.KeyShared,
        schema=AvroSchema(None, schema_definition=esquema("ComandoSaga")),
        initial_position=pulsar.InitialPosition.Earliest,
        negative_ack_redelivery_delay_ms=1000,
        # A message that cannot be decoded or is invalid is a poison message:
        # after a few redeliveries it goes to <topic>-DLQ, as in Go.
        dead_letter_policy=pulsar.ConsumerDeadLetterPolicy(max_redeliver_count=3, dead_letter_topic=topico + "-DLQ"))
    # No batching (the default here): this loop sends one reply per command.
    # The coordinator's Failover subscription reads each partition in order,
    # so batches of replies to several sagas would be fine. On a partitioned reply
    # topic, route by Murmur3 of the key as the Go side does: this client's
    # own hash (the C++ client's BoostHash) would put a saga's replies on
    # other partitions than the Go participants' replies.
    productor = cliente.create_producer(
        base + "respuestas-saga", schema=AvroSchema(None, schema_definition=esquema("RespuestaSaga")),
        message_router=lambda msg, n: particion(msg.partition_key(), n))

    detener = []
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: detener.append(True))
    print("listo", flush=True)

    while not detener:
        try:
            msg = consumidor.receive(timeout_millis=200)
        except pulsar.Timeout:
            continue
        try:
            cmd = msg.value()
        except Exception as e:
            log.warning("comando malformado %s: %s", msg.message_id(), e)
            consumidor.negative_acknowledge(msg)
            continue
        motivo = valido(cmd)
        if motivo:
            log.warning("comando inválido saga_id=%s: %s", cmd.get("saga_id"), motivo)
            consumidor.negative_acknowledge(msg)
            continue
        try:
            r = respuesta(cmd, procesar(db, cmd, int(time.time() * 1000)))
            props = {"saga_id": r["saga_id"], "paso": r["paso"], "intento": str(r["intento"]), "type": r["type"]}
            traceparent = msg.properties().get("traceparent")
            if traceparent:
                props["traceparent"] = traceparent
            # send() returns once the broker stored the reply; only then is
            # the command acknowledged. A crash in between redelivers the
            # command, and its stored reply is sent again.
            productor.send(r, properties=props, partition_key=r["saga_id"])
            consumidor.acknowledge(msg)
            log.info("saga_id=%s paso=%s accion=%s exito=%s", r["saga_id"], r["paso"], r["accion"], r["exito"])
        except Exception:
            log.exception("comando no procesado saga_id=%s; se reintentará", cmd["saga_id"])
            consumidor.negative_acknowledge(msg)

    consumidor.close()
    productor.close()
    cliente.close()
    db.close()


if __name__ == "__main__":
    main()
