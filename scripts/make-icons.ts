// Renders the app's PNG icons (192 and 512 px) from the same shapes as
// public/icons/icon.svg, with no image library: a crayon on a dark tile.
// Run once when the icon changes: npx tsx scripts/make-icons.ts
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** Point-in-convex-polygon test, coordinates in the SVG's 64-unit box. */
function inside(x: number, y: number, poly: [number, number][]): boolean {
  let sign = 0;
  for (let i = 0; i < poly.length; i++) {
    const [x1, y1] = poly[i];
    const [x2, y2] = poly[(i + 1) % poly.length];
    const s = Math.sign((x2 - x1) * (y - y1) - (y2 - y1) * (x - x1));
    if (s !== 0) {
      if (sign === 0) sign = s;
      else if (s !== sign) return false;
    }
  }
  return true;
}

function render(size: number): Buffer {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  const body: [number, number][] = [[18, 46], [40, 14], [48, 20], [26, 52]];
  const tip: [number, number][] = [[18, 46], [26, 52], [16, 54]];
  for (let py = 0; py < size; py++) {
    raw[py * (size * 4 + 1)] = 0; // filter: none
    for (let px = 0; px < size; px++) {
      const x = ((px + 0.5) / size) * 64;
      const y = ((py + 0.5) / size) * 64;
      let rgba = [0x1f, 0x29, 0x37, 255];
      if (inside(x, y, body)) rgba = [0xf5, 0x9e, 0x0b, 255];
      else if (inside(x, y, tip)) rgba = [0xfd, 0xe6, 0x8a, 255];
      raw.set(rgba, py * (size * 4 + 1) + 1 + px * 4);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array())]);
}

for (const size of [192, 512]) writeFileSync(`public/icons/icon-${size}.png`, render(size));
