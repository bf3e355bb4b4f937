// The saga inspector page: the list of sagas with its filters, one saga's
// timeline (polled every second until the saga ends) and the operator's
// retry of a failed compensation and cancel of a running saga (after a
// confirmation step), all through the coordinator's JSON API.
// Data from the API is only ever inserted as text, never as markup.

import {
  ESTADOS_SAGA, TERMINALES, ZONA, desde, duracion, fecha, hora, nombreEstado, segundosDeTexto,
} from './formato.js';

// The API is a sibling of the page (/inspector/ → /api/v1/), so the page also
// works behind a proxy that mounts the coordinator under a prefix.
const API = new URL('../api/v1/', document.baseURI);
const INTERVALO_DETALLE = 1000;
const INTERVALO_LISTA = 3000;
const LIMITE = 100;
const CLAVE_TOKEN = 'sagas.inspector.token';
// A saga id prefix as the API accepts it in ?q=.
const FORMATO_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const ESTADOS_PASO = {
  PENDIENTE: 'Pendiente',
  EJECUTANDO: 'Ejecutando',
  COMPLETADO: 'Completado',
  FALLIDO: 'Fallido',
  COMPENSANDO: 'Compensando',
  COMPENSADO: 'Compensado',
};

const $ = (id) => document.getElementById(id);
const ui = {
  alerta: $('alerta'),
  anuncio: $('anuncio'),
  formToken: $('form-token'),
  token: $('token'),
  tokenEstado: $('token-estado'),
  olvidarToken: $('olvidar-token'),
  vistaLista: $('vista-lista'),
  actualizar: $('actualizar'),
  conteos: $('conteos'),
  filtros: $('filtros'),
  busqueda: $('f-busqueda'),
  estado: $('f-estado'),
  tipo: $('f-tipo'),
  desde: $('f-desde'),
  hasta: $('f-hasta'),
  resumen: $('resumen-lista'),
  marcoTabla: $('marco-tabla'),
  filas: $('filas'),
  vistaDetalle: $('vista-detalle'),
  volver: $('volver'),
  tituloDetalle: $('titulo-detalle'),
  dId: $('d-id'),
  dEstado: $('d-estado'),
  dVivo: $('d-vivo'),
  dReintento: $('d-reintento'),
  reintentar: $('reintentar'),
  dCancelar: $('d-cancelar'),
  cancelar: $('cancelar'),
  dConfirmar: $('d-confirmar'),
  confirmarCancelar: $('confirmar-cancelar'),
  desistirCancelar: $('desistir-cancelar'),
  dMensaje: $('d-mensaje'),
  dDatos: $('d-datos'),
  dEjecucion: $('d-ejecucion'),
  faseCompensacion: $('fase-compensacion'),
  dCompensacion: $('d-compensacion'),
  dEntradaMarco: $('d-entrada-marco'),
  dEntrada: $('d-entrada'),
  zona: $('zona-horaria'),
};

const lista = { filas: new Map(), controlador: null, temporizador: 0 };
const detalle = { id: '', controlador: null, temporizador: 0, firma: '', estado: '' };
let vistaActual = '';

// el builds an element: attributes (false/null ones are skipped) and
// children, where strings become text nodes.
function el(etiqueta, atributos = {}, ...hijos) {
  const e = document.createElement(etiqueta);
  for (const [k, v] of Object.entries(atributos)) {
    if (v === false || v == null) {
      continue;
    }
    if (k === 'class') {
      e.className = v;
    } else {
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const h of hijos.flat()) {
    if (h != null && h !== false) {
      e.append(h instanceof Node ? h : document.createTextNode(String(h)));
    }
  }
  return e;
}

function insignia(estado, texto = nombreEstado(estado)) {
  return el('span', { class: `estado estado-${estado}` }, texto);
}

function tiempo(instante, texto) {
  return instante ? el('time', { datetime: instante, title: fecha(instante) }, texto(instante)) : '—';
}

// --- the API -----------------------------------------------------------------

class ErrorAPI extends Error {
  constructor(codigo, mensaje, campos) {
    super(mensaje);
    this.codigo = codigo;
    this.campos = campos || [];
  }
}

function leerToken() {
  try {
    return sessionStorage.getItem(CLAVE_TOKEN) || '';
  } catch {
    return '';
  }
}

async function llamar(ruta, { metodo = 'GET', senal } = {}) {
  const cabeceras = { Accept: 'application/json' };
  const token = leerToken();
  if (token) {
    cabeceras.Authorization = `Bearer ${token}`;
  }
  let r;
  try {
    r = await fetch(new URL(ruta, API), { method: metodo, headers: cabeceras, signal: senal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') {
      throw e;
    }
    throw new ErrorAPI(0, 'No se pudo contactar con la API del coordinador. ¿Está en marcha?');
  }
  let cuerpo = null;
  try {
    cuerpo = await r.json();
  } catch {
    // Not JSON (a proxy's error page, say): the status says enough.
  }
  if (!r.ok) {
    throw new ErrorAPI(r.status, (cuerpo && cuerpo.error) || r.statusText, cuerpo && cuerpo.campos);
  }
  return cuerpo;
}

// --- messages ----------------------------------------------------------------

// anunciar tells screen readers about a change without moving the focus.
function anunciar(texto) {
  ui.anuncio.textContent = '';
  setTimeout(() => { ui.anuncio.textContent = texto; }, 50);
}

// Origins of the alerts that the page's own loads raise, as opposed to a
// person's action (a retry, a cancel).
const CARGAS = new Set(['lista', 'detalle']);

// mostrarError fills the alert; origen lets a later success clear only the
// alert it is responsible for. A 401 is about the token, not the request:
// a load's 401 leaves an alert that already says 401 as it is, so that a
// reload racing an action (forgetting the token reloads the view) cannot
// take the place of the action's alert, which put the focus on the token.
function mostrarError(err, contexto, origen) {
  const a = ui.alerta;
  if (err.codigo === 401 && CARGAS.has(origen) && !a.hidden && a.dataset.codigo === '401') {
    return;
  }
  a.replaceChildren();
  a.dataset.origen = origen;
  a.dataset.codigo = String(err.codigo);
  if (err.codigo === 401) {
    a.append(
      el('strong', {}, 'No autorizado (401).'),
      ' La API del coordinador exige un token válido. Escríbalo en «Token de la API» y pulse Guardar. ',
      el('button', { type: 'button', class: 'secundario', 'data-accion': 'ir-al-token' }, 'Escribir el token'),
    );
  } else {
    const codigo = err.codigo ? ` (${err.codigo})` : '';
    a.append(el('strong', {}, `${contexto}${codigo}.`), ` ${err.message}`);
    if (err.campos.length) {
      a.append(el('ul', {}, err.campos.map((c) => el('li', {}, `${c.campo}: ${c.error}`))));
    }
  }
  a.hidden = false;
}

function limpiarAlerta(origen) {
  if (!origen || ui.alerta.dataset.origen === origen) {
    ui.alerta.hidden = true;
    ui.alerta.replaceChildren();
    delete ui.alerta.dataset.origen;
    delete ui.alerta.dataset.codigo;
  }
}

// --- the token ---------------------------------------------------------------

function pintarToken() {
  const hay = leerToken() !== '';
  ui.tokenEstado.textContent = hay
    ? 'Token guardado solo para esta pestaña (sessionStorage).'
    : 'Sin token: solo hace falta si la API lo exige (SAGAS_API_TOKEN).';
}

function guardarToken(valor) {
  try {
    if (valor) {
      sessionStorage.setItem(CLAVE_TOKEN, valor);
    } else {
      sessionStorage.removeItem(CLAVE_TOKEN);
    }
  } catch {
    // Storage disabled: the token lasts until the page reloads.
  }
  pintarToken();
  limpiarAlerta();
  anunciar(valor ? 'Token guardado.' : 'Token olvidado.');
  recargarVista();
}

// --- the list ----------------------------------------------------------------

function leerFiltros() {
  return {
    busqueda: ui.busqueda.value.trim(),
    estado: ui.estado.value,
    tipo: ui.tipo.value,
    desde: ui.desde.value,
    hasta: ui.hasta.value,
  };
}

// escribirURL keeps the filters in the address, so a filtered list can be
// reloaded or shared.
function escribirURL(f) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) {
    if (v) {
      p.set(k, v);
    }
  }
  const q = p.toString();
  history.replaceState(history.state, '', `${location.pathname}${q ? `?${q}` : ''}${location.hash}`);
}

function leerURL() {
  const p = new URLSearchParams(location.search);
  ui.busqueda.value = p.get('busqueda') || '';
  ui.estado.value = p.get('estado') || '';
  ui.tipo.value = p.get('tipo') || '';
  ui.desde.value = p.get('desde') || '';
  ui.hasta.value = p.get('hasta') || '';
}

// consultas are the listing queries for the filters: the search box may hold
// a saga id (or its beginning) or a campaign id, so both are asked.
function consultas(f) {
  const base = new URLSearchParams({ limite: String(LIMITE) });
  if (f.estado) {
    base.set('estado', f.estado);
  }
  if (f.tipo) {
    base.set('tipo', f.tipo);
  }
  for (const k of ['desde', 'hasta']) {
    const t = f[k] ? new Date(f[k]) : null; // datetime-local: the person's own time zone
    if (t && !Number.isNaN(t.getTime())) {
      base.set(k, t.toISOString());
    }
  }
  if (!f.busqueda) {
    return [base];
  }
  const porCampania = new URLSearchParams(base);
  porCampania.set('campania_id', f.busqueda);
  if (!FORMATO_ID.test(f.busqueda)) {
    return [porCampania];
  }
  const porSaga = new URLSearchParams(base);
  porSaga.set('q', f.busqueda);
  return [porSaga, porCampania];
}

// combinar merges the answers of consultas: sagas once each, newest first,
// and counts added up less the sagas both answers listed.
function combinar(respuestas) {
  const porID = new Map();
  const conteos = {};
  let total = 0;
  for (const r of respuestas) {
    total += r.total;
    for (const [e, n] of Object.entries(r.conteos || {})) {
      conteos[e] = (conteos[e] || 0) + n;
    }
    for (const s of r.sagas) {
      if (porID.has(s.id_saga)) {
        total -= 1;
        conteos[s.estado] -= 1;
      }
      porID.set(s.id_saga, s);
    }
  }
  const sagas = [...porID.values()].sort((a, b) => Date.parse(b.inicio) - Date.parse(a.inicio)).slice(0, LIMITE);
  return { sagas, total, conteos };
}

async function cargarLista({ avisar = false } = {}) {
  clearTimeout(lista.temporizador);
  if (lista.controlador) {
    lista.controlador.abort();
  }
  const controlador = new AbortController();
  lista.controlador = controlador;
  const f = leerFiltros();
  let enCurso = false;
  try {
    const resultados = await Promise.allSettled(
      consultas(f).map((p) => llamar(`sagas?${p}`, { senal: controlador.signal })),
    );
    const buenos = resultados.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    if (buenos.length === 0) {
      throw resultados[resultados.length - 1].reason;
    }
    const datos = combinar(buenos);
    limpiarAlerta('lista');
    pintarLista(datos, f);
    enCurso = datos.sagas.some((s) => !TERMINALES.has(s.estado));
    if (avisar) {
      anunciar(ui.resumen.textContent);
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      return;
    }
    mostrarError(e, 'No se pudo cargar la lista de sagas', 'lista');
    ui.resumen.textContent = 'No se pudo cargar la lista.';
  }
  // While a listed saga runs, the list follows it.
  if (enCurso && controlador === lista.controlador && !ui.vistaLista.hidden) {
    lista.temporizador = setTimeout(cargarLista, INTERVALO_LISTA);
  }
}

// pintarConteos builds the count buttons once and then only updates them, so
// a refresh never takes the focus away from one.
function pintarConteos(conteos, seleccionado) {
  const estados = ['', ...Object.keys(ESTADOS_SAGA)];
  if (ui.conteos.children.length !== estados.length) {
    ui.conteos.replaceChildren(...estados.map((e) => el('li', {},
      el('button', { type: 'button', class: `conteo${e ? ` estado-${e}` : ''}`, 'data-estado': e },
        el('span', { class: 'conteo-nombre' }, e ? ESTADOS_SAGA[e] : 'Todas'),
        el('span', { class: 'conteo-numero' })))));
  }
  const todas = Object.values(conteos).reduce((a, b) => a + b, 0);
  for (const b of ui.conteos.querySelectorAll('button[data-estado]')) {
    const e = b.dataset.estado;
    b.querySelector('.conteo-numero').textContent = String(e ? conteos[e] || 0 : todas);
    b.setAttribute('aria-pressed', String(e === seleccionado));
  }
}

function textoDuracion(s) {
  if (s.tiempo_total) {
    return duracion(segundosDeTexto(s.tiempo_total));
  }
  return TERMINALES.has(s.estado) ? '—' : `en curso · ${duracion(desde(s.inicio))}`;
}

function celdas(s) {
  return [
    el('th', { scope: 'row', role: 'rowheader', 'data-etiqueta': 'Saga' }, el('code', { class: 'id' }, s.id_saga)),
    el('td', { role: 'cell', 'data-etiqueta': 'Tipo' }, el('div', {},
      el('span', {}, s.tipo),
      el('span', { class: 'secundaria', title: 'versión de la definición con la que empezó y termina' }, `versión ${s.version_definicion}`))),
    el('td', { role: 'cell', 'data-etiqueta': 'Estado', class: 'celda-estado' }, insignia(s.estado)),
    el('td', { role: 'cell', 'data-etiqueta': 'Campaña' }, s.nombre || s.campania_id ? el('div', {},
      s.nombre ? el('span', { class: 'nombre' }, s.nombre) : null,
      s.campania_id ? el('code', { class: 'id secundaria' }, s.campania_id) : null) : '—'),
    el('td', { role: 'cell', 'data-etiqueta': 'Inicio' }, tiempo(s.inicio, fecha)),
    el('td', { role: 'cell', 'data-etiqueta': 'Duración', class: 'numero' }, textoDuracion(s)),
    el('td', { role: 'cell', 'data-etiqueta': 'Paso fallido' }, s.paso_fallido || '—'),
  ];
}

function pintarLista(datos, f) {
  pintarConteos(datos.conteos, f.estado);
  const n = datos.sagas.length;
  const filtrada = Object.values(f).some(Boolean);
  ui.resumen.textContent = n === 0
    ? (filtrada ? 'No hay sagas que cumplan los filtros.' : 'Todavía no hay sagas.')
    : `Mostrando ${n} de ${datos.total} ${datos.total === 1 ? 'saga' : 'sagas'}`
      + `${filtrada ? (datos.total === 1 ? ' que cumple los filtros' : ' que cumplen los filtros') : ''}.`;
  ui.marcoTabla.hidden = n === 0;

  // Rows are kept by saga id and only their cells change, so a refresh never
  // moves the keyboard focus away from the row a person is on.
  const ids = new Set(datos.sagas.map((s) => s.id_saga));
  for (const [id, tr] of lista.filas) {
    if (!ids.has(id)) {
      tr.remove();
      lista.filas.delete(id);
    }
  }
  datos.sagas.forEach((s, i) => {
    let tr = lista.filas.get(s.id_saga);
    if (!tr) {
      tr = el('tr', { tabindex: '0', role: 'row', 'data-id': s.id_saga, class: 'fila' });
      lista.filas.set(s.id_saga, tr);
    }
    const firma = JSON.stringify(s) + textoDuracion(s);
    if (tr.dataset.firma !== firma) {
      tr.dataset.firma = firma;
      tr.dataset.estado = s.estado;
      tr.replaceChildren(...celdas(s));
    }
    if (ui.filas.children[i] !== tr) {
      ui.filas.insertBefore(tr, ui.filas.children[i] || null);
    }
  });
}

function aplicarFiltros() {
  const f = leerFiltros();
  if (f.desde && f.hasta && new Date(f.hasta) <= new Date(f.desde)) {
    mostrarError(new ErrorAPI(0, '«Iniciadas hasta» debe ser posterior a «Iniciadas desde».'), 'Filtro inválido', 'lista');
    ui.hasta.focus();
    return;
  }
  escribirURL(f);
  cargarLista({ avisar: true });
}

// --- the detail --------------------------------------------------------------

// dato is one name and value of a description list; the div around them is
// what lets the list lay out as a grid.
function dato(nombre, ...valor) {
  return el('div', { class: 'dato' }, el('dt', {}, nombre), el('dd', {}, ...valor));
}

// resultadoEjecucion is what happened when the step ran, which the step's
// own state no longer says once it was compensated.
function resultadoEjecucion(p, s) {
  if (p.paso === s.paso_fallido || p.estado === 'FALLIDO') {
    return ['FALLIDO', 'Falló'];
  }
  if (p.estado === 'PENDIENTE' || p.estado === 'EJECUTANDO') {
    return [p.estado, ESTADOS_PASO[p.estado]];
  }
  return ['COMPLETADO', 'Completado'];
}

function resultadoCompensacion(p, s) {
  if (p.estado === 'COMPENSADO') {
    return ['COMPENSADO', 'Compensado'];
  }
  if (p.compensacion.error && s.estado === 'COMPENSACION_FALLIDA') {
    return ['FALLIDO', 'Falló'];
  }
  return ['COMPENSANDO', p.compensacion.error ? 'Reintentando' : 'Compensando'];
}

function textoDuracionPaso(parte) {
  if (parte.duracion_segundos != null) {
    return duracion(parte.duracion_segundos);
  }
  return parte.inicio && !parte.fin ? el('span', { 'data-desde': parte.inicio }, `en curso · ${duracion(desde(parte.inicio))}`) : '—';
}

function carga(clave, titulo, valor) {
  if (valor == null) {
    return null;
  }
  return el('details', { class: 'carga', 'data-clave': clave },
    el('summary', {}, titulo),
    el('pre', {}, el('code', {}, JSON.stringify(valor, null, 2))));
}

function evento({ fase, p, titulo, resultado, parte, cargas }) {
  const [clase, texto] = resultado;
  const empezado = Boolean(parte.inicio || parte.intento);
  return el('li', {
    class: `evento evento-${clase}`, 'data-fase': fase, 'data-paso': p.paso, 'data-resultado': clase,
  },
  el('div', { class: 'evento-cabecera' },
    el('h5', {}, titulo,
      fase === 'ejecucion' && p.descripcion ? el('span', { class: 'descripcion' }, ` · ${p.descripcion}`) : null),
    el('span', { class: `resultado resultado-${clase}` }, texto)),
  empezado ? el('dl', { class: 'datos datos-evento' },
    dato('Servicio', p.servicio),
    dato('Intento', String(parte.intento || '—')),
    dato('Inicio', tiempo(parte.inicio, hora)),
    dato('Fin', tiempo(parte.fin, hora)),
    dato('Duración', textoDuracionPaso(parte)),
    parte.error ? dato('Error', el('span', { class: 'error' }, parte.error)) : []) : el('p', { class: 'nota' }, `Servicio ${p.servicio}`),
  cargas.some(Boolean) ? el('div', { class: 'cargas' }, cargas) : null);
}

// ordenCompensaciones sorts compensations as they happened: by start, and
// newest step first when a start is missing (the order the engine uses).
function ordenCompensaciones(pasos) {
  return pasos
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => p.compensacion)
    .sort((a, b) => {
      const ta = Date.parse(a.p.compensacion.inicio);
      const tb = Date.parse(b.p.compensacion.inicio);
      if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) {
        return ta - tb;
      }
      if (Number.isNaN(ta) !== Number.isNaN(tb)) {
        return Number.isNaN(ta) ? 1 : -1;
      }
      return b.i - a.i;
    })
    .map(({ p }) => p);
}

function pintarDetalle(s) {
  const firma = JSON.stringify(s);
  if (firma === detalle.firma) {
    refrescarEnCurso();
    return;
  }
  detalle.firma = firma;
  if (detalle.estado && detalle.estado !== s.estado) {
    anunciar(`La saga pasó a ${nombreEstado(s.estado)}.`);
  }
  detalle.estado = s.estado;

  // Keep what the person opened and where the focus was across the redraw.
  const abiertos = new Set([...ui.vistaDetalle.querySelectorAll('details[open]')].map((d) => d.dataset.clave));
  const activo = document.activeElement && document.activeElement.closest('details');
  const claveActiva = activo && ui.vistaDetalle.contains(activo) ? activo.dataset.clave : '';

  ui.dEstado.className = `estado estado-${s.estado}`;
  ui.dEstado.textContent = nombreEstado(s.estado);
  ui.dReintento.hidden = s.estado !== 'COMPENSACION_FALLIDA';
  // Only a running saga can be cancelled; one cancelled already shows when.
  const cancelable = (s.estado === 'INICIADA' || s.estado === 'EN_PROGRESO') && !s.cancelacion;
  if (ui.dCancelar.hidden === cancelable) {
    ui.dCancelar.hidden = !cancelable;
    cerrarConfirmacion(false);
  }

  ui.dDatos.replaceChildren(...[
    dato('Tipo', `${s.tipo} (versión ${s.version_definicion})`),
    dato('Campaña', s.campania_id ? el('code', { class: 'id' }, s.campania_id) : '—'),
    s.usuario_id ? dato('Usuario', s.usuario_id) : [],
    dato('Inicio', tiempo(s.inicio, fecha)),
    dato('Fin', tiempo(s.fin, fecha)),
    dato('Duración', s.duracion_segundos != null ? duracion(s.duracion_segundos)
      : el('span', { 'data-desde': s.inicio }, `en curso · ${duracion(desde(s.inicio))}`)),
    s.paso_actual ? dato('Paso actual', s.paso_actual) : [],
    s.paso_fallido ? dato('Paso fallido', el('span', { class: 'error' }, s.paso_fallido)) : [],
    s.compensaciones.length ? dato('Compensaciones', s.compensaciones.join(' → ')) : [],
    s.error ? dato('Error', el('span', { class: 'error' }, s.error)) : [],
    s.cancelacion ? dato('Cancelada', tiempo(s.cancelacion, fecha)) : [],
    s.plazo && !TERMINALES.has(s.estado) ? dato('Próximo plazo', tiempo(s.plazo, hora)) : [],
  ].flat());

  ui.dEjecucion.replaceChildren(...s.pasos.map((p, i) => evento({
    fase: 'ejecucion', p, titulo: `${i + 1}. ${p.paso}`, resultado: resultadoEjecucion(p, s),
    parte: p,
    cargas: [carga(`e-${p.paso}-entrada`, 'Entrada', p.entrada), carga(`e-${p.paso}-salida`, 'Salida', p.salida)],
  })));

  const compensados = ordenCompensaciones(s.pasos);
  ui.faseCompensacion.hidden = compensados.length === 0;
  ui.dCompensacion.replaceChildren(...compensados.map((p, i) => evento({
    fase: 'compensacion', p, titulo: `${i + 1}. Compensación de ${p.paso}`,
    resultado: resultadoCompensacion(p, s), parte: p.compensacion,
    cargas: [carga(`c-${p.paso}-salida`, 'Salida', p.compensacion.salida)],
  })));

  ui.dEntrada.textContent = s.entrada ? JSON.stringify(s.entrada, null, 2) : '—';

  for (const d of ui.vistaDetalle.querySelectorAll('details[data-clave]')) {
    if (abiertos.has(d.dataset.clave)) {
      d.open = true;
    }
    if (claveActiva && d.dataset.clave === claveActiva) {
      d.querySelector('summary').focus();
    }
  }
}

// refrescarEnCurso advances the "en curso" durations between answers.
function refrescarEnCurso() {
  for (const e of ui.vistaDetalle.querySelectorAll('[data-desde]')) {
    e.textContent = `en curso · ${duracion(desde(e.dataset.desde))}`;
  }
}

function vaciarDetalle(id) {
  detalle.firma = '';
  detalle.estado = '';
  ui.dId.textContent = id;
  ui.dEstado.replaceChildren();
  ui.dEstado.className = 'estado';
  ui.dDatos.replaceChildren(el('p', {}, 'Cargando…'));
  ui.dEjecucion.replaceChildren();
  ui.dCompensacion.replaceChildren();
  ui.faseCompensacion.hidden = true;
  ui.dReintento.hidden = true;
  ui.dMensaje.hidden = true;
  ui.dEntrada.textContent = '';
  ui.dEntradaMarco.open = false;
}

async function cargarDetalle() {
  clearTimeout(detalle.temporizador);
  if (detalle.controlador) {
    detalle.controlador.abort();
  }
  const controlador = new AbortController();
  detalle.controlador = controlador;
  const id = detalle.id;
  let seguir = false;
  try {
    const s = await llamar(`sagas/${encodeURIComponent(id)}`, { senal: controlador.signal });
    limpiarAlerta('detalle');
    pintarDetalle(s);
    seguir = !TERMINALES.has(s.estado);
  } catch (e) {
    if (e.name === 'AbortError') {
      return;
    }
    if (e.codigo === 404) {
      ui.dDatos.replaceChildren(el('p', {}, 'No existe ninguna saga con este id.'));
    }
    mostrarError(e, 'No se pudo leer la saga', 'detalle');
    // A broken connection or a busy server may come back; a refusal will not.
    seguir = e.codigo === 0 || e.codigo >= 500;
  }
  if (controlador !== detalle.controlador) {
    return;
  }
  ui.dVivo.hidden = !seguir;
  if (seguir) {
    detalle.temporizador = setTimeout(cargarDetalle, INTERVALO_DETALLE);
  }
}

function pararDetalle() {
  clearTimeout(detalle.temporizador);
  if (detalle.controlador) {
    detalle.controlador.abort();
    detalle.controlador = null;
  }
  ui.dVivo.hidden = true;
}

async function reintentarCompensacion() {
  const id = detalle.id;
  ui.reintentar.disabled = true;
  ui.dMensaje.hidden = false;
  ui.dMensaje.textContent = 'Enviando el reintento…';
  try {
    const r = await llamar(`sagas/${encodeURIComponent(id)}/reintentar`, { metodo: 'POST' });
    limpiarAlerta('reintento');
    ui.dMensaje.textContent = `Reintento aceptado: la saga está en «${nombreEstado(r.estado)}» y se actualiza en vivo.`;
    if (id === detalle.id) {
      cargarDetalle();
    }
  } catch (e) {
    ui.dMensaje.hidden = true;
    mostrarError(e, 'No se pudo reintentar la compensación', 'reintento');
    if (e.codigo === 401) {
      ui.token.focus();
    }
  } finally {
    ui.reintentar.disabled = false;
  }
}

// The cancel asks first: the button opens a confirmation, which says what
// will happen; only its own button sends the cancel.
function abrirConfirmacion() {
  ui.dConfirmar.hidden = false;
  ui.cancelar.setAttribute('aria-expanded', 'true');
  ui.desistirCancelar.focus();
}

function cerrarConfirmacion(enfocar) {
  ui.dConfirmar.hidden = true;
  ui.cancelar.setAttribute('aria-expanded', 'false');
  if (enfocar && !ui.dCancelar.hidden) {
    ui.cancelar.focus();
  }
}

async function cancelarSaga() {
  const id = detalle.id;
  ui.confirmarCancelar.disabled = true;
  ui.dMensaje.hidden = false;
  ui.dMensaje.textContent = 'Enviando la cancelación…';
  try {
    const r = await llamar(`sagas/${encodeURIComponent(id)}/cancelar`, { metodo: 'POST' });
    limpiarAlerta('cancelacion');
    cerrarConfirmacion(false);
    ui.dMensaje.textContent = `Cancelación aceptada: la saga está en «${nombreEstado(r.estado)}» y se actualiza en vivo.`;
    if (id === detalle.id) {
      cargarDetalle();
    }
  } catch (e) {
    ui.dMensaje.hidden = true;
    mostrarError(e, 'No se pudo cancelar la saga', 'cancelacion');
    if (e.codigo === 401) {
      ui.token.focus();
    } else if (e.codigo === 409 && id === detalle.id) {
      cargarDetalle(); // it ended meanwhile: show how
    }
  } finally {
    ui.confirmarCancelar.disabled = false;
  }
}

// --- views -------------------------------------------------------------------

function idEnDireccion() {
  return new URLSearchParams(location.hash.slice(1)).get('saga') || '';
}

function abrir(id) {
  history.pushState({ desdeLista: true }, '', `${location.pathname}${location.search}#saga=${encodeURIComponent(id)}`);
  enrutar();
}

function volver() {
  if (history.state && history.state.desdeLista) {
    history.back(); // popstate shows the list
    return;
  }
  history.pushState(null, '', `${location.pathname}${location.search}`);
  enrutar();
}

function mostrarLista() {
  pararDetalle();
  limpiarAlerta('detalle');
  limpiarAlerta('reintento');
  const desdeDetalle = !ui.vistaDetalle.hidden;
  ui.vistaDetalle.hidden = true;
  ui.vistaLista.hidden = false;
  document.title = 'Inspector de sagas';
  cargarLista();
  if (desdeDetalle) {
    const fila = lista.filas.get(detalle.id);
    (fila || ui.tituloDetalle).focus();
  }
  detalle.id = '';
}

function mostrarDetalle(id) {
  clearTimeout(lista.temporizador);
  limpiarAlerta('lista');
  if (id !== detalle.id) {
    vaciarDetalle(id);
    cerrarConfirmacion(false);
  }
  detalle.id = id;
  ui.vistaLista.hidden = true;
  ui.vistaDetalle.hidden = false;
  document.title = `Saga ${id.slice(0, 8)} · Inspector de sagas`;
  ui.tituloDetalle.focus();
  cargarDetalle();
}

function enrutar() {
  const id = idEnDireccion();
  // Going back fires both popstate and hashchange: act once.
  const vista = id ? `saga:${id}` : 'lista';
  if (vista === vistaActual) {
    return;
  }
  vistaActual = vista;
  if (id) {
    mostrarDetalle(id);
  } else {
    mostrarLista();
  }
}

function recargarVista() {
  if (ui.vistaDetalle.hidden) {
    cargarLista();
  } else {
    cargarDetalle();
  }
}

// --- events ------------------------------------------------------------------

ui.formToken.addEventListener('submit', (ev) => {
  ev.preventDefault();
  guardarToken(ui.token.value.trim());
});
ui.olvidarToken.addEventListener('click', () => {
  ui.token.value = '';
  guardarToken('');
});
ui.alerta.addEventListener('click', (ev) => {
  if (ev.target.closest('[data-accion="ir-al-token"]')) {
    ui.token.focus();
  }
});

ui.filtros.addEventListener('submit', (ev) => {
  ev.preventDefault();
  aplicarFiltros();
});
// A reset empties the fields after its event, hence the deferred reload.
ui.filtros.addEventListener('reset', () => setTimeout(aplicarFiltros));
ui.actualizar.addEventListener('click', () => cargarLista({ avisar: true }));
ui.conteos.addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-estado]');
  if (b) {
    ui.estado.value = b.dataset.estado;
    aplicarFiltros();
  }
});

ui.filas.addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr[data-id]');
  // Selecting an id to copy it is not a click on the row.
  const seleccion = window.getSelection();
  if (tr && !(seleccion && !seleccion.isCollapsed && tr.contains(seleccion.anchorNode))) {
    abrir(tr.dataset.id);
  }
});
// Rows are focusable: Enter or Space opens one, the arrows, Home and End
// move between them.
ui.filas.addEventListener('keydown', (ev) => {
  const tr = ev.target.closest('tr[data-id]');
  if (!tr || ev.target !== tr || ev.altKey || ev.ctrlKey || ev.metaKey) {
    return;
  }
  let destino = null;
  switch (ev.key) {
    case 'Enter':
    case ' ':
      ev.preventDefault();
      abrir(tr.dataset.id);
      return;
    case 'ArrowDown':
      destino = tr.nextElementSibling;
      break;
    case 'ArrowUp':
      destino = tr.previousElementSibling;
      break;
    case 'Home':
      destino = ui.filas.firstElementChild;
      break;
    case 'End':
      destino = ui.filas.lastElementChild;
      break;
    default:
      return;
  }
  ev.preventDefault();
  if (destino) {
    destino.focus();
  }
});

ui.volver.addEventListener('click', volver);
ui.reintentar.addEventListener('click', reintentarCompensacion);
ui.cancelar.addEventListener('click', abrirConfirmacion);
ui.desistirCancelar.addEventListener('click', () => cerrarConfirmacion(true));
ui.confirmarCancelar.addEventListener('click', cancelarSaga);
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && !ui.vistaDetalle.hidden && !ev.defaultPrevented) {
    if (!ui.dConfirmar.hidden) {
      cerrarConfirmacion(true); // Escape answers the question "no" first
      return;
    }
    volver();
  }
});
window.addEventListener('popstate', enrutar);
window.addEventListener('hashchange', enrutar);
// The "en curso" durations of the list and the detail tick between polls.
setInterval(() => {
  if (!ui.vistaDetalle.hidden) {
    refrescarEnCurso();
  }
}, 1000);

ui.token.value = leerToken();
pintarToken();
ui.zona.textContent = `Horas en su zona horaria: ${ZONA}.`;
leerURL();
enrutar();
