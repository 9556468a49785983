// The tcpool dashboard: no build step, no library, nothing fetched but from this admin port.
// Live figures come from /api/v1/events (server-sent events, read through fetch so that an
// admin token can ride in the Authorization header); controls call the JSON API.

const HISTORY = 300; // points kept: five minutes at one a second
const COLORS = [
  '#4fb3ff',
  '#3ecf8e',
  '#f5b84b',
  '#ff6b6b',
  '#b18cff',
  '#ff9f5a',
  '#5ad6d6',
  '#e87bd0',
];
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem('tcpool-admin-token') ?? '';
const history = []; // frames, oldest first
let latest = null;

function headers(extra = {}) {
  return token === '' ? extra : { ...extra, authorization: `Bearer ${token}` };
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (res.status === 401) showLogin();
  if (!res.ok) throw new Error(data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

function say(text, error = false) {
  const m = $('message');
  m.textContent = text;
  m.className = error ? 'message error' : 'message';
}

function showLogin() {
  $('login').hidden = false;
  $('main').hidden = true;
}

// ---- formatting ----
const int = (n) => Math.round(n).toLocaleString('en-US');
function seconds(s) {
  if (s === 0) return '–';
  if (s < 1e-3) return `${(s * 1e6).toFixed(s < 1e-5 ? 1 : 0)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(s < 1e-2 ? 2 : 1)} ms`;
  return `${s.toFixed(2)} s`;
}
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
function duration(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// ---- charts: a line per series over the history, on a canvas ----
function chart(id, series, format) {
  const canvas = $(id);
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== w * ratio) {
    canvas.width = w * ratio;
    canvas.height = h * ratio;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 70;
  // The time axis spans what is known, half a minute at least, five minutes at most.
  const span = Math.max(30, Math.min(HISTORY, history.length));
  const bottom = h - 16;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v > max) max = v;
  max = max === 0 ? 1 : niceCeil(max);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#8593a3';
  ctx.strokeStyle = '#263040';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = 6 + ((bottom - 6) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(w, y);
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.fillText(format((max * (4 - i)) / 4), left - 6, y + 4);
  }
  ctx.textAlign = 'left';
  ctx.fillText(span >= 120 ? `−${Math.round(span / 60)} min` : `−${span} s`, left, h - 2);
  ctx.textAlign = 'right';
  ctx.fillText('now', w, h - 2);
  const step = (w - left) / (span - 1);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    const offset = span - s.values.length;
    s.values.forEach((v, i) => {
      const x = left + (offset + i) * step;
      const y = bottom - ((bottom - 6) * v) / max;
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  // A legend when there is more than one series.
  if (series.length > 1) {
    let x = left + 8;
    ctx.textAlign = 'left';
    for (const s of series.slice(0, 8)) {
      ctx.fillStyle = s.color;
      ctx.fillRect(x, 8, 8, 8);
      ctx.fillStyle = '#8593a3';
      ctx.fillText(s.label, x + 11, 16);
      x += ctx.measureText(s.label).width + 24;
    }
  }
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** One series per worker that appears in the history. */
function perWorker(field) {
  const ids = new Set();
  for (const f of history) for (const w of f.workers) if (w.state !== 'free') ids.add(w.id);
  return [...ids]
    .sort((a, b) => a - b)
    .map((id) => ({
      label: `w${id}`,
      color: COLORS[id % COLORS.length],
      values: history.map(
        (f) => f.workers.find((w) => w.id === id && w.state !== 'free')?.[field] ?? 0,
      ),
    }));
}
const total = (label, pick) => [{ label, color: COLORS[0], values: history.map(pick) }];

// ---- rendering ----
function row(cells, className = '') {
  const tr = document.createElement('tr');
  if (className) tr.className = className;
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.append(c);
    else td.textContent = c;
    tr.append(td);
  }
  return tr;
}

function fill(id, rows) {
  const body = $(id).querySelector('tbody');
  body.replaceChildren(...rows);
}

function render() {
  const f = latest;
  if (f === null) return;
  const phase = $('phase');
  phase.textContent = f.phase;
  phase.className = `badge ${f.phase}`;
  $('meta').textContent = `v${f.version} · pid ${f.pid} · up ${duration(f.uptimeSeconds)}`;
  const serving = f.workers.filter((w) => w.state === 'serving');
  const p99 = Math.max(0, ...serving.map((w) => w.p99));
  const errors = f.workers.reduce((a, w) => a + w.errorsPerSecond, 0);
  $('c-rps').textContent = int(f.rps);
  $('c-active').textContent = int(f.active);
  $('c-p99').textContent = seconds(p99);
  $('c-errors').textContent = errors.toFixed(errors < 10 ? 1 : 0);
  $('c-rss').textContent = bytes(f.rss);
  $('c-pool').textContent = `${f.poolSize} / ${f.poolMax}`;
  const input = $('pool-size');
  if (document.activeElement !== input) input.value = f.poolSize;
  input.max = f.poolMax;

  chart('ch-rps', perWorker('rps'), int);
  chart('ch-p99', perWorker('p99'), seconds);
  chart(
    'ch-active',
    total('active', (x) => x.active),
    int,
  );
  chart('ch-lag', perWorker('lag'), seconds);
  chart('ch-errors', perWorker('errorsPerSecond'), (v) => (v < 10 ? v.toFixed(2) : int(v)));
  chart(
    'ch-rss',
    total('rss', (x) => x.rss),
    bytes,
  );

  fill(
    'workers',
    f.workers
      .filter((w) => w.state !== 'free')
      .map((w) =>
        row(
          [
            w.id,
            w.state,
            int(w.active),
            int(w.rps),
            seconds(w.p50),
            seconds(w.p99),
            w.errorsPerSecond.toFixed(1),
            `${(w.elu * 100).toFixed(0)}%`,
            seconds(w.lag),
            bytes(w.heapUsed),
          ],
          w.state,
        ),
      ),
  );
  fill(
    'slowest',
    f.slowest.map((c) =>
      row([c.command, int(c.calls), seconds(c.meanSeconds), seconds(c.p99Seconds)]),
    ),
  );
  $('clients-total').textContent =
    `(${f.clientsTotal}${f.clientsTotal > f.clients.length ? `, first ${f.clients.length}` : ''})`;
  fill(
    'clients',
    f.clients.map((c) => {
      const kill = document.createElement('button');
      kill.type = 'button';
      kill.textContent = 'kill';
      kill.addEventListener('click', () => killClient(c.id));
      return row([
        c.id,
        c.worker,
        c.addr,
        c.name,
        c.protocol,
        `${c.age} s`,
        `${c.idle} s`,
        c.cmd,
        kill,
      ]);
    }),
  );
}

// ---- the live stream ----
async function stream() {
  for (;;) {
    try {
      const res = await fetch('/api/v1/events', { headers: headers() });
      if (res.status === 401) return showLogin();
      if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
      $('live').className = 'live on';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data !== '') onFrame(JSON.parse(data));
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // The server restarted or the network blinked: show it, and try again shortly.
    }
    $('live').className = 'live';
    const phase = $('phase');
    phase.textContent = 'offline';
    phase.className = 'badge offline';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onFrame(frame) {
  latest = frame;
  history.push(frame);
  if (history.length > HISTORY) history.shift();
  render();
}

// ---- controls ----
async function killClient(id) {
  try {
    await api('POST', `/api/v1/clients/${id}/kill`);
    say(`Client ${id} killed`);
  } catch (err) {
    say(err.message, true);
  }
}

$('pool-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const size = Number($('pool-size').value);
  try {
    const p = await api('PUT', '/api/v1/pool', { size });
    say(`Pool size ${p.size}${p.retiring > 0 ? `, ${p.retiring} retiring` : ''}`);
    $('pool-size').blur();
  } catch (err) {
    say(err.message, true);
  }
});

$('reload').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/api/v1/reload');
    const changed = r.changed.length === 0 ? 'nothing changed' : `changed: ${r.changed.join(', ')}`;
    const fixed = r.notLive.length === 0 ? '' : `; need a restart: ${r.notLive.join(', ')}`;
    say(`Reloaded (${changed}${fixed})`);
  } catch (err) {
    say(err.message, true);
  }
});

// Drain takes two clicks: the first arms the button for five seconds.
let armed = null;
$('drain').addEventListener('click', async () => {
  const button = $('drain');
  if (armed === null) {
    button.textContent = 'Confirm drain';
    button.classList.add('armed');
    armed = setTimeout(() => {
      armed = null;
      button.textContent = 'Drain';
      button.classList.remove('armed');
    }, 5000);
    return;
  }
  clearTimeout(armed);
  armed = null;
  button.textContent = 'Drain';
  button.classList.remove('armed');
  try {
    await api('POST', '/api/v1/drain');
    say('Draining: new connections are refused, clients are served until SIGTERM');
  } catch (err) {
    say(err.message, true);
  }
});

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value;
  sessionStorage.setItem('tcpool-admin-token', token);
  $('login').hidden = true;
  $('main').hidden = false;
  void stream();
});

window.addEventListener('resize', render);
void stream();
