// The service worker's life cycle as state: offline-ready once the app shell
// is cached, and an update waiting for the user's go-ahead (never a surprise
// reload in the middle of a chat).
import { messageOf } from '../lib/errors';
import { registerSW } from 'virtual:pwa-register';

export class PwaState {
  offlineReady = $state(false);
  updateWaiting = $state(false);
  registrationError = $state<string | null>(null);
  private update: ((reload?: boolean) => Promise<void>) | null = null;

  start(): void {
    if (!('serviceWorker' in navigator)) return;
    this.update = registerSW({
      immediate: true,
      onOfflineReady: () => (this.offlineReady = true),
      onNeedRefresh: () => (this.updateWaiting = true),
      onRegisterError: (e: unknown) => (this.registrationError = messageOf(e)),
    });
  }

  /** Activates the waiting version and reloads into it. */
  async applyUpdate(): Promise<void> {
    await this.update?.(true);
  }

  dismissUpdate(): void {
    this.updateWaiting = false;
  }
}
