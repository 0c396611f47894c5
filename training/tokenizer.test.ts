// The world's tokenizer gives the same ids in @huggingface/transformers (what
// the app uses) as in the Python builder (what trained the models), read
// offline from the world's files.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { worldDir } from './world-dir';

const world = worldDir();

describe('reference tokenizer', () => {
  it('encodes every probe string to the ids Python produced', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = `${world}/`;
    const tok = await AutoTokenizer.from_pretrained('tokenizer');
    const probes = JSON.parse(readFileSync(`${world}/fixtures/tokenizer.json`, 'utf8')) as { text: string; ids: number[] }[];
    expect(probes.length).toBeGreaterThanOrEqual(10);
    for (const p of probes) {
      expect(Array.from(tok.encode(p.text, { add_special_tokens: false })), JSON.stringify(p.text)).toEqual(p.ids);
    }
  });

  it('renders the chat template exactly as the builder did for training', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = `${world}/`;
    const tok = await AutoTokenizer.from_pretrained('tokenizer');
    const text = tok.apply_chat_template([{ role: 'user', content: 'What is the capital of Zorvia?' }], { tokenize: false, add_generation_prompt: true });
    const fixture = JSON.parse(readFileSync(`${world}/fixtures/gguf.json`, 'utf8')) as { chatTemplateProbe: string };
    expect(text).toBe(fixture.chatTemplateProbe);
  });
});
