// Tests only: an idb-keyval store over a Map, shaped like IndexedDB's object
// store for what idb-keyval calls (put, get, getAll, getAllKeys, delete). With
// `failWrites`, a write transaction fails the way a full disk makes IndexedDB
// fail: a QuotaExceededError DOMException. Earlier data stays in the Map.
import type { UseStore } from 'idb-keyval';

export function memoryStore(data: Map<IDBValidKey, unknown>, failWrites: () => boolean = () => false): UseStore {
  return (mode, callback) => {
    if (mode === 'readwrite' && failWrites()) return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
    // A tiny object store over the Map: enough for idb-keyval's get/set/entries.
    const req = <T>(value: T) => {
      const r = { result: value, onsuccess: null as null | (() => void), onerror: null, error: null } as unknown as IDBRequest<T>;
      queueMicrotask(() => (r as unknown as { onsuccess?: () => void }).onsuccess?.());
      return r;
    };
    const store = {
      put: (v: unknown, k: IDBValidKey) => (data.set(k, v), req(k)),
      get: (k: IDBValidKey) => req(data.get(k)),
      getAll: () => req([...data.values()]),
      getAllKeys: () => req([...data.keys()]),
      delete: (k: IDBValidKey) => (data.delete(k), req(undefined)),
      transaction: { oncomplete: null, onabort: null, onerror: null },
    } as unknown as IDBObjectStore;
    const out = callback(store);
    queueMicrotask(() => (store.transaction as unknown as { oncomplete?: () => void }).oncomplete?.());
    return Promise.resolve(out);
  };
}
