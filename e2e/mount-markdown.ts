// Test helper served by the Vite dev server: mounts the Markdown component so
// a test page can check what it renders (see app.e2e.ts).
import { mount } from 'svelte';
import Markdown from '../src/app/components/Markdown.svelte';

export function mountMarkdown(target: HTMLElement, text: string): void {
  mount(Markdown, { target, props: { text } });
}
