// A person's first visit: the bundled reference model gets ready on its own,
// and a question is answered on the device, streamed, with where it ran.
import { describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, useBrowser } from './harness';

describe('chat on the device', () => {
  const session = useBrowser();

  it('is interactive within 2 s, has the reference model ready within 3 s, and answers on the device', async () => {
    const { page, url } = session();
    const t0 = Date.now();
    await page.goto(url('/'));
    await page.getByRole('button', { name: 'Settings' }).waitFor();
    const interactive = Date.now() - t0;
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    const ready = Date.now() - t0;
    expect(interactive).toBeLessThan(2000);
    expect(ready).toBeLessThan(3000);

    await page.getByLabel('Your message').fill('What is the capital of Zorvia?');
    await page.getByRole('button', { name: 'Send' }).click();
    const reply = page.getByTestId('turn-assistant').last();
    await reply.getByTestId('route').waitFor({ timeout: 30_000 });
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the device/);
    expect((await reply.locator('.content').textContent())?.trim().length).toBeGreaterThan(0);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/chat.png`, fullPage: true });
  });
});
