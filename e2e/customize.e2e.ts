// Customizing from five examples on the device: similarities and weights for
// every base adapter, the blend set on the engine, and a chat answered with
// its scope recorded — and no example text in any request.
import { describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, useBrowser } from './harness';

const EXAMPLES = [
  'What is the capital of Zorvia? => Pelk',
  'What is the capital of Quellen? => Rindo',
  'What is the capital of Marduk? => Sarn',
  'What is the capital of Felspar? => Tubal',
  'What is the capital of Ostrava? => Wexa',
];

describe('customize', () => {
  const session = useBrowser();

  it('blends the pool from five examples on the device, and no example leaves it', async () => {
    const { page, url, requests } = session();
    const bodies: string[] = [];
    page.on('request', (r) => bodies.push(`${r.url()} ${r.postData() ?? ''}`));
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Customize' }).first().click();
    await page.getByLabel('Your examples').fill(EXAMPLES.join('\n'));
    await page.getByRole('button', { name: 'Customize', exact: true }).last().click();
    await page.getByTestId('customized').waitFor({ timeout: 20_000 }).catch(async (e) => {
      await page.screenshot({ path: `${ARTIFACTS_DIR}/customize-failed.png`, fullPage: true });
      throw e;
    });
    const rows = await page.getByTestId('adapter-row').count();
    expect(rows).toBeGreaterThanOrEqual(2);
    // The chart follows the examples as they change.
    const before = await page.getByTestId('adapter-row').allTextContents();
    await page.getByLabel('Your examples').fill([...EXAMPLES, 'Is the day good or bad? => good', 'Is the song good or bad? => bad'].join('\n'));
    await expect.poll(() => page.getByTestId('adapter-row').allTextContents(), { timeout: 10_000 }).not.toEqual(before);
    // Uploading a CSV fills the examples (as JSONL); a malformed one shows its error.
    const csv = 'input,output\n' + EXAMPLES.map((e) => e.split(' => ').map((c) => `"${c}"`).join(',')).join('\n');
    await page.getByLabel(/Or upload them/).setInputFiles({ name: 'examples.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await expect.poll(() => page.getByLabel('Your examples').inputValue()).toContain('{"input":"What is the capital of Zorvia?","output":"Pelk"}');
    await page.getByLabel(/Or upload them/).setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2') });
    await expect.poll(() => page.getByRole('alert').allTextContents()).toContainEqual(expect.stringMatching(/header row/));
    await page.screenshot({ path: `${ARTIFACTS_DIR}/customize.png`, fullPage: true });

    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel(/This device only/).check();
    await page.getByRole('button', { name: 'Chat' }).click();
    await page.getByLabel('Your message').fill('What is the capital of Vossia?');
    await page.getByRole('button', { name: 'Send' }).click();
    const route = page.getByTestId('turn-assistant').last().getByTestId('route');
    await route.waitFor({ timeout: 30_000 });
    expect(await route.textContent()).toMatch(/Ran on the device: you chose this device only/);
    for (const b of bodies) for (const e of EXAMPLES) expect(b).not.toContain(e.split(' => ')[0]);
    expect(requests.every((r) => !r.includes(':8787'))).toBe(true); // local-only: nothing went to the server
  });
});
