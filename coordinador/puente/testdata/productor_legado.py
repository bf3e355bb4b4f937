#!/usr/bin/env python3
"""Publishes messages exactly as the legacy AlpesPartner Python services do.

The Record classes below are the legacy system's (see /work/shared/LEGACY.md):
`pulsar.schema.Record` subclasses sent with `AvroSchema(Class)`, so the Avro
record names are the class names without a namespace, every scalar is a
nullable union ["null", T] and the payload is a nested record. No message key
and no properties are set.

Usage:
    productor_legado.py BROKER_URL {campania|lanzar} ENVELOPE_ID CAMPAIGN_ID COUNT
                        [--topico TOPIC] [--esquema]

It publishes the same message COUNT times and prints the message it sent as
one JSON object on stdout (dates as epoch ms), so the caller can compare what
the bridge made of it. CAMPAIGN_ID is the payload's id_campania for
`campania`; `lanzar` has no campaign id and uses it in the campaign name.
With --esquema it prints the Avro schema of the record instead and exits.
"""

import argparse
import json
import sys
import uuid

import pulsar
from pulsar.schema import AvroSchema, Boolean, Double, Long, Record, String

TOPICOS = {
    "campania": "persistent://public/default/eventos-campania",
    "lanzar": "persistent://public/default/comando-lanzar-campania-completa",
}

# 2026-01-01T00:00:00Z, 2026-02-01T00:00:00Z and 2025-12-15T10:30:00Z.
FECHA_INICIO = 1767225600000
FECHA_FIN = 1769904000000
FECHA_CREACION = 1765794600000


class CampaniaCreadaPayload(Record):
    id_campania = String()
    nombre = String()
    descripcion = String()
    estado = String()
    tipo = String()
    canal_publicidad = String()
    objetivo = String()
    fecha_inicio = Long()
    fecha_fin = Long()
    fecha_creacion = Long()
    presupuesto = Double()
    moneda = String()
    codigo_campania = String()
    segmento_audiencia = String()
    activo = Boolean()


class EventoCampaniaCreada(Record):
    # The legacy default: computed once at import, so every message of a
    # process that forgets to set it shares the same id.
    id = String(default=str(uuid.uuid4()))
    time = Long()
    ingestion = Long()
    specversion = String()
    type = String()
    datacontenttype = String()
    service_name = String()
    data = CampaniaCreadaPayload()


class LanzarCampaniaCompletaPayload(Record):
    nombre = String()
    descripcion = String()
    tipo = String()
    canal_publicidad = String()
    objetivo = String()
    fecha_inicio = Long()
    fecha_fin = Long()
    presupuesto = Double()
    moneda = String()
    segmento_audiencia = String()


class ComandoLanzarCampaniaCompleta(Record):
    id = String(default=str(uuid.uuid4()))
    time = Long()
    ingestion = Long()
    specversion = String()
    type = String()
    datacontenttype = String()
    service_name = String()
    data = LanzarCampaniaCompletaPayload()


def evento_campania(id_envelope, id_campania):
    return EventoCampaniaCreada(
        id=id_envelope,
        time=FECHA_CREACION,
        ingestion=FECHA_CREACION + 5,
        specversion="v1",
        type="EventoCampaniaCreada",
        datacontenttype="AVRO",
        service_name="campanias",
        data=CampaniaCreadaPayload(
            id_campania=id_campania,
            nombre="Campaña " + id_campania,
            descripcion="Lanzamiento de verano",
            estado="ACTIVA",
            tipo="influencer",
            canal_publicidad="instagram",
            objetivo="ventas",
            fecha_inicio=FECHA_INICIO,
            fecha_fin=FECHA_FIN,
            fecha_creacion=FECHA_CREACION,
            presupuesto=15000.5,
            moneda="COP",
            codigo_campania="VER-" + id_campania,
            segmento_audiencia="jovenes-18-25",
            activo=True,
        ),
    )


def comando_lanzar(id_envelope, id_campania):
    return ComandoLanzarCampaniaCompleta(
        id=id_envelope,
        time=FECHA_CREACION,
        ingestion=FECHA_CREACION + 5,
        specversion="v1",
        type="ComandoLanzarCampaniaCompleta",
        datacontenttype="AVRO",
        service_name="bff",
        data=LanzarCampaniaCompletaPayload(
            nombre="Lanzamiento " + id_campania,
            descripcion="Campaña completa desde el BFF",
            tipo="afiliados",
            canal_publicidad="tiktok",
            objetivo="conversiones",
            fecha_inicio=FECHA_INICIO,
            fecha_fin=FECHA_FIN,
            presupuesto=4200.25,
            moneda="USD",
            segmento_audiencia="gamers",
        ),
    )


def como_dict(registro):
    out = {}
    for nombre in registro._fields:
        valor = getattr(registro, nombre)
        out[nombre] = como_dict(valor) if isinstance(valor, Record) else valor
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("broker")
    p.add_argument("tipo", choices=sorted(TOPICOS))
    p.add_argument("id")
    p.add_argument("id_campania")
    p.add_argument("cantidad", type=int)
    p.add_argument("--topico", help="topic to publish to (default: the legacy topic of the kind)")
    p.add_argument("--esquema", action="store_true", help="print the record's Avro schema and exit")
    a = p.parse_args()

    clase, fabrica = {
        "campania": (EventoCampaniaCreada, evento_campania),
        "lanzar": (ComandoLanzarCampaniaCompleta, comando_lanzar),
    }[a.tipo]
    if a.esquema:
        print(json.dumps(clase.schema()))
        return 0

    mensaje = fabrica(a.id, a.id_campania)
    cliente = pulsar.Client(a.broker, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        productor = cliente.create_producer(a.topico or TOPICOS[a.tipo], schema=AvroSchema(clase))
        for _ in range(a.cantidad):
            productor.send(mensaje)
        productor.flush()
        productor.close()
    finally:
        cliente.close()
    print(json.dumps(como_dict(mensaje)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
