// Small SVG charts for the benchmark reports (`npm run bench`, `ike soak`): grouped bars and lines, with axes,
// ticks and a legend, as plain SVG text that a README or a browser shows without any script. Written here
// rather than taken from a plotting library: the charts are three simple kinds, and the libraries that
// render SVG headless in Node (vega, plotly) are tens of megabytes for that.

const W = 860;
const H = 420;
const M = { top: 40, right: 230, bottom: 130, left: 70 };
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number) => (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Number(v.toPrecision(3)).toString());

/** Round tick values from 0 to at least max (about five steps of 1, 2 or 5 x 10^n). */
export function ticks(max: number): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function frame(title: string, yLabel: string, xLabel: string, yTicks: number[], body: string[], legend: string[]): string {
  const ph = H - M.top - M.bottom;
  const yMax = yTicks[yTicks.length - 1]!;
  const y = (v: number) => M.top + ph - (v / yMax) * ph;
  const grid = yTicks.map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${num(t)}</text>`);
  const legendItems = legend.map((name, i) => `<rect x="${W - M.right + 12}" y="${M.top + i * 20}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${W - M.right + 30}" y="${M.top + i * 20 + 10}">${esc(name)}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...grid,
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`,
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    `<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`,
    ...body,
    ...legendItems,
    '</svg>',
  ].join('\n');
}

export interface BarChart {
  title: string;
  yLabel: string;
  xLabel?: string;
  categories: string[];
  series: { name: string; values: Array<number | null> }[];
}

/** Grouped bars: one group per category, one bar per series (null: no bar). */
export function barChart(c: BarChart): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const yTicks = ticks(Math.max(0, ...c.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)))));
  const yMax = yTicks[yTicks.length - 1]!;
  const group = pw / Math.max(1, c.categories.length);
  const bar = (group * 0.8) / Math.max(1, c.series.length);
  const body: string[] = [];
  c.categories.forEach((cat, i) => {
    const x0 = M.left + i * group + group * 0.1;
    c.series.forEach((s, k) => {
      const v = s.values[i];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const h = (v / yMax) * ph;
      body.push(`<rect x="${(x0 + k * bar).toFixed(1)}" y="${(M.top + ph - h).toFixed(1)}" width="${Math.max(1, bar - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[k % COLORS.length]}"><title>${esc(`${s.name}, ${cat}: ${num(v)}`)}</title></rect>`);
    });
    const cx = M.left + i * group + group / 2;
    const label = cat.length > 34 ? `${cat.slice(0, 33)}…` : cat;
    body.push(`<text transform="translate(${cx.toFixed(1)} ${M.top + ph + 12}) rotate(40)" text-anchor="start">${esc(label)}</text>`);
  });
  return frame(c.title, c.yLabel, c.xLabel ?? '', yTicks, body, c.series.map((s) => s.name));
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: Array<[number, number]> }[];
}

/** Lines over a numeric x axis (time, size). */
export function lineChart(c: LineChart): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const all = c.series.flatMap((s) => s.points);
  const yTicks = ticks(Math.max(0, ...all.map((p) => p[1])));
  const xTicks = ticks(Math.max(0, ...all.map((p) => p[0])));
  const yMax = yTicks[yTicks.length - 1]!;
  const xMax = xTicks[xTicks.length - 1]!;
  const x = (v: number) => M.left + (v / xMax) * pw;
  const y = (v: number) => M.top + ph - (v / yMax) * ph;
  const body = xTicks.map((t) => `<text x="${x(t)}" y="${M.top + ph + 16}" text-anchor="middle">${num(t)}</text>`);
  c.series.forEach((s, k) => {
    if (s.points.length === 0) return;
    const d = s.points.map(([px, py], i) => `${i ? 'L' : 'M'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="2"/>`);
  });
  return frame(c.title, c.yLabel, c.xLabel, yTicks, body, c.series.map((s) => s.name));
}
