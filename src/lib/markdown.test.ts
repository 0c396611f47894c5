import { describe, expect, it } from 'vitest';
import { parseInline, parseMarkdown } from './markdown';

describe('markdown', () => {
  it('parses paragraphs, headings, lists and fenced code', () => {
    const b = parseMarkdown('# Title\nfirst line\nsecond\n\n- a\n- b\n1. one\n2. two\n```js\nlet x = 1;\n```');
    expect(b.map((x) => x.kind)).toEqual(['h', 'p', 'ul', 'ol', 'code']);
    expect(b[2]).toMatchObject({ kind: 'ul', items: [[{ kind: 'text', text: 'a' }], [{ kind: 'text', text: 'b' }]] });
    expect(b[4]).toEqual({ kind: 'code', lang: 'js', text: 'let x = 1;' });
  });

  it('parses bold, italic, inline code and http links, nested', () => {
    expect(parseInline('a **b *c* d** `d` [e](https://x.y/z)')).toEqual([
      { kind: 'text', text: 'a ' },
      { kind: 'strong', children: [{ kind: 'text', text: 'b ' }, { kind: 'em', children: [{ kind: 'text', text: 'c' }] }, { kind: 'text', text: ' d' }] },
      { kind: 'text', text: ' ' },
      { kind: 'code', text: 'd' },
      { kind: 'text', text: ' ' },
      { kind: 'link', href: 'https://x.y/z', children: [{ kind: 'text', text: 'e' }] },
    ]);
  });

  it('keeps markup and unsafe links as plain text', () => {
    expect(parseInline('<img src=x onerror=alert(1)>')).toEqual([{ kind: 'text', text: '<img src=x onerror=alert(1)>' }]);
    expect(parseInline('[x](javascript:alert(1))')).toEqual([{ kind: 'text', text: '[x](javascript:alert(1))' }]);
  });

  it('renders an unclosed fence (a reply still streaming) as code to the end', () => {
    expect(parseMarkdown('```\nsome')).toEqual([{ kind: 'code', lang: '', text: 'some' }]);
  });
});
