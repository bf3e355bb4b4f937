#!/usr/bin/env python3
"""Reads, on stdin, the brokers' and bookies' Prometheus /metrics and
MariaDB's SHOW GLOBAL STATUS (sections headed "### broker URL",
"### bookie URL", "### mariadb", as scripts/escala.sh writes them) and prints
one JSON object with the counters scripts/escala.sh compares before and after
a load:

  broker_in_msgs, broker_out_msgs   pulsar_in/out_messages_total of the
                                    namespace's topics (argv[1]), both brokers
                                    (the per-topic storage histograms are per
                                    stats interval, not counters: not used)
  bookie_adds, bookie_write_bytes,  every bookie: entries added (ADD_ENTRY,
  bookie_journal_fsyncs             journal force-write), bytes written, journal
                                    flushes; all the cluster's writes, not only
                                    the namespace's
  Com_*, Handler_commit, Innodb_*   MariaDB's global counters
"""
import json
import re
import sys

ns = sys.argv[1]
out = {}
seccion = None
linea_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
MARIADB = {"Com_insert", "Com_update", "Com_delete", "Com_select", "Com_replace", "Com_insert_select",
           "Com_commit", "Com_rollback", "Com_begin", "Handler_commit", "Questions", "Queries",
           "Innodb_data_written", "Innodb_os_log_written", "Innodb_data_fsyncs", "Innodb_rows_inserted",
           "Innodb_rows_updated", "Innodb_rows_deleted", "Bytes_received", "Bytes_sent"}


def sumar(k, v):
    out[k] = out.get(k, 0) + v


for linea in sys.stdin:
    linea = linea.rstrip("\n")
    if linea.startswith("### "):
        seccion = linea.split()[1]
        continue
    if seccion == "mariadb":
        partes = linea.split("\t")
        if len(partes) == 2 and partes[0] in MARIADB:
            try:
                out[partes[0]] = float(partes[1])
            except ValueError:
                pass
        continue
    if not linea or linea.startswith("#"):
        continue
    m = linea_re.match(linea)
    if not m:
        continue
    nombre, etiquetas, valor = m.group(1), m.group(3) or "", m.group(4)
    try:
        v = float(valor)
    except ValueError:
        continue
    if v != v:  # NaN
        continue
    if seccion == "broker":
        if f'namespace="{ns}"' not in etiquetas:
            continue
        if nombre == "pulsar_in_messages_total":
            sumar("broker_in_msgs", v)
        elif nombre == "pulsar_out_messages_total":
            sumar("broker_out_msgs", v)
    elif seccion == "bookie":
        if nombre == "bookkeeper_server_ADD_ENTRY_count" and 'success="true"' in etiquetas:
            sumar("bookie_adds", v)
        elif nombre == "bookie_WRITE_BYTES":
            sumar("bookie_write_bytes", v)
        elif nombre == "bookie_journal_JOURNAL_FLUSH_LATENCY_count" and 'success="true"' in etiquetas:
            sumar("bookie_journal_fsyncs", v)

json.dump(out, sys.stdout)
