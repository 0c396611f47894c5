// Tokenizing and chat templates through @huggingface/transformers, built from
// the tokenizer files' contents (never fetched by the library itself).
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { AppError, messageOf } from '../errors';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export class Tokenizer {
  private readonly tok: PreTrainedTokenizer;
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown) {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new AppError('bad-format', 'tokenizer.json is not a Hugging Face tokenizer (it has no "model").');
    }
    try {
      this.tok = new PreTrainedTokenizer(tokenizerJson as object, (tokenizerConfig ?? {}) as object);
    } catch (e) {
      throw new AppError('bad-format', `The tokenizer files could not be read: ${messageOf(e)}.`);
    }
    this.eosTokenId = (this.tok.eos_token_id as number | undefined) ?? null;
    this.bosTokenId = (this.tok.bos_token_id as number | undefined) ?? null;
  }

  encode(text: string): number[] {
    return Array.from(this.tok.encode(text, { add_special_tokens: false }) as number[]);
  }

  decode(ids: number[]): string {
    if (ids.length === 0) return ''; // transformers.js throws on an empty list (a reply that ends at once)
    return this.tok.decode(ids, { skip_special_tokens: false });
  }

  /** The conversation rendered by the model's chat template, ready for generation if asked. */
  chat(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (!this.tok.chat_template) {
      // No template (a base model): plain turns, so generation still works.
      return messages.map((m) => `${m.role}: ${m.content}\n`).join('') + (addGenerationPrompt ? 'assistant: ' : '');
    }
    return this.tok.apply_chat_template(messages, { tokenize: false, add_generation_prompt: addGenerationPrompt }) as string;
  }
}
