// embed.html's entry: the widget inside its iframe. Its state reads the
// bundle from the fragment the loader (embed.js) wrote; the panel renders it.
import { mount } from 'svelte';
import { WidgetState } from '../state/widget.svelte';
import Widget from './Widget.svelte';
import './widget.css';

const target = document.getElementById('widget');
if (!target) throw new Error('embed.html lacks #widget');
// caches and locks may be refused in a third-party frame: the widget then keeps its downloads in memory.
const widget = new WidgetState(window, { fetch: fetch.bind(globalThis), caches: globalThis.caches, locks: navigator.locks });
mount(Widget, { target, props: { widget } });
void widget.start(location.hash);
