// embed.js, the one line a site owner pastes:
//   <script async src="https://app.example/embed.js" data-assistant="…" data-origin-allow="https://shop.example"></script>
// It draws a launcher button in a shadow root (its CSS isolated from the page's), loads the widget's
// iframe (embed.html, on the app's origin) only when the visitor opens it or the page is idle, and speaks
// protocol v1 with it: messages go to that iframe's window at the app's origin, and only messages from that
// window and origin are read. It never reads the page. Built alone as a small classic script (vite.config.ts).
import { envelope, readWidgetMessage, type HostBody, type HostMessage, type RouteTaken, type Theme, type WidgetMessage } from '../lib/widget/protocol';

type Final = { text: string; route: RouteTaken };
type Pending = { onChunk?: (text: string, route: 'device' | 'server') => void; resolve: (a: Final) => void; reject: (e: Error) => void };

const CSS = `:host{all:initial}
.l{position:fixed;right:16px;bottom:16px;z-index:2147483000;font:600 15px/1.2 system-ui,sans-serif;padding:12px 18px;min-height:44px;border:0;border-radius:999px;background:#1f2937;color:#fff;box-shadow:0 4px 14px #0004;cursor:pointer}
.l:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}
.p{position:fixed;right:16px;bottom:76px;z-index:2147483001;width:min(380px,calc(100vw - 32px));height:min(560px,calc(100vh - 100px));border-radius:12px;overflow:hidden;box-shadow:0 8px 30px #0005;background:#fff}
.p[hidden]{display:none}iframe{display:block;border:0;width:100%;height:100%}
@media (max-width:480px){.p{inset:0;width:100%;height:100%;border-radius:0}}`;

((script: HTMLScriptElement | null) => {
  if (!script?.src) return;
  const widgetOrigin = new URL(script.src).origin;
  const d = script.dataset;
  const allow = (d.originAllow ?? '').split(/[\s,]+/).filter(Boolean);
  if (!allow.includes(location.origin)) {
    console.warn(`Crayon widget: ${location.origin} is not in data-origin-allow (${allow.join(' ') || 'empty'}); the widget is not shown.`);
    return;
  }
  const src = new URL('embed.html', script.src);
  src.hash = new URLSearchParams({ assistant: d.assistant ?? '', origins: allow.join(' ') }).toString();

  const el = document.createElement('div');
  el.dataset.crayonWidget = '';
  const root = el.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>${CSS}</style><button class="l" type="button" aria-expanded="false" aria-haspopup="dialog"></button><div class="p" role="dialog" aria-label="Assistant" hidden></div>`;
  const launcher = root.querySelector('button')!;
  const panel = root.querySelector('div')!;
  launcher.textContent = d.label || 'Ask our assistant';

  let frame: HTMLIFrameElement | null = null;
  let loaded = false;
  let theme: Theme = d.theme === 'dark' ? 'dark' : 'light';
  const queue: HostBody[] = [];
  const asks = new Map<string, Pending>();
  let n = 0;

  const send = (body: HostBody) => {
    if (loaded && frame?.contentWindow) frame.contentWindow.postMessage(envelope<HostMessage>(body), widgetOrigin);
    else queue.push(body);
  };
  const load = () => {
    if (frame) return;
    frame = document.createElement('iframe');
    frame.title = d.label || 'Assistant';
    frame.src = src.toString();
    frame.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms');
    frame.addEventListener('load', () => {
      loaded = true;
      send({ type: 'setTheme', theme }); // the first message: the widget answers 'ready' to this page's origin
      for (const b of queue.splice(0)) send(b);
    });
    panel.append(frame);
  };
  const open = () => {
    load();
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    launcher.textContent = 'Close the assistant';
    send({ type: 'open' });
    frame!.focus();
  };
  const close = (fromWidget = false) => {
    if (panel.hidden) return;
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    launcher.textContent = d.label || 'Ask our assistant';
    if (!fromWidget) send({ type: 'close' });
    launcher.focus();
  };

  window.addEventListener('message', (e) => {
    if (!frame || e.source !== frame.contentWindow || e.origin !== widgetOrigin) return;
    const m: WidgetMessage | null = readWidgetMessage(e.data);
    if (!m) return;
    script.dispatchEvent(new CustomEvent('crayon:message', { detail: m }));
    const p = m.type === 'answer' || m.type === 'error' ? asks.get(m.id ?? '') : undefined;
    if (m.type === 'resize' && !m.open) close(true);
    else if (m.type === 'answer' && !m.done) p?.onChunk?.(m.chunk, m.route);
    else if (m.type === 'answer' && p) (asks.delete(m.id), p.resolve({ text: m.text, route: m.route }));
    else if (m.type === 'error' && p) (asks.delete(m.id!), p.reject(Object.assign(new Error(m.message), { code: m.code })));
  });
  launcher.addEventListener('click', () => (panel.hidden ? open() : close()));
  root.addEventListener('keydown', (e) => (e as KeyboardEvent).key === 'Escape' && close());

  const api = {
    open,
    close: () => close(),
    setTheme: (t: Theme) => send({ type: 'setTheme', theme: (theme = t) }),
    /** Asks the widget; the answer streams into onChunk, and the promise gives the whole answer with its route. */
    ask: (question: string, onChunk?: Pending['onChunk']) =>
      new Promise<Final>((resolve, reject) => {
        const id = `ask-${++n}`;
        asks.set(id, { onChunk, resolve, reject });
        load();
        send({ type: 'ask', id, question });
      }),
  };
  (window as unknown as { crayonWidget: typeof api }).crayonWidget = api;
  const attach = () => {
    document.body.append(el);
    // Idle: load the iframe in the background; the model itself waits until the visitor opens it or asks.
    if ('requestIdleCallback' in window) requestIdleCallback(load, { timeout: 10_000 });
    else setTimeout(load, 3000);
  };
  document.body ? attach() : document.addEventListener('DOMContentLoaded', attach);
})(document.currentScript as HTMLScriptElement | null);
