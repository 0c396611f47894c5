// A small Markdown subset for chat replies, parsed into a tree that components
// render as elements (never as HTML strings, so a reply can't inject markup):
// paragraphs, headings, fenced code, bullet and numbered lists; inline code,
// **bold**, *italic* and [links](http…) (http and https only).

export type Inline =
  | { kind: 'text'; text: string }
  | { kind: 'code'; text: string }
  | { kind: 'strong'; children: Inline[] }
  | { kind: 'em'; children: Inline[] }
  | { kind: 'link'; href: string; children: Inline[] };

export type Block =
  | { kind: 'p'; children: Inline[] }
  | { kind: 'h'; level: 1 | 2 | 3; children: Inline[] }
  | { kind: 'code'; lang: string; text: string }
  | { kind: 'ul' | 'ol'; items: Inline[][] };

export function parseMarkdown(src: string): Block[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const out: Block[] = [];
  let para: string[] = [];
  const flush = () => {
    if (para.length) out.push({ kind: 'p', children: parseInline(para.join('\n')) });
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*```\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      flush();
      const body: string[] = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      out.push({ kind: 'code', lang: fence[1], text: body.join('\n') }); // an unclosed fence runs to the end (a reply still streaming)
      continue;
    }
    const h = /^(#{1,3})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      out.push({ kind: 'h', level: h[1].length as 1 | 2 | 3, children: parseInline(h[2]) });
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (item) {
      flush();
      const kind = /\d/.test(item[1]) ? 'ol' : 'ul';
      const last = out[out.length - 1];
      if (last && last.kind === kind) last.items.push(parseInline(item[2]));
      else out.push({ kind, items: [parseInline(item[2])] });
      continue;
    }
    if (line.trim() === '') flush();
    else para.push(line);
  }
  flush();
  return out;
}

export function parseInline(s: string): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const push = (node: Inline) => {
    if (text) out.push({ kind: 'text', text });
    text = '';
    out.push(node);
  };
  for (let i = 0; i < s.length; ) {
    const rest = s.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^`([^`]+)`/.exec(rest))) push({ kind: 'code', text: m[1] });
    else if ((m = /^\*\*(.+?)\*\*/.exec(rest))) push({ kind: 'strong', children: parseInline(m[1]) });
    else if ((m = /^\*([^*\s][^*]*?)\*/.exec(rest))) push({ kind: 'em', children: parseInline(m[1]) });
    else if ((m = /^\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/.exec(rest))) push({ kind: 'link', href: m[2], children: parseInline(m[1]) });
    if (m) {
      i += m[0].length;
      continue;
    }
    text += s[i];
    i++;
  }
  if (text) out.push({ kind: 'text', text });
  return out;
}
