import { describe, expect, it } from 'vitest';
import { parseExamples } from './examples';

describe('parseExamples', () => {
  it('reads arrows and JSONL in its common spellings', () => {
    expect(parseExamples('What is 2 plus 2? => 4\n\n{"question":"Q","answer":"A"}\n{"prompt":"p","completion":"c"}')).toEqual([
      { input: 'What is 2 plus 2?', output: '4' },
      { input: 'Q', output: 'A' },
      { input: 'p', output: 'c' },
    ]);
  });

  it('names the line that is wrong', () => {
    expect(() => parseExamples('a => b\nno arrow here')).toThrow(/Line 2/);
    expect(() => parseExamples('{"input": 1}')).toThrow(/Line 1 needs/);
    expect(() => parseExamples('{broken')).toThrow(/not valid JSON/);
  });
});
