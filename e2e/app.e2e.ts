// What a person does in the app beyond one question: manage the adapter pool
// (import from files and from a URL, errors inline, export, delete), save a
// customized assistant after previewing it, pick it in the chat, and find the
// conversation again after a reload; regenerate and clear. Screenshots of
// every page at desktop width and at 375 px land in e2e/artifacts/.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { worldDir } from '../training/world-dir';
import { ARTIFACTS_DIR, useBrowser } from './harness';

const world = worldDir();
const adapterFile = (name: string, bytes?: Buffer) => ({ name, mimeType: 'application/octet-stream', buffer: bytes ?? readFileSync(`${world}/device-pool/cluster-2/${name}`) });

describe('the app', () => {
  const session = useBrowser();

  it('lists the pool, imports adapters from files and a URL with inline errors, exports and deletes', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Adapters' }).click();
    await expect.poll(() => page.getByTestId('pool-adapter').count(), { timeout: 15_000 }).toBe(8);
    expect(await page.getByTestId('pool-adapter').first().textContent()).toMatch(/8 \(α 16\).*q_proj/s);
    await page.getByTestId('storage-meter').waitFor();

    // A truncated safetensors file: a clear error beside the form, nothing added.
    const weights = readFileSync(`${world}/device-pool/cluster-2/adapter_model.safetensors`);
    await page.getByLabel(/^Files/).setInputFiles([adapterFile('adapter_config.json'), adapterFile('adapter_model.safetensors', weights.subarray(0, 4000))]);
    await expect.poll(() => page.getByTestId('import-error').textContent()).toMatch(/adapter_model\.safetensors|ends|truncated|short/i);
    expect(await page.getByTestId('pool-adapter').count()).toBe(8);

    // The same adapter whole, with examples of what it does: listed with an indicator.
    await page.getByLabel(/A few examples of what it does/).fill('What is 3 plus 4? => 7\nWhat is 2 plus 2? => 4');
    await page.getByLabel(/^Files/).setInputFiles([adapterFile('adapter_config.json'), adapterFile('adapter_model.safetensors')]);
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(9);
    expect(await page.getByTestId('pool-notice').textContent()).toMatch(/Imported adapter "adapter_model"/);

    // From a URL on 127.0.0.1 (the app's own copy of the bundled pool), without examples: kept, not matched.
    await page.getByLabel(/From a URL/).fill(url('/world/device-pool/cluster-5/'));
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(10);
    expect(await page.getByTestId('pool-adapter').last().textContent()).toMatch(/no indicator/);
    // A URL with no adapter there: a typed, readable error.
    await page.getByLabel(/From a URL/).fill(url('/nothing-here/'));
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    await expect.poll(() => page.getByTestId('import-error').textContent()).toMatch(/No adapter_config\.json/);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/adapters.png`, fullPage: true });

    // Export the pool as one file: it holds all ten adapters.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export pool' }).click()]);
    const bytes = readFileSync((await download.path())!);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect(JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')).adapters).toHaveLength(10);

    // Delete one; it stays deleted after a reload (IndexedDB).
    await page.getByRole('button', { name: 'Delete adapter adapter_model' }).click();
    await expect.poll(() => page.getByTestId('pool-adapter').count()).toBe(9);
    await page.reload();
    await page.getByRole('button', { name: 'Adapters' }).click();
    await expect.poll(() => page.getByTestId('pool-adapter').count(), { timeout: 15_000 }).toBe(9);
  });

  it('saves a previewed assistant, answers with it, and keeps the conversation across a reload', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel(/This device only/).check();
    await page.getByRole('button', { name: 'Customize' }).first().click();
    await page.getByLabel('Your examples').fill(['What is the capital of Zorvia? => Pelk', 'What is the capital of Quellen? => Rindo', 'What is the capital of Marduk? => Sarn'].join('\n'));
    await page.getByRole('button', { name: 'Customize', exact: true }).last().click();
    await page.getByTestId('customized').waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Preview on my examples' }).click();
    await expect.poll(() => page.getByTestId('preview-row').count(), { timeout: 30_000 }).toBe(3);
    expect(await page.getByTestId('preview-row').first().textContent()).toMatch(/score -?\d+\.\d\d.*score -?\d+\.\d\d/s);
    await page.getByLabel(/Save as an assistant named/).fill('Capitals');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByTestId('saved').waitFor();
    await page.screenshot({ path: `${ARTIFACTS_DIR}/customize-preview.png`, fullPage: true });

    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    const picker = page.getByTestId('assistant-picker');
    await expect.poll(() => picker.locator('option').allTextContents()).toContain('Capitals');
    await picker.selectOption({ label: 'Capitals' });
    await page.getByLabel('Your message').fill('What is the capital of Felspar?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('turn-assistant').last().getByTestId('route').waitFor({ timeout: 30_000 });
    const first = await page.getByTestId('turn-assistant').last().textContent();

    // Regenerate replaces the last answer (one assistant turn remains), then the conversation survives a reload.
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Send' }).count(), { timeout: 30_000 }).toBe(1);
    await page.getByTestId('turn-assistant').last().getByTestId('route').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('turn-assistant').count()).toBe(1);
    expect(first).toBeTruthy();
    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.getByTestId('turn-user').count()).toBe(1);
    expect(await page.getByTestId('turn-user').textContent()).toContain('Felspar');
    expect(await page.getByTestId('conversation-picker').locator('option').allTextContents()).toContain('What is the capital of Felspar?');
    await page.screenshot({ path: `${ARTIFACTS_DIR}/chat-assistant.png`, fullPage: true });
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(() => page.getByTestId('conversation-picker').locator('option').allTextContents()).not.toContain('What is the capital of Felspar?');
    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('turn-user').count()).toBe(0);
  });

  it('renders Markdown replies as elements and never as markup', async () => {
    const page = await session().libPage();
    const html = await page.evaluate(async () => {
      const { mountMarkdown } = await load('/e2e/mount-markdown.ts');
      const target = document.createElement('div');
      document.body.append(target);
      mountMarkdown(target, '**bold** and `code`\n\n- one\n- two\n\n<img src=x onerror="window.hacked=1"> [ok](https://example.org)');
      await new Promise((r) => setTimeout(r, 50));
      return {
        strong: target.querySelector('strong')?.textContent,
        items: [...target.querySelectorAll('li')].map((li) => li.textContent),
        href: target.querySelector('a')?.getAttribute('href'),
        rel: target.querySelector('a')?.getAttribute('rel'),
        text: target.textContent,
        imgs: target.querySelectorAll('img').length,
        hacked: (window as unknown as { hacked?: number }).hacked ?? 0,
      };
    });
    expect(html.strong).toBe('bold');
    expect(html.items).toEqual(['one', 'two']);
    expect(html.href).toBe('https://example.org');
    expect(html.rel).toContain('noopener');
    expect(html.text).toContain('<img src=x'); // shown as text
    expect(html.imgs).toBe(0);
    expect(html.hacked).toBe(0);
  });

  it('shows every page at desktop width and at 375 px without horizontal scrolling', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 800 });
      for (const name of ['Chat', 'Customize', 'Adapters', 'Models', 'Settings']) {
        await page.getByRole('button', { name, exact: true }).first().click();
        await page.waitForTimeout(200);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `${name} at ${width}px`).toBeLessThanOrEqual(0);
        await page.screenshot({ path: `${ARTIFACTS_DIR}/page-${name.toLowerCase()}-${width}.png`, fullPage: true });
      }
    }
  });
});
