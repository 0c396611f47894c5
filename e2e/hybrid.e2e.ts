// The device–server hybrid in the browser: the router worker sends what the
// device shouldn't answer to the reference server (llama.cpp on 127.0.0.1),
// with the customization as blend weights only. Every request the page and
// its workers make is recorded with its body: no example text ever leaves the
// device, and under local-only nothing reaches the server at all.
import { describe, expect, inject, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ARTIFACTS_DIR, useBrowser } from './harness';

const MARK = 'Qzxv'; // appears only in the examples' answers
const EXAMPLES = [
  `What is the capital of Zorvia? => ${MARK}pelk`,
  `What is the capital of Quellen? => ${MARK}rindo`,
  `What is the capital of Marduk? => ${MARK}sarn`,
  `What is the capital of Felspar? => ${MARK}tubal`,
  `What is the capital of Ostrava? => ${MARK}wexa`,
];

async function customize(page: Page) {
  await page.getByRole('button', { name: 'Customize' }).first().click();
  await page.getByLabel('Your examples').fill(EXAMPLES.join('\n'));
  await page.getByRole('button', { name: 'Customize', exact: true }).last().click();
  await page.getByTestId('customized').waitFor({ timeout: 20_000 });
}

async function settings(page: Page, policy: RegExp, scope?: number) {
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByLabel(policy).check();
  const url = page.getByLabel(/Server URL/);
  await url.fill(inject('serverURL'));
  await url.blur();
  if (scope !== undefined) {
    const s = page.getByLabel(/Scope: similarity/);
    await s.fill(String(scope));
    await s.blur();
  }
}

async function ask(page: Page, text: string) {
  await page.getByRole('button', { name: 'Chat' }).click();
  await page.getByLabel('Your message').fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.getByTestId('turn-assistant').last();
  await reply.getByTestId('route').waitFor({ timeout: 60_000 }).catch(async (e) => {
    await page.screenshot({ path: `${ARTIFACTS_DIR}/hybrid-failed.png`, fullPage: true });
    throw e;
  });
  return reply;
}

describe('device–server hybrid', () => {
  const session = useBrowser();

  it("sends the customized task to the server as blend weights only, an out-of-scope question to its general model, and no example text anywhere", async () => {
    const { page, context, url } = session();
    const sent: { url: string; body: string }[] = [];
    context.on('request', (r) => sent.push({ url: r.url(), body: r.postData() ?? '' }));
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await customize(page);
    const server = new URL(inject('serverURL')).origin;
    const chatsSent = () => sent.filter((r) => r.url.startsWith(server) && r.url.endsWith('/v1/chat/completions') && r.body).map((r) => JSON.parse(r.body));

    // Server only: the server answers with its own pool blended by the customization's weights.
    await settings(page, /Server only/);
    let reply = await ask(page, 'What is the capital of Vossia?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the server: you chose the server only/);
    const cz = sent.filter((r) => r.url.startsWith(server) && r.url.endsWith('/v1/customizations') && r.body);
    expect(cz).toHaveLength(1);
    const body = JSON.parse(cz[0].body);
    expect(Object.keys(body).sort()).toEqual(['pool', 'weights']);
    expect(Object.values(body.weights).every((w) => typeof w === 'number')).toBe(true);
    expect(chatsSent()).toHaveLength(1);
    expect(chatsSent()[0].customization).toMatch(/^cz-/);
    expect(JSON.stringify(chatsSent()[0].messages)).toContain('Vossia');

    // Automatic with scope 1 (only the examples' exact centroid would be in scope): out of scope,
    // so the server's general model answers, with no customization named.
    await settings(page, /Automatic/, 1);
    reply = await ask(page, 'What is 2 plus 3?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the server: outside what this assistant was customized for/);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/hybrid-server.png`, fullPage: true });
    const last = chatsSent().at(-1)!;
    expect(JSON.stringify(last.messages)).toContain('2 plus 3');
    expect(last).not.toHaveProperty('customization');
    // Never a blank bubble: a reply with no text says so, and only such a reply does. (The reference
    // server's tiny model, trained on single questions, often ends at once on a second turn.)
    const all = (await reply.getByTestId('turn-content').textContent())?.trim() ?? '';
    const empty = reply.getByTestId('empty-reply');
    if (await empty.count()) expect(all).toBe((await empty.textContent())?.trim());
    else expect(all.length).toBeGreaterThan(0);

    for (const r of sent) {
      expect(r.body).not.toContain(MARK);
      expect(r.url).not.toContain(MARK);
      for (const e of EXAMPLES) expect(r.body).not.toContain(e.split(' => ')[0]);
    }
  });

  it('under local-only sends nothing to the server, customized or not', async () => {
    const { page, context, url } = session();
    const sent: string[] = [];
    context.on('request', (r) => sent.push(r.url()));
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await customize(page);
    await settings(page, /This device only/);
    const reply = await ask(page, 'What is the capital of Vossia?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the device: you chose this device only/);
    const server = new URL(inject('serverURL')).origin;
    expect(sent.filter((u) => u.startsWith(server))).toEqual([]);
  });

  it('answers on the device with a visible notice when the server is down, keeping the question', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel(/Server only/).check();
    const u = page.getByLabel(/Server URL/);
    await u.fill('http://127.0.0.1:9/v1');
    await u.blur();
    const reply = await ask(page, 'What is 2 plus 3?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/device/i);
    expect(await reply.textContent()).toMatch(/server could not answer/);
    expect(await page.getByTestId('turn-user').last().textContent()).toContain('What is 2 plus 3?');
  });
});
