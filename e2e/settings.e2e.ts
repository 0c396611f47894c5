import { describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, useBrowser } from './harness';

describe('settings', () => {
  const session = useBrowser();

  it('keep the routing policy and server URL across a reload (IndexedDB), and reject a bad URL inline', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel(/This device only/).check();
    const serverUrl = page.getByLabel(/Server URL/);
    await serverUrl.fill('ftp://nope');
    await serverUrl.blur();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/http/);
    await serverUrl.fill('http://127.0.0.1:9999/v1');
    await serverUrl.blur();
    await page.screenshot({ path: `${ARTIFACTS_DIR}/settings.png`, fullPage: true });

    await page.reload();
    await page.getByRole('button', { name: 'Settings' }).click();
    await expect.poll(() => page.getByLabel(/This device only/).isChecked()).toBe(true);
    expect(await page.getByLabel(/Server URL/).inputValue()).toBe('http://127.0.0.1:9999/v1');
  });

  it('fit a 375 px wide screen without horizontal scrolling', async () => {
    const { page, url } = session();
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(url('/'));
    await page.getByRole('button', { name: 'Settings' }).click();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/settings-375.png`, fullPage: true });
  });
});
