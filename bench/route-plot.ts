// The routing plot: hybrid accuracy against the share of queries sent to the
// server, as the confidence threshold sweeps (scope threshold fixed at its
// calibrated value), with the fixed policies and the calibrated default marked.
// Plain SVG text, so BENCHMARKS.md can show it without a plotting library.

interface Point { serverShare: number; acc: number }

export function routingSvg(curve: (Point & { confidence: number })[], s: { local_only: number; server_only: number; auto: Point; scope_only: Point }, title: string): string {
  const W = 560, H = 380, L = 60, R = 20, T = 40, B = 50;
  const x = (v: number) => L + v * (W - L - R);
  const y = (v: number) => H - B - v * (H - T - B);
  const pts = [...curve].sort((a, b) => a.serverShare - b.serverShare);
  const path = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.serverShare).toFixed(1)},${y(p.acc).toFixed(1)}`).join(' ');
  const dot = (p: Point, color: string, label: string, dy = -8) =>
    `<circle cx="${x(p.serverShare).toFixed(1)}" cy="${y(p.acc).toFixed(1)}" r="5" fill="${color}"/>` +
    `<text x="${(x(p.serverShare) + 8).toFixed(1)}" y="${(y(p.acc) + dy).toFixed(1)}" font-size="12" fill="${color}">${label} (${(p.acc * 100).toFixed(1)}%)</text>`;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="22" font-size="14" text-anchor="middle">${title}</text>
${ticks.map((t) => `<line x1="${x(t)}" y1="${y(0)}" x2="${x(t)}" y2="${y(1)}" stroke="#eee"/><text x="${x(t)}" y="${H - B + 18}" font-size="11" text-anchor="middle">${t * 100}%</text>`).join('\n')}
${ticks.map((t) => `<line x1="${x(0)}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" stroke="#eee"/><text x="${L - 8}" y="${y(t) + 4}" font-size="11" text-anchor="end">${t * 100}%</text>`).join('\n')}
<text x="${W / 2}" y="${H - 12}" font-size="12" text-anchor="middle">queries answered by the server</text>
<text x="16" y="${H / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">accuracy</text>
<path d="${path}" fill="none" stroke="#2563eb" stroke-width="2"/>
${dot({ serverShare: 0, acc: s.local_only }, '#555', 'device only')}
${dot({ serverShare: 1, acc: s.server_only }, '#555', 'server only', 16)}
${dot(s.scope_only, '#d97706', 'scope only', 16)}
${dot(s.auto, '#dc2626', 'auto, calibrated')}
</svg>
`;
}
