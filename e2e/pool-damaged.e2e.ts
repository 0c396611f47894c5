// Damaged records and overwrites on the Adapters page, over the app's real
// IndexedDB: a pool manifest with `indicator: null`, an adapter record that is
// not an adapter, and a saved assistant with broken weights, written into
// storage as a bug or a broken disk would leave them, are listed as damaged
// with a delete button, and the page keeps working (before, the null
// indicator made the page throw on every load). Importing a pool file whose id
// is already stored asks first: declined, nothing changes; confirmed, it is
// replaced.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { ARTIFACTS_DIR, useBrowser } from './harness';

/** Writes raw values under keys of the app's pool store (idb-keyval: database crayon-pool, object store kv). */
async function corrupt(page: Page, records: [string, unknown][]) {
  await page.evaluate(async (records) => {
    const db: IDBDatabase = await new Promise((res, rej) => {
      const r = indexedDB.open('crayon-pool');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    await new Promise<void>((res, rej) => {
      const tx = db.transaction('kv', 'readwrite');
      for (const [k, v] of records) tx.objectStore('kv').put(v, k);
      tx.oncomplete = () => res();
      tx.onabort = () => rej(tx.error);
    });
    db.close();
  }, records);
}

async function adaptersPage(page: Page, url: string) {
  await page.goto(url);
  await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
  await page.getByRole('button', { name: 'Adapters' }).click();
  await expect.poll(() => page.getByTestId('pool-adapter').count(), { timeout: 15_000 }).toBeGreaterThan(0);
}

describe('the Adapters page with damaged storage', () => {
  const session = useBrowser();

  it('lists damaged records with a delete button and keeps working', async () => {
    const { page, url } = session();
    await adaptersPage(page, url('/'));
    await corrupt(page, [
      ['pool:broken', { id: 'broken', baseModel: 'device', embedder: null, adapters: [{ id: 'x', indicator: null }] }],
      ['adapter:reference-device-pool:cluster-3', { id: 'cluster-3', config: null, weights: 'not bytes' }],
      ['cz:bad', { id: 'bad', name: 'Bad', pool: 'reference-device-pool', weights: { 'cluster-0': 'NaN' } }],
    ]);
    await page.reload();
    await page.getByRole('button', { name: 'Adapters' }).click();
    await expect.poll(() => page.getByTestId('damaged-record').count(), { timeout: 15_000 }).toBe(2);
    expect(await page.getByTestId('damaged-records').textContent()).toMatch(/Pool broken: .*indicator is null.*Saved assistant bad: .*weights/s);
    expect(await page.getByTestId('damaged-adapter').textContent()).toMatch(/Damaged: .*adapter_config is not an object/);
    expect(await page.getByTestId('pool-adapter').count()).toBe(8); // the other seven are listed as before
    await page.screenshot({ path: `${ARTIFACTS_DIR}/adapters-damaged.png`, fullPage: true });

    await page.getByRole('button', { name: 'Delete damaged Pool broken' }).click();
    await page.getByRole('button', { name: 'Delete damaged Saved assistant bad' }).click();
    await page.getByRole('button', { name: 'Delete adapter cluster-3' }).click();
    await expect.poll(() => page.getByTestId('damaged-record').count()).toBe(0);
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(7);
    await page.reload();
    await page.getByRole('button', { name: 'Adapters' }).click();
    await expect.poll(() => page.getByTestId('pool-adapter').count(), { timeout: 15_000 }).toBe(7);
    expect(await page.getByTestId('damaged-records').count()).toBe(0);
  });

  it('asks before a pool file replaces a stored pool: declined, nothing changes; confirmed, it is replaced', async () => {
    const { page, url } = session();
    await adaptersPage(page, url('/'));
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(8);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export pool' }).click()]);
    const file = readFileSync((await download.path())!);
    await page.getByRole('button', { name: 'Delete adapter cluster-7' }).click();
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(7);

    const asked: string[] = [];
    let answer = false;
    page.on('dialog', (d) => {
      asked.push(d.message());
      void (answer ? d.accept() : d.dismiss());
    });
    const input = page.getByLabel(/Import a Crayon pool file/);
    await input.setInputFiles({ name: 'pool.crayonpool', mimeType: 'application/octet-stream', buffer: file });
    await expect.poll(() => page.getByTestId('import-error').textContent()).toMatch(/already on this device; it is replaced only if you confirm/);
    expect(asked).toEqual(['A pool "reference-device-pool" is already on this device. Replace it and all its adapters?']);
    expect(await page.getByTestId('pool-adapter').count()).toBe(7);

    answer = true;
    await input.setInputFiles([]);
    await input.setInputFiles({ name: 'pool.crayonpool', mimeType: 'application/octet-stream', buffer: file });
    await expect.poll(() => page.getByTestId('pool-notice').textContent()).toMatch(/Replaced pool "reference-device-pool" \(8 adapters\)/);
    expect(asked).toHaveLength(2);
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(8);
  });
});
