// Formatting of the inspector's values for people: state names in Spanish,
// durations that read like speech ("1,2 s", "3 min 4 s") and instants in the
// browser's own time zone. Pure functions, so the browser test can check
// them one by one.

// The page's language is Spanish; a Spanish variant the person prefers (es-CO,
// es-MX...) decides separators and date order, otherwise plain "es".
export const IDIOMA = (navigator.languages || [navigator.language]).find((l) => /^es\b/i.test(l || '')) || 'es';

// ZONA is the browser's time zone: every instant is shown in it.
export const ZONA = Intl.DateTimeFormat().resolvedOptions().timeZone;

export const ESTADOS_SAGA = {
  INICIADA: 'Iniciada',
  EN_PROGRESO: 'En progreso',
  COMPLETADA: 'Completada',
  COMPENSANDO: 'Compensando',
  COMPENSADA: 'Compensada',
  COMPENSACION_FALLIDA: 'Compensación fallida',
  CANCELADA: 'Cancelada',
};

// TERMINALES are the states a saga never leaves on its own.
export const TERMINALES = new Set(['COMPLETADA', 'COMPENSADA', 'COMPENSACION_FALLIDA', 'CANCELADA']);

export function nombreEstado(estado) {
  return ESTADOS_SAGA[estado] || estado || '—';
}

const decimal = new Intl.NumberFormat(IDIOMA, { maximumFractionDigits: 1 });
const fechaHora = new Intl.DateTimeFormat(IDIOMA, { dateStyle: 'medium', timeStyle: 'medium' });
const horaPrecisa = new Intl.DateTimeFormat(IDIOMA, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hourCycle: 'h23',
});

// duracion turns seconds into text: milliseconds under a second, one decimal
// under ten seconds, then whole units two at a time (3 min 4 s, 2 h 5 min).
export function duracion(segundos) {
  if (segundos == null || !Number.isFinite(segundos)) {
    return '—';
  }
  const s = Math.max(0, segundos);
  if (s < 1) {
    const ms = Math.round(s * 1000);
    return ms < 1000 ? `${ms} ms` : '1 s';
  }
  if (s < 10) {
    const d = Math.round(s * 10) / 10;
    return d < 10 ? `${decimal.format(d)} s` : '10 s';
  }
  const total = Math.round(s);
  const unidades = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  const partes = [];
  let resto = total;
  for (const [nombre, tam] of unidades) {
    const n = Math.floor(resto / tam);
    resto -= n * tam;
    if (n > 0 || partes.length > 0) {
      partes.push([n, nombre]);
    }
  }
  // The two largest units say enough; a zero second unit is dropped ("3 min").
  const dos = partes.slice(0, 2).filter(([n], i) => i === 0 || n > 0);
  return dos.map(([n, nombre]) => `${n} ${nombre}`).join(' ');
}

// desde gives the seconds elapsed since an RFC 3339 instant (for running
// steps), never negative even if the clocks disagree.
export function desde(instante, ahora = Date.now()) {
  const t = Date.parse(instante);
  return Number.isNaN(t) ? null : Math.max(0, (ahora - t) / 1000);
}

// fecha is an instant with its date, in the browser's time zone.
export function fecha(instante) {
  const t = Date.parse(instante);
  return Number.isNaN(t) ? '—' : fechaHora.format(t);
}

// hora is an instant's time of day with milliseconds: steps last little.
export function hora(instante) {
  const t = Date.parse(instante);
  return Number.isNaN(t) ? '—' : horaPrecisa.format(t);
}

// segundosDeTexto reads the API's tiempo_total ("2.3s").
export function segundosDeTexto(texto) {
  const n = Number.parseFloat(texto);
  return Number.isFinite(n) ? n : null;
}
