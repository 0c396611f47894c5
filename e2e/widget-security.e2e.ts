// The embeddable widget (issue 19) refusing what it must: a host the bundle
// doesn't allow gets no answer and no content (and is counted), a site the
// app's server doesn't declare can't frame it at all (frame-ancestors), and a
// malformed bundle, an unknown model and oversized messages each get their
// typed error. The stage (app, host sites, helpers) is in widget-sites.ts.
import type { Frame } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { useBrowser } from './harness';
import { A, appOrigin, B, bundle, C, hostPage, launcher, otherSite, received, snippetOf, useWidgetSites, widgetFrame, worldRequests } from './widget-sites';

useWidgetSites();

describe('the embeddable widget refuses', () => {
  const session = useBrowser();

  it("gives a host the bundle doesn't allow no answer and no content, and counts what it sent", async () => {
    const { page, context } = session();
    // B is declared to the app's server (so the browser frames it), and its snippet was edited to name B;
    // the bundle allows only A.
    B.pages.set('/copy.html', hostPage(snippetOf(JSON.stringify(bundle([A.origin])), [A.origin, B.origin])));
    const seen: string[] = [];
    context.on('request', (r) => seen.push(r.url()));
    await page.goto(`${B.origin}/copy.html`);
    await launcher(page).click();
    const frame = widgetFrame(page);
    await frame.getByTestId('widget').waitFor({ state: 'attached' });
    await page.evaluate(() => {
      void (window as any).crayonWidget.ask('What is the capital of Zorvia?');
      const iframe = document.querySelector('[data-crayon-widget]')!.shadowRoot!.querySelector('iframe')!;
      iframe.contentWindow!.postMessage({ protocol: 'crayon-widget', version: 1, type: 'ask', id: 'direct', question: 'Anyone there?' }, '*');
    });
    // setTheme, open, ask from the loader and the direct ask: all four turned away.
    await expect.poll(() => frame.getByTestId('widget').getAttribute('data-rejected'), { timeout: 10_000 }).toBe('4');
    await page.waitForTimeout(1000);
    expect(await received(page)).toEqual([]);
    expect((await frame.getByTestId('widget').innerText()).trim()).toBe('');
    expect(worldRequests(seen)).toEqual([]);
  });

  it('has the loader take widget messages only from its own iframe at the app origin: a forged answer is ignored', async () => {
    const { page } = session();
    A.pages.set('/forged.html', hostPage(snippetOf(JSON.stringify(bundle([A.origin])), [A.origin])));
    await page.goto(`${A.origin}/forged.html`);
    const answer = await page.evaluate(async () => {
      const w = window as any;
      const asked = w.crayonWidget.ask('What is the capital of Zorvia?');
      // Another script on the page (or another frame) posts what looks like the widget's answer to ask-1.
      const forged = { protocol: 'crayon-widget', version: 1, type: 'answer', id: 'ask-1', done: true, text: 'FORGED', route: { where: 'server', reason: 'forged' } };
      window.postMessage(forged, '*');
      const other = document.createElement('iframe');
      other.srcdoc = `<script>parent.postMessage(${JSON.stringify(forged)}, '*')</scr` + 'ipt>';
      document.body.append(other);
      return asked;
    });
    expect(answer.text).not.toBe('FORGED');
    expect(answer.route).toEqual({ where: 'device', reason: 'this assistant runs on this device only' });
  });

  it("is not framed at all on a site the app's server doesn't declare (frame-ancestors)", async () => {
    const { page } = session();
    C.pages.set('/page.html', hostPage(snippetOf(JSON.stringify(bundle([C.origin])), [C.origin])));
    const embed = page.waitForResponse((r) => r.url().startsWith(`${appOrigin}/embed.html`));
    await page.goto(`${C.origin}/page.html`);
    await launcher(page).click();
    const res = await embed;
    expect(res.headers()['content-security-policy']).toBe(`frame-ancestors 'self' ${A.origin} ${B.origin} ${otherSite(A)}`);
    void page.evaluate(() => (window as any).crayonWidget.ask('What is the capital of Zorvia?')).catch(() => {}); // never answered
    await page.waitForTimeout(2000);
    expect(await received(page)).toEqual([]);
    const widgets = await Promise.all(page.frames().map((f: Frame) => f.locator('[data-testid="widget"]').count().catch(() => 0)));
    expect(widgets.every((n) => n === 0)).toBe(true);
  });

  it('shows a malformed bundle, an unknown model and an oversized message each as its own error', async () => {
    const { page } = session();
    // Malformed JSON: the widget says so; it can't know whom to tell, so the host hears nothing.
    A.pages.set('/bad.html', hostPage(snippetOf('{"format": "crayon-assistant", "version": 1,', [A.origin])));
    await page.goto(`${A.origin}/bad.html`);
    await launcher(page).click();
    let error = widgetFrame(page).getByTestId('widget-error');
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('bad-format');
    expect(await error.textContent()).toMatch(/can't start: The assistant bundle is not valid JSON/);
    await page.waitForTimeout(500);
    expect(await received(page)).toEqual([]);

    // An unknown model, from a bundle the owner hosts: shown in the widget, and told to the host it allows.
    A.pages.set('/unknown.json', JSON.stringify({ ...bundle([A.origin]), model: { id: 'gpt-9', url: 'http://127.0.0.1:9/gpt-9/' } }));
    A.pages.set('/unknown.html', hostPage(snippetOf(`${A.origin}/unknown.json`, [A.origin])));
    await page.goto(`${A.origin}/unknown.html`);
    await launcher(page).click();
    error = widgetFrame(page).getByTestId('widget-error');
    await error.waitFor();
    expect(await error.getAttribute('data-code')).toBe('unknown-model');
    expect(await error.textContent()).toMatch(/doesn't know the model "gpt-9"/);
    const asked = await page.evaluate(() => (window as any).crayonWidget.ask('Hello?').then(() => 'answered', (e: { code: string }) => e.code));
    expect(asked).toBe('unknown-model');
    expect((await received(page)).map((m) => m.data)).toContainEqual(expect.objectContaining({ type: 'error', id: null, code: 'unknown-model' }));

    // Oversized messages from an allowed host: each answered with too-large, nothing else happens.
    A.pages.set('/ok.json', JSON.stringify(bundle([A.origin])));
    A.pages.set('/ok.html', hostPage(snippetOf(`${A.origin}/ok.json`, [A.origin])));
    await page.goto(`${A.origin}/ok.html`);
    const tooLong = await page.evaluate(() => (window as any).crayonWidget.ask('x'.repeat(5000)).then(() => 'answered', (e: { code: string; message: string }) => `${e.code}: ${e.message}`));
    expect(tooLong).toMatch(/^too-large: The question is 5000 characters long; the widget takes at most 2000/);
    await page.evaluate(() => {
      const iframe = document.querySelector('[data-crayon-widget]')!.shadowRoot!.querySelector('iframe')!;
      iframe.contentWindow!.postMessage({ protocol: 'crayon-widget', version: 1, type: 'setTheme', theme: 'dark', padding: 'x'.repeat(20_000) }, new URL(iframe.src).origin);
    });
    await expect.poll(async () => (await received(page)).filter((m) => m.data.type === 'error').map((m) => [m.data.id, m.data.code])).toEqual([['ask-1', 'too-large'], [null, 'too-large']]);
    expect(await widgetFrame(page).getByTestId('widget').getAttribute('data-theme')).toBe('light'); // the oversized setTheme did nothing
    await page.evaluate(() => (window as any).crayonWidget.setTheme('dark'));
    await expect.poll(() => widgetFrame(page).getByTestId('widget').getAttribute('data-theme')).toBe('dark');
  });
});
