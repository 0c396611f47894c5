// Customizations by caller. Each caller (its API key; in open mode its
// address) sees, uses and evicts only its own: another caller asking for an id
// gets the same answer as for an id that never existed. Ids are 128 random
// bits, so in open mode the id itself is the capability. Each caller keeps at
// most `perCaller` (least recently used goes first); in open mode callers are
// capped too, so the whole table is bounded.
import { randomBytes } from 'node:crypto';
import type { CustomizationRequest } from './validate';

export interface StoredCustomization extends CustomizationRequest {
  id: string;
}

export class Tenancy {
  /** caller -> (id -> customization), both in least-recently-used-first order. */
  private readonly byCaller = new Map<string, Map<string, StoredCustomization>>();

  constructor(
    private readonly perCaller: number,
    private readonly maxCallers: number,
  ) {}

  add(caller: string, cz: CustomizationRequest): StoredCustomization {
    const own = this.touchCaller(caller) ?? new Map<string, StoredCustomization>();
    this.byCaller.set(caller, own);
    while (this.byCaller.size > this.maxCallers) this.byCaller.delete(this.byCaller.keys().next().value!);
    const stored = { id: `cz-${randomBytes(16).toString('hex')}`, ...cz };
    own.set(stored.id, stored);
    while (own.size > this.perCaller) own.delete(own.keys().next().value!);
    return stored;
  }

  /** The caller's customization `id` (now its most recently used), or undefined: absent and another's look the same. */
  get(caller: string, id: string): StoredCustomization | undefined {
    const own = this.touchCaller(caller);
    const hit = own?.get(id);
    if (!own || !hit) return undefined;
    own.delete(id);
    own.set(id, hit);
    return hit;
  }

  list(caller: string): StoredCustomization[] {
    return [...(this.byCaller.get(caller)?.values() ?? [])];
  }

  get size(): { callers: number; customizations: number } {
    let n = 0;
    for (const own of this.byCaller.values()) n += own.size;
    return { callers: this.byCaller.size, customizations: n };
  }

  private touchCaller(caller: string): Map<string, StoredCustomization> | undefined {
    const own = this.byCaller.get(caller);
    if (own) {
      this.byCaller.delete(caller);
      this.byCaller.set(caller, own);
    }
    return own;
  }
}
