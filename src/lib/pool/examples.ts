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
