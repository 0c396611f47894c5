import { describe, expect, it } from 'vitest';
import { parseCsvExamples, parseExamples, parseExamplesFile } from './examples';

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

describe('CSV and uploaded examples', () => {
  it('reads a CSV with a header, quotes, commas and newlines inside cells', () => {
    const csv = 'question,answer\r\n"What is 2, plus 2?",4\n"Say ""hi""","line one\nline two"\n';
    expect(parseCsvExamples(csv)).toEqual([
      { input: 'What is 2, plus 2?', output: '4' },
      { input: 'Say "hi"', output: 'line one\nline two' },
    ]);
  });

  it('rejects a CSV without the columns, with an empty cell, or with an open quote', () => {
    const code = (f: () => unknown) => { try { f(); return 'ok'; } catch (e) { return (e as { code?: string }).code; } };
    expect(code(() => parseCsvExamples('a,b\n1,2'))).toBe('bad-format');
    expect(code(() => parseCsvExamples('input,output\nx,'))).toBe('bad-format');
    expect(code(() => parseCsvExamples('input,output\n"x,y'))).toBe('bad-format');
  });

  it('picks the format of an uploaded file by its name or header', () => {
    expect(parseExamplesFile('ex.csv', 'input,output\na,b')).toEqual([{ input: 'a', output: 'b' }]);
    expect(parseExamplesFile('ex.txt', 'input,output\na,b')).toEqual([{ input: 'a', output: 'b' }]);
    expect(parseExamplesFile('ex.jsonl', '{"input":"a","output":"b"}')).toEqual([{ input: 'a', output: 'b' }]);
    expect(parseExamplesFile('ex.txt', 'a => b')).toEqual([{ input: 'a', output: 'b' }]);
  });
});
