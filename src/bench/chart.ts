// A latency-by-percentile chart as a standalone SVG: percentiles on a log scale (50, 90, 99,
// 99.9 …) the way HdrHistogram plots are read, latency on a linear scale.
import type { BenchResult } from './run.ts';
import { formatUs } from './run.ts';

const W = 720;
const H = 420;
// The right margin leaves room for half of the last x label ("99.999%"), which is centred on the
// plot's right edge.
const M = { left: 80, right: 48, top: 48, bottom: 56 };
const Y_TICKS = 5;

/** 0 → 0, 90 → 1, 99 → 2, 99.9 → 3: distance in "nines". */
function nines(p: number): number {
  return p >= 100 ? 5 : Math.min(5, -Math.log10(1 - p / 100));
}

function escapeXml(s: string): string {
  return s.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!,
  );
}

/** A round tick step (1, 2 or 5 × 10^k µs) that spans `max` in about Y_TICKS steps. */
export function tickStep(max: number): number {
  const raw = max / Y_TICKS;
  if (raw <= 1) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5]) if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

export function latencyChart(r: BenchResult): string {
  const points = r.curve.filter(([p]) => p < 100);
  points.push([99.999, r.latencyUs.max]);
  const maxX = 5;
  const highest = Math.max(1, ...points.map(([, v]) => v));
  const step = tickStep(highest);
  const maxY = step * Math.ceil(highest / step);
  const x = (p: number) => M.left + (nines(p) / maxX) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / maxY) * (H - M.top - M.bottom);
  const path = points
    .map(([p, v], i) => `${i === 0 ? 'M' : 'L'}${x(p).toFixed(1)},${y(v).toFixed(1)}`)
    .join(' ');
  const xTicks = [0, 90, 99, 99.9, 99.99, 99.999].map((p) => {
    const label = p === 0 ? '0%' : `${p}%`;
    return `<line x1="${x(p)}" y1="${M.top}" x2="${x(p)}" y2="${H - M.bottom}" stroke="#ddd"/><text x="${x(p)}" y="${H - M.bottom + 18}" text-anchor="middle">${label}</text>`;
  });
  const yTicks = Array.from({ length: maxY / step + 1 }, (_, i) => step * i).map(
    (v) =>
      `<line x1="${M.left}" y1="${y(v)}" x2="${W - M.right}" y2="${y(v)}" stroke="#eee"/><text x="${M.left - 8}" y="${y(v) + 4}" text-anchor="end">${formatUs(v)}</text>`,
  );
  const dots = points.map(
    ([p, v]) =>
      `<circle cx="${x(p).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="#c0392b"><title>p${p}: ${formatUs(v)}</title></circle>`,
  );
  const o = r.options;
  const title = `tcpool bench: ${o.connections} conns, ${o.rate > 0 ? `${o.rate} req/s open loop` : `pipeline ${o.pipeline}`}, ${Math.round(r.rps)} req/s (${o.protocol} "${o.command}")`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="24" text-anchor="middle" font-size="14">${escapeXml(title)}</text>
${yTicks.join('\n')}
${xTicks.join('\n')}
<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="#333"/>
<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="#333"/>
<path d="${path}" fill="none" stroke="#c0392b" stroke-width="2"/>
${dots.join('\n')}
<text x="${W / 2}" y="${H - 12}" text-anchor="middle">percentile (log scale)</text>
<text x="18" y="${H / 2}" text-anchor="middle" transform="rotate(-90 18 ${H / 2})">latency</text>
</svg>
`;
}
