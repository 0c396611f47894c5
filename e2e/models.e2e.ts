// Downloading a checkpoint into the browser, end to end, against a copy of the
// reference device model served on 127.0.0.1 (the real catalog is on Hugging
// Face, which tests can't reach): progress in bytes and %, cancel, a dropped
// connection, a tab reloaded mid-download, and a complete download that the
// engine then runs; none of the failures leaves a file behind.
import { describe, expect, inject, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ARTIFACTS_DIR, useBrowser } from './harness';

const cached = (page: Page, prefix: string) =>
  page.evaluate(async (p) => (await (await caches.open('crayon-models')).keys()).map((r) => r.url).filter((u) => u.startsWith(p)), prefix);

/** Opens the app, waits for the bundled model, and goes to the Models page. */
async function openModels(page: Page, appUrl: string) {
  await page.goto(appUrl);
  await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
  await page.getByRole('button', { name: 'Models' }).click();
}

async function add(page: Page, base: string) {
  await page.getByLabel(/Another checkpoint/).fill(base);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  return page.locator(`[data-testid="model-row"]`).filter({ hasText: base });
}

describe('models', () => {
  const session = useBrowser();

  it('cancels a download, survives a dropped connection, and keeps nothing of either', async () => {
    const { page, url } = session();
    const host = inject('modelsURL');
    await openModels(page, url('/'));
    expect(await page.getByTestId('model-row').count()).toBe(5); // bundled + the real model + 3 catalog checkpoints

    const slow = await add(page, `${host}/slow/`);
    await slow.getByRole('button', { name: 'Download' }).click();
    await expect.poll(() => slow.getByTestId('download-progress').textContent(), { timeout: 10_000 }).toMatch(/MB of [\d.]+ MB \([1-9]\d?%\)/);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/models-downloading.png`, fullPage: true });
    await slow.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => slow.getByTestId('model-error').textContent()).toMatch(/cancelled; nothing of it was kept/);
    expect(await cached(page, `${host}/slow/`)).toEqual([]);

    const cut = await add(page, `${host}/cut/`);
    await cut.getByRole('button', { name: 'Download' }).click();
    await expect.poll(() => cut.getByTestId('model-error').textContent(), { timeout: 15_000 }).toMatch(/interrupted|incomplete/);
    expect(await cached(page, `${host}/cut/`)).toEqual([]);
    await expect.poll(() => cut.getByRole('button', { name: 'Download' }).count()).toBe(1); // can be tried again
  });

  it('sweeps the files of a download cut short by a reload, but not those of one running in another tab', async () => {
    const { page, url } = session();
    const host = inject('modelsURL');
    await openModels(page, url('/'));
    const slow = await add(page, `${host}/slow/`);
    await slow.getByRole('button', { name: 'Download' }).click();
    await expect.poll(() => cached(page, `${host}/slow/`), { timeout: 10_000 }).not.toEqual([]); // config and tokenizer are in

    // A second tab of the app starts up and sweeps: the download running in the first holds its lock, so it keeps its files.
    const other = await session().context.newPage();
    await openModels(other, url('/'));
    await other.locator('[data-testid="models"][data-ready="true"]').waitFor({ timeout: 10_000 });
    expect(await other.getByRole('status').filter({ hasText: /Removed \d+ file/ }).count()).toBe(0);
    expect(await cached(other, `${host}/slow/`)).not.toEqual([]);
    await other.close();

    await page.reload();
    await page.getByRole('button', { name: 'Models' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: /Removed \d+ file/ }).count(), { timeout: 10_000 }).toBe(1);
    expect(await cached(page, `${host}/slow/`)).toEqual([]);
  });

  it('downloads a checkpoint, runs it, answers with it offline-ready, and deletes it', async () => {
    const { page, url } = session();
    const host = inject('modelsURL');
    await openModels(page, url('/'));
    const row = await add(page, `${host}/m/`);
    await row.getByRole('button', { name: 'Download' }).click();
    await row.getByRole('button', { name: 'Use' }).waitFor({ timeout: 30_000 });
    const files = await cached(page, `${host}/m/`);
    expect(files.map((u) => u.slice(`${host}/m/`.length)).sort()).toEqual(['.crayon-complete', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    await row.getByRole('button', { name: 'Use' }).click();
    await row.getByTestId('in-use').waitFor({ timeout: 20_000 });

    await page.getByRole('button', { name: 'Chat' }).click();
    expect(await page.getByTestId('model-ready').textContent()).toContain(`${host}/m/`);
    await page.getByLabel('Your message').fill('What is the capital of Zorvia?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('turn-assistant').last().getByTestId('route').waitFor({ timeout: 30_000 });

    await page.getByRole('button', { name: 'Models' }).click();
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.getByRole('button', { name: 'Download' }).waitFor({ timeout: 20_000 });
    expect(await cached(page, `${host}/m/`)).toEqual([]);
    await page.getByTestId('in-use').first().waitFor(); // back on the bundled model
  });
});
