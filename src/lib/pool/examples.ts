// The user's examples, typed or pasted: one per line as `input => output`,
// or JSONL with {input, output} / {question, answer} / {prompt, completion}.
import { AppError } from '../errors';

export interface Example {
  input: string;
  output: string;
}

export function parseExamples(text: string): Example[] {
  const out: Example[] = [];
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  lines.forEach((line, i) => {
    if (line.startsWith('{')) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line);
      } catch {
        throw new AppError('bad-format', `Line ${i + 1} starts like JSON but is not valid JSON.`, { line: i + 1 });
      }
      const input = o.input ?? o.question ?? o.prompt;
      const output = o.output ?? o.answer ?? o.completion ?? o.answer_text;
      if (typeof input !== 'string' || typeof output !== 'string') throw new AppError('bad-format', `Line ${i + 1} needs "input" and "output" (or "question" and "answer") strings.`, { line: i + 1 });
      out.push({ input, output });
      return;
    }
    const at = line.indexOf('=>');
    if (at < 0) throw new AppError('bad-format', `Line ${i + 1} has no "=>" between the input and the output.`, { line: i + 1 });
    const input = line.slice(0, at).trim();
    const output = line.slice(at + 2).trim();
    if (!input || !output) throw new AppError('bad-format', `Line ${i + 1} has an empty input or output.`, { line: i + 1 });
    out.push({ input, output });
  });
  return out;
}

/** CSV with a header naming the input and output columns (input/question/prompt, output/answer/completion); quotes as in RFC 4180. */
export function parseCsvExamples(text: string): Example[] {
  const rows = csvRows(text).filter((r) => r.some((c) => c.trim() !== ''));
  if (rows.length === 0) return [];
  const head = rows[0].map((h) => h.trim().toLowerCase());
  const inCol = head.findIndex((h) => ['input', 'question', 'prompt'].includes(h));
  const outCol = head.findIndex((h) => ['output', 'answer', 'completion', 'answer_text'].includes(h));
  if (inCol < 0 || outCol < 0) throw new AppError('bad-format', 'The CSV needs a header row with an "input" (or "question") column and an "output" (or "answer") column.');
  return rows.slice(1).map((r, i) => {
    const input = (r[inCol] ?? '').trim();
    const output = (r[outCol] ?? '').trim();
    if (!input || !output) throw new AppError('bad-format', `CSV row ${i + 2} has an empty input or output.`, { line: i + 2 });
    return { input, output };
  });
}

function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') (row.push(cell), (cell = ''));
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (quoted) throw new AppError('bad-format', 'The CSV ends inside a quoted cell.');
  if (cell !== '' || row.length) (row.push(cell), rows.push(row));
  return rows;
}

/** Examples from an uploaded file's text: CSV by name or header, else lines / JSONL. */
export function parseExamplesFile(name: string, text: string): Example[] {
  const first = text.split('\n', 1)[0].trim().toLowerCase();
  return name.toLowerCase().endsWith('.csv') || /^"?(input|question|prompt)"?\s*,/.test(first) ? parseCsvExamples(text) : parseExamples(text);
}
