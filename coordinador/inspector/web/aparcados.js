// The parked outbox rows panel: messages the broker refused
// SAGAS_OUTBOX_MAX_ATTEMPTS times, with their saga, topic, attempts and last
// error, and the operator's re-send once the cause is fixed. It talks to
// GET /api/v1/outbox/aparcados and POST .../{id}/reenviar with the token the
// page keeps; data from the API is only ever inserted as text.

import { desde, fecha } from './formato.js';

const API = new URL('../api/v1/', document.baseURI);
const CLAVE_TOKEN = 'sagas.inspector.token';
const INTERVALO = 10000;

const $ = (id) => document.getElementById(id);
const ui = {
  seccion: $('vista-aparcados'),
  total: $('aparcados-total'),
  resumen: $('aparcados-resumen'),
  filas: $('aparcados-filas'),
  marco: $('aparcados-marco'),
  mensaje: $('aparcados-mensaje'),
};

function td(...hijos) {
  const c = document.createElement('td');
  c.append(...hijos.map((h) => (h instanceof Node ? h : document.createTextNode(String(h)))));
  return c;
}

async function llamar(ruta, metodo = 'GET') {
  const cabeceras = { Accept: 'application/json' };
  try {
    const token = sessionStorage.getItem(CLAVE_TOKEN);
    if (token) {
      cabeceras.Authorization = `Bearer ${token}`;
    }
  } catch {
    // No sessionStorage: call without a token.
  }
  const r = await fetch(new URL(ruta, API), { method: metodo, headers: cabeceras, cache: 'no-store' });
  let cuerpo = null;
  try {
    cuerpo = await r.json();
  } catch {
    // Not JSON: the status says enough.
  }
  if (!r.ok) {
    throw new Error(`${r.status}: ${(cuerpo && cuerpo.error) || r.statusText}`);
  }
  return cuerpo;
}

function fila(a) {
  const tr = document.createElement('tr');
  const enlace = document.createElement('a');
  enlace.href = `#saga=${encodeURIComponent(a.saga_id)}`;
  enlace.textContent = a.saga_id;
  const cuando = document.createElement('time');
  cuando.dateTime = a.aparcado;
  cuando.title = fecha(a.aparcado);
  cuando.textContent = desde(a.aparcado);
  const boton = document.createElement('button');
  boton.type = 'button';
  boton.className = 'secundario';
  boton.textContent = 'Reenviar';
  boton.setAttribute('aria-label', `Reenviar el mensaje ${a.id} (${a.tipo}) de la saga ${a.saga_id}`);
  boton.addEventListener('click', () => reenviar(a, boton));
  const error = document.createElement('code');
  error.textContent = a.ultimo_error;
  tr.append(td(String(a.id)), td(enlace), td(a.topico.slice(a.topico.lastIndexOf('/') + 1)), td(a.tipo),
    td(String(a.intentos)), td(error), td(cuando), td(boton));
  return tr;
}

async function reenviar(a, boton) {
  if (!window.confirm(`¿Reenviar el mensaje ${a.id} (${a.tipo}) de la saga ${a.saga_id}? Hágalo solo tras corregir la causa: ${a.ultimo_error}`)) {
    return;
  }
  boton.disabled = true;
  try {
    await llamar(`outbox/aparcados/${encodeURIComponent(a.id)}/reenviar`, 'POST');
    ui.mensaje.textContent = `Mensaje ${a.id} reenviado: el relay lo publicará de nuevo (queda en la auditoría del coordinador).`;
  } catch (e) {
    ui.mensaje.textContent = `No se pudo reenviar el mensaje ${a.id}: ${e.message}`;
  }
  ui.mensaje.hidden = false;
  await actualizar();
}

export async function actualizar() {
  let lista;
  try {
    lista = await llamar('outbox/aparcados?limite=100');
  } catch (e) {
    ui.total.textContent = '?';
    ui.resumen.textContent = `No se pudieron leer los mensajes aparcados (${e.message}).`;
    return;
  }
  ui.total.textContent = String(lista.total);
  ui.seccion.dataset.hay = lista.total > 0 ? 'si' : 'no';
  ui.resumen.textContent = lista.total === 0
    ? 'Ninguno: el broker aceptó todos los mensajes del outbox.'
    : `${lista.total} mensaje(s) que el broker rechazó hasta agotar sus intentos; su saga vence, compensa o queda en COMPENSACION_FALLIDA. Corrija la causa (último error) y reenvíelos, o reintente la saga.`
      + (lista.total > lista.aparcados.length ? ` Se muestran los ${lista.aparcados.length} más antiguos.` : '');
  ui.marco.hidden = lista.aparcados.length === 0;
  ui.filas.replaceChildren(...lista.aparcados.map(fila));
}

actualizar();
setInterval(() => {
  if (!document.hidden) {
    actualizar();
  }
}, INTERVALO);
