// The routing plot: accuracy against the share of queries sent to the server
// for auto (the best accuracy at each share over a sweep of thresholds),
// random routing at the same shares, and the fixed policies; the calibrated
// default marked. Plain SVG text, so BENCHMARKS.md shows it without a library.

interface Point { serverShare: number; acc: number }
export interface PlotData {
  device_acc: number;
  server_acc: number;
  curve: (Point & { random: number })[];
  calibrated: Point;
}

export function routingSvg(d: PlotData, title: string): string {
  const W = 600, H = 400, L = 60, R = 20, T = 40, B = 50;
  const x = (v: number) => L + v * (W - L - R);
  const y = (v: number) => H - B - v * (H - T - B);
  const line = (pts: Point[]) => pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.serverShare).toFixed(1)},${y(p.acc).toFixed(1)}`).join(' ');
  const dot = (p: Point, color: string, label: string, dy = -8) =>
    `<circle cx="${x(p.serverShare).toFixed(1)}" cy="${y(p.acc).toFixed(1)}" r="5" fill="${color}"/>` +
    `<text x="${Math.min(x(p.serverShare) + 8, W - 150).toFixed(1)}" y="${(y(p.acc) + dy).toFixed(1)}" font-size="12" fill="${color}">${label} (${(p.acc * 100).toFixed(1)}%)</text>`;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const auto = [{ serverShare: 0, acc: d.device_acc }, ...d.curve, { serverShare: 1, acc: d.server_acc }];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="22" font-size="13" text-anchor="middle">${title}</text>
${ticks.map((t) => `<line x1="${x(t)}" y1="${y(0)}" x2="${x(t)}" y2="${y(1)}" stroke="#eee"/><text x="${x(t)}" y="${H - B + 18}" font-size="11" text-anchor="middle">${t * 100}%</text>`).join('\n')}
${ticks.map((t) => `<line x1="${x(0)}" y1="${y(t)}" x2="${x(1)}" y2="${y(t)}" stroke="#eee"/><text x="${L - 8}" y="${y(t) + 4}" font-size="11" text-anchor="end">${t * 100}%</text>`).join('\n')}
<line x1="${x(0.3)}" y1="${y(0)}" x2="${x(0.3)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 4"/>
<text x="${W / 2}" y="${H - 12}" font-size="12" text-anchor="middle">queries answered by the server</text>
<text x="16" y="${H / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">accuracy</text>
<path d="${line([{ serverShare: 0, acc: d.device_acc }, { serverShare: 1, acc: d.server_acc }])}" fill="none" stroke="#9ca3af" stroke-width="2" stroke-dasharray="6 4"/>
<text x="${x(0.55)}" y="${y(d.device_acc + 0.55 * (d.server_acc - d.device_acc)) + 18}" font-size="12" fill="#6b7280">random routing</text>
<path d="${line(auto)}" fill="none" stroke="#2563eb" stroke-width="2"/>
<text x="${x(0.05)}" y="${y(Math.max(...auto.map((p) => p.acc))) - 10}" font-size="12" fill="#2563eb">auto (best at each share)</text>
${dot({ serverShare: 0, acc: d.device_acc }, '#555', 'device only', 16)}
${dot({ serverShare: 1, acc: d.server_acc }, '#555', 'server only', 16)}
${dot(d.calibrated, '#dc2626', 'auto, calibrated default')}
</svg>
`;
}
