// The real model (SmolLM2-135M-Instruct, Q4_1 GGUF) in the app, end to end:
// offered on the first visit, downloaded through the catalog's own download
// code from a local copy of Hugging Face's URL layout (global-setup's
// realModelHost) and checked by sha256, used by default from then on, and
// holding a real conversation on the CPU backend: a known fact, a streamed
// reply, three turns on one topic, and Stop. Also "Open a model file" with the
// GGUF, a folder, and broken files. These tests fail, never skip, when the
// real model is missing: run `npm run real-model`.
import { describe, expect, inject, it } from 'vitest';
import { mkdtempSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REAL_MODEL } from '../src/lib/engine/testing/real-model';
import { ARTIFACTS_DIR, useBrowser, type Session } from './harness';
import { worldDir } from '../training/world-dir';

const NAME = REAL_MODEL.name;
const cached = (page: Page) => page.evaluate(async () => (await (await caches.open('crayon-models')).keys()).map((r) => r.url));

/** The local stand-in for https://huggingface.co; fails with the command that fetches the model when it is missing. */
function realModel(): { host: string; dir: string } {
  const problem = inject('realModelProblem');
  if (problem) throw new Error(problem);
  return { host: inject('realModelHost'), dir: inject('realModelDir') };
}

/** Opens the app with its catalog pointed at `host` (as only tests do), and waits for the model it starts with. */
async function openApp(s: Session, host: string): Promise<Page> {
  await s.context.addInitScript(`globalThis.crayonCatalogHost = ${JSON.stringify(host)};`);
  await s.page.goto(s.url('/'));
  await s.page.getByTestId('model-ready').waitFor({ timeout: 60_000 });
  return s.page;
}

/** Records every text the element matching `selector` shows, from now on (a MutationObserver in the page). */
async function watch(page: Page, key: string, selector: string): Promise<void> {
  await page.evaluate(
    ([key, selector]) => {
      const seen: string[] = [];
      (window as unknown as Record<string, string[]>)[key] = seen;
      const look = () => {
        const t = document.querySelector(selector)?.textContent ?? null;
        if (t !== null && seen.at(-1) !== t) seen.push(t);
      };
      new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true });
    },
    [key, selector] as const,
  );
}
const seen = (page: Page, key: string) => page.evaluate((k) => (window as unknown as Record<string, string[]>)[k], key);

/** Asks in Chat and waits for the whole answer; returns its text and the texts it showed while streaming. */
async function ask(page: Page, question: string, key: string): Promise<{ text: string; streamed: string[] }> {
  const turns = page.getByTestId('turn-assistant');
  const n = await turns.count();
  await watch(page, key, `[data-testid="turn-assistant"]:nth-of-type(${2 * n + 2}) [data-testid="turn-content"]`);
  await page.getByLabel('Your message').fill(question);
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = turns.nth(n);
  await reply.getByTestId('route').waitFor({ timeout: 150_000 });
  return { text: ((await reply.getByTestId('turn-content').textContent()) ?? '').trim(), streamed: await seen(page, key) };
}

describe('the real model in the app', () => {
  const session = useBrowser();

  it('is downloaded from its catalog URL on the Models page with progress, and answers, streams, stays on topic for three turns, and stops', async () => {
    const { host } = realModel();
    const s = session();
    const page = await openApp(s, host);
    expect(await page.getByTestId('model-ready').textContent()).toMatch(/The reference model is ready/);

    // This device only: the answers are the real model's own (no server in between).
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByRole('radio', { name: /This device only/ }).check();

    await page.getByRole('button', { name: 'Models' }).click();
    const row = page.locator(`[data-testid="model-row"][data-model="${REAL_MODEL.id}"]`);
    expect(await row.textContent()).toContain('about 98 MB');
    await watch(page, 'progress', `[data-model="${REAL_MODEL.id}"] [data-testid="download-progress"]`);
    await row.getByRole('button', { name: 'Download and use' }).click();
    await row.getByTestId('in-use').waitFor({ timeout: 180_000 });
    const progress = await seen(page, 'progress');
    expect(progress.some((t) => /MB of 98 MB \(([1-9]|[1-9]\d)%\)/.test(t)), progress.join(' | ')).toBe(true);
    const file = `${host}/${REAL_MODEL.hub.repo}/resolve/${REAL_MODEL.hub.revision}/${REAL_MODEL.gguf.file}`;
    expect(s.requests).toContain(file);
    expect((await cached(page)).sort()).toEqual([file, `${file}.crayon-complete`]);
    expect(await page.getByTestId('loaded-model').getAttribute('data-backend')).toBe('cpu');

    await page.getByRole('button', { name: 'Chat' }).click();
    expect(await page.getByTestId('model-ready').textContent()).toContain(`${NAME} is ready`);
    expect(await page.getByTestId('real-model-offer').count()).toBe(0); // stored: no longer offered

    const first = await ask(page, 'What is the capital of France?', 'turn1');
    expect(first.text).toMatch(/Paris/);
    // It streamed: the reply grew through several texts, each extending the one before, to the final one.
    const growing = first.streamed.filter((t) => t.trim().length > 0);
    expect(growing.length, growing.join(' | ')).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < growing.length; i++) expect(growing[i].length).toBeGreaterThanOrEqual(growing[i - 1].length);
    expect(growing[0].length).toBeLessThan(first.text.length / 2);

    // Three turns on one topic: "its" has to be resolved to France (or Paris) from the turns before.
    const second = await ask(page, 'What is its population roughly?', 'turn2');
    expect(second.text, second.text).toMatch(/million/i);
    const third = await ask(page, 'And its currency?', 'turn3');
    expect(third.text, third.text).toMatch(/euro/i);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/real-model-chat.png`, fullPage: true });

    // Stop mid-answer: the reply stops growing and the chat is ready for the next question.
    await page.getByRole('button', { name: 'New', exact: true }).click();
    await page.getByLabel('Your message').fill('Write a long story about a dragon who learns to paint.');
    await page.getByRole('button', { name: 'Send' }).click();
    const reply = page.getByTestId('turn-assistant').last().getByTestId('turn-content');
    await expect.poll(async () => ((await reply.textContent()) ?? '').length, { timeout: 90_000, interval: 200 }).toBeGreaterThan(40);
    await page.getByRole('button', { name: 'Stop' }).click();
    await reply.getByText('(stopped)').waitFor({ timeout: 10_000 });
    const stopped = await reply.textContent();
    await page.waitForTimeout(2000);
    expect(await reply.textContent()).toBe(stopped);
    await page.getByLabel('Your message').fill('Thanks!');
    expect(await page.getByRole('button', { name: 'Send' }).isEnabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Stop' }).count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/real-model-stopped.png`, fullPage: true });
  }, 900_000);

  it('is offered on the first visit with its size, one click downloads and runs it, and it is the default at start-up until another is chosen; a broken copy falls back to the reference model with a notice', async () => {
    const { host } = realModel();
    const page = await openApp(session(), host);
    const offer = page.getByTestId('real-model-offer');
    await offer.waitFor({ timeout: 10_000 });
    expect(await offer.textContent()).toContain(NAME);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/real-model-offer.png`, fullPage: true });
    await offer.getByRole('button', { name: 'Download and use (98 MB)' }).click();
    await expect.poll(() => page.getByTestId('model-ready').textContent(), { timeout: 180_000, interval: 500 }).toContain(`${NAME} is ready`);

    // Stored but never remembered as chosen (as when the tab closed while it loaded): still the default at start-up.
    await page.evaluate(
      () =>
        new Promise<void>((resolve, reject) => {
          const open = indexedDB.open('crayon-model-choice');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const tx = open.result.transaction('kv', 'readwrite');
            tx.objectStore('kv').clear();
            tx.oncomplete = () => (open.result.close(), resolve());
            tx.onerror = () => reject(tx.error);
          };
        }),
    );
    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('model-ready').textContent()).toContain(`${NAME} is ready`); // the default now, no click
    expect(await offer.count()).toBe(0);

    // The reference model chosen: remembered over the stored real model.
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByTestId('model-row').first().getByRole('button', { name: 'Use' }).click();
    await page.getByTestId('model-row').first().getByTestId('in-use').waitFor({ timeout: 20_000 });
    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('model-ready').textContent()).toMatch(/The reference model is ready/);

    // The real model chosen again, then its stored copy broken: the next start falls back, and says so.
    await page.getByRole('button', { name: 'Models' }).click();
    await page.locator(`[data-model="${REAL_MODEL.id}"]`).getByRole('button', { name: 'Use' }).click();
    await page.locator(`[data-model="${REAL_MODEL.id}"]`).getByTestId('in-use').waitFor({ timeout: 120_000 });
    await page.evaluate(async (file) => {
      const cache = await caches.open('crayon-models');
      const url = (await cache.keys()).map((r) => r.url).find((u) => u.endsWith(file))!;
      const bytes = new Uint8Array(await (await cache.match(url))!.arrayBuffer());
      await cache.put(url, new Response(bytes.slice(0, 1 << 20)));
    }, REAL_MODEL.gguf.file);
    await page.reload();
    await page.getByTestId('model-fallback').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('model-fallback').textContent()).toMatch(new RegExp(`${NAME.replace(/[()]/g, '\\$&')} could not load \\(.+\\), so the reference model is in use`));
    await page.getByTestId('model-ready').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('model-ready').textContent()).toMatch(/The reference model is ready/);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/real-model-fallback.png`, fullPage: true });
  }, 600_000);

  it('keeps nothing of a download whose sha256 is not the pinned one, and says so', async () => {
    const { host } = realModel();
    const page = await openApp(session(), `${host}/corrupt`); // the same files with one byte flipped
    const offer = page.getByTestId('real-model-offer');
    await offer.getByRole('button', { name: /Download and use/ }).click();
    await offer.getByRole('alert').waitFor({ timeout: 180_000 });
    expect(await offer.getByRole('alert').textContent()).toMatch(new RegExp(`${REAL_MODEL.gguf.file.replace(/\./g, '\\.')} is not the pinned file \\(sha256 .+\\); nothing of it was kept`));
    expect(await cached(page)).toEqual([]);
    expect(await page.getByTestId('model-ready').textContent()).toMatch(/The reference model is ready/);
  }, 300_000);

  it('opens a GGUF file, a folder, and reports a truncated file and a file that is not a GGUF with typed errors', async () => {
    const { dir, host } = realModel();
    const page = await openApp(session(), host);
    await page.getByRole('button', { name: 'Models' }).click();
    const opener = page.getByTestId('open-model-file');

    await opener.setInputFiles(join(dir, REAL_MODEL.gguf.file));
    const loaded = page.getByTestId('loaded-model');
    await expect.poll(() => page.getByTestId('loaded-name').textContent(), { timeout: 120_000, interval: 500 }).toBe(REAL_MODEL.gguf.file.replace(/\.gguf$/, ''));
    expect(await page.getByTestId('loaded-params').textContent()).toBe('134.5M parameters');
    const megabytes = async (id: string) => Number(/([\d.]+) MB/.exec((await page.getByTestId(id).textContent()) ?? '')?.[1]);
    const inFile = await megabytes('loaded-file-bytes');
    const inMemory = await megabytes('loaded-memory-bytes');
    expect(inFile).toBeGreaterThan(80); // Q4_1: about 5 bits a weight
    expect(inFile).toBeLessThanOrEqual(REAL_MODEL.gguf.bytes / 1e6);
    expect(inMemory).toBeGreaterThan(500); // widened to f32 on load: 4 bytes a weight
    expect(inMemory).toBeLessThan(560);
    expect(await loaded.getAttribute('data-backend')).toBe('cpu');
    await page.screenshot({ path: `${ARTIFACTS_DIR}/real-model-opened.png`, fullPage: true });

    // Broken files: a typed error, and the model in use stays in use.
    const tmp = mkdtempSync(join(tmpdir(), 'crayon-open-'));
    const head = Buffer.alloc(1 << 20);
    const fd = openSync(join(dir, REAL_MODEL.gguf.file), 'r');
    readSync(fd, head, 0, head.byteLength, 0);
    closeSync(fd);
    writeFileSync(join(tmp, 'cut-short.gguf'), head);
    writeFileSync(join(tmp, 'notes.gguf'), 'These are my notes, not a model.\n'.repeat(40));
    for (const [file, code] of [['cut-short.gguf', 'truncated'], ['notes.gguf', 'bad-format']] as const) {
      await opener.setInputFiles(join(tmp, file));
      const error = page.getByTestId('open-model-error');
      await error.waitFor({ timeout: 30_000 });
      expect(await error.getAttribute('data-code'), (await error.textContent()) ?? '').toBe(code);
      expect(await error.textContent()).toMatch(/^Could not open it: .{10,}/);
      expect(await page.getByTestId('loaded-name').textContent()).toBe(REAL_MODEL.gguf.file.replace(/\.gguf$/, ''));
      await page.getByRole('button', { name: 'Chat' }).click();
      expect(await page.getByTestId('model-ready').textContent()).toContain(`${REAL_MODEL.gguf.file.replace(/\.gguf$/, '')} is ready`);
      await page.getByRole('button', { name: 'Models' }).click();
    }
    await page.screenshot({ path: `${ARTIFACTS_DIR}/real-model-open-error.png`, fullPage: true });

    // A Hugging Face folder (the reference model's own files) through the folder picker.
    await page.getByTestId('open-model-folder').setInputFiles(join(worldDir(), 'device'));
    await expect.poll(() => page.getByTestId('loaded-name').textContent(), { timeout: 60_000, interval: 500 }).toBe('device');
    expect(await page.getByTestId('open-model-error').count()).toBe(0);
  }, 600_000);
});
