// What leaves the device, in the app against the reference server: a turn
// asked under "This device only" never leaves, not as the question, not as an
// earlier turn of the conversation (also after a reload, from IndexedDB), not
// in a URL or a header; earlier turns go only when the user allows them; the
// API key goes only to the server; and each escalated answer lists exactly the
// turns that were sent. Removing host.ts's local-only guard (`outbound`) makes
// this test fail.
import { describe, expect, inject, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import { ARTIFACTS_DIR, useBrowser } from './harness';

const SECRET = '4921-7788-0012';
const KEY = 'privacy-test-key';

interface Seen { url: string; body: string; headers: Record<string, string> }

async function settings(page: Page, change: (p: Page) => Promise<void>) {
  await page.getByRole('button', { name: 'Settings' }).click();
  await change(page);
}

async function ask(page: Page, text: string) {
  await page.getByRole('button', { name: 'Chat' }).click();
  const before = await page.getByTestId('turn-assistant').count();
  await page.getByLabel('Your message').fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
  const reply = page.getByTestId('turn-assistant').nth(before);
  await reply.getByTestId('route').waitFor({ timeout: 60_000 });
  return reply;
}

/** The disclosure under an answer, as [role, content] pairs. */
async function disclosed(reply: ReturnType<Page['getByTestId']>): Promise<string[]> {
  await reply.getByTestId('sent-to-server').locator('summary').click();
  return (await reply.getByTestId('sent-message').allTextContents()).map((t) => t.replace(/^(You|Assistant|System): /, (_m, who) => `${who === 'You' ? 'user' : who === 'Assistant' ? 'assistant' : 'system'}: `).trim());
}

describe('what leaves the device', () => {
  const session = useBrowser();

  it('never sends a turn asked under "This device only", sends earlier turns only when allowed, and shows exactly what was sent', async () => {
    const { page, context, url } = session();
    const server = new URL(inject('serverURL')).origin;
    const seen: Seen[] = [];
    const pending: Promise<void>[] = [];
    context.on('request', (r: Request) => pending.push(r.allHeaders().then((headers) => void seen.push({ url: r.url(), body: r.postData() ?? '', headers }), () => undefined)));
    const chats = () => seen.filter((r) => r.url.startsWith(server) && r.url.endsWith('/chat/completions') && r.body).map((r) => JSON.parse(r.body) as { messages: { role: string; content: string }[] });
    const pairs = (ms: { role: string; content: string }[]) => ms.map((m) => `${m.role}: ${m.content}`.trim());

    await page.goto(url('/'));
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await settings(page, async (p) => {
      await p.getByLabel(/This device only/).check();
      const u = p.getByLabel(/Server URL/);
      await u.fill(inject('serverURL'));
      await u.blur();
      const k = p.getByLabel(/API key/);
      await k.fill(KEY);
      await k.blur();
    });

    // 1. Under "This device only": nothing reaches the server.
    let reply = await ask(page, `My account number is ${SECRET}. What is the capital of Zorvia?`);
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the device: you chose this device only/);
    await Promise.all(pending);
    expect(seen.filter((r) => r.url.startsWith(server))).toEqual([]);

    // 2. Server only, default history (none): only the question goes.
    await settings(page, (p) => p.getByLabel(/Server only/).check());
    reply = await ask(page, 'What is 2 plus 3?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the server/);
    expect(pairs(chats().at(-1)!.messages)).toEqual(['user: What is 2 plus 3?']);
    expect(await disclosed(reply)).toEqual(pairs(chats().at(-1)!.messages));

    // 3. Automatic, escalating every draft (confidence threshold 0), with earlier turns allowed:
    // the turns asked under Server only go along, the one asked under This device only does not.
    await settings(page, async (p) => {
      await p.getByLabel(/Automatic/).check();
      await p.getByLabel(/Earlier turns asked under automatic routing/).check();
      const t = p.getByLabel(/Confidence \(free-form\)/);
      await t.fill('0');
      await t.blur();
    });
    reply = await ask(page, 'What is 4 plus 4?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the server: the device was not confident/);
    let sent = pairs(chats().at(-1)!.messages);
    expect(sent[0]).toBe('user: What is 2 plus 3?');
    expect(sent.at(-1)).toBe('user: What is 4 plus 4?');
    expect(sent.length).toBe(3);
    expect(await disclosed(reply)).toEqual(sent);

    // 4. After a reload the conversation comes back from IndexedDB, and its device-only turn still stays.
    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 10_000 });
    await page.getByTestId('turn-user').first().waitFor();
    reply = await ask(page, 'What is 1 plus 1?');
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the server/);
    sent = pairs(chats().at(-1)!.messages);
    expect(sent.length).toBe(5);
    expect(sent.at(-1)).toBe('user: What is 1 plus 1?');
    expect(await disclosed(reply)).toEqual(sent);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/privacy-sent.png`, fullPage: true });

    // Nothing anywhere carries the device-only turn: not a body, a URL or a header. The key goes only to the server.
    await Promise.all(pending);
    expect(chats().length).toBe(3);
    for (const r of seen) {
      expect(r.body).not.toContain(SECRET);
      expect(r.url).not.toContain(SECRET);
      for (const v of Object.values(r.headers)) expect(v).not.toContain(SECRET);
      if (r.url.startsWith(server)) {
        if (r.headers['access-control-request-method'] === undefined) expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
        expect(r.headers).not.toHaveProperty('cookie');
      } else expect(JSON.stringify(r.headers)).not.toContain(KEY);
    }
  });
});
