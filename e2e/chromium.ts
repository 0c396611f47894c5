// The one place that knows how to start a browser for tests and benchmarks:
// Debian's chromium (or CHROME_PATH), headless, WebGPU on (SwiftShader here),
// and every background connection of Chromium's own switched off.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--no-first-run',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const CHROMIUM_INSTALL_HINT = 'Install it with: sudo apt-get update && sudo apt-get install -y chromium (or set CHROME_PATH to a Chromium/Chrome binary).';

/** Path of the browser to drive, or a thrown Error naming the install command. */
export function chromiumPath(): string {
  const path = process.env.CHROME_PATH || '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`No Chromium at ${path}. ${CHROMIUM_INSTALL_HINT}`);
  }
  return path;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    // Playwright adds its own --headless; ours stay explicit so the flag list
    // above is the whole truth about how the browser runs.
    args: CHROMIUM_FLAGS,
    ignoreDefaultArgs: ['--disable-gpu'],
  });
}
