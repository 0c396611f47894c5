// The user's settings as reactive state, persisted in IndexedDB on this device.
import { messageOf } from '../lib/errors';
import { createStore, get, set, type UseStore } from 'idb-keyval';
import { DEFAULT_SETTINGS, normalizeSettings, type Settings } from '../lib/settings';

const KEY = 'settings';

export class SettingsState {
  value = $state<Settings>(structuredClone(DEFAULT_SETTINGS));
  loaded = $state(false);
  /** Set when saving failed (e.g. storage full); the in-memory settings still apply. */
  saveError = $state<string | null>(null);
  private readonly store: UseStore;

  constructor(store: UseStore = createStore('crayon-settings', 'kv')) {
    this.store = store;
  }

  async load(): Promise<void> {
    this.value = normalizeSettings(await get(KEY, this.store).catch(() => undefined));
    this.loaded = true;
  }

  async update(patch: Partial<Settings>): Promise<void> {
    this.value = normalizeSettings({ ...this.value, ...patch });
    try {
      await set(KEY, $state.snapshot(this.value), this.store);
      this.saveError = null;
    } catch (e) {
      this.saveError = `Settings could not be saved on this device (${messageOf(e)}); they apply until you close the page.`;
    }
  }
}
