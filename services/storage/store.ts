/**
 * The seam between the storage service and the store that contains market data and results. The
 * service opens the store when the profile is unlocked and closes it when the last session
 * locks, so the store never stays open without the keyring.
 *
 * The store is the sealed store (sealed/sealed-store.ts): DuckDB on a plaintext file in the
 * service's private RAM directory, and only sealed files under `<state dir>/store` on disk.
 */
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import type { ServiceContext } from '../runtime/types';
import type { DataKey, Keyring } from './crypto';
import type { StorageDatabase } from './database';
import { SealedStore } from './sealed/sealed-store';
import { STORE_PURPOSE } from './sealed/sealed-file';

export { STORE_PURPOSE };

/** Directory of the sealed files inside the storage service's state directory. */
export const STORE_DIR = 'store';

const openStores = new WeakMap<StorageDatabase, SealedStore>();

/**
 * Opens the sealed store with the unlocked keyring, creating it on the first unlock. The keyring
 * stays owned by the caller, which locks it (zeroing its keys) after `closeStore`. Raises
 * E_STORAGE when the service has no RAM-backed directory, because plaintext must not go to disk.
 */
export async function openStore(ctx: ServiceContext, keyring: Keyring): Promise<StorageDatabase> {
  if (ctx.ramDir === undefined) {
    throw new BacktestrError(
      'E_STORAGE',
      'cannot unlock: this machine offers no RAM-backed directory (tmpfs at $XDG_RUNTIME_DIR or /dev/shm) for the unlocked database; plaintext is never written to disk',
    );
  }
  const store = await SealedStore.open({
    durableDir: path.join(ctx.stateDir, STORE_DIR),
    ramDir: ctx.ramDir,
    keyring,
    log: ctx.log,
    securityEvent: (event) => ctx.securityEvent(event),
  });
  openStores.set(store.database, store);
  return store.database;
}

/** Closes the store: waits for running operations, seals everything to disk, removes the plaintext. */
export async function closeStore(db: StorageDatabase): Promise<void> {
  const store = openStores.get(db);
  if (store === undefined) {
    await db.close();
    return;
  }
  openStores.delete(db);
  await store.close();
}

/**
 * Re-seals everything in the store under `fresh`, the keyring's newest 'store' generation, which
 * `keyring.rekey('store')` just added: one compaction writes a new snapshot and journal with it
 * and destroys the older generations. When this returns, nothing in the store depends on them.
 */
export async function rekeyStore(_ctx: ServiceContext, db: StorageDatabase, keyring: Keyring, fresh: DataKey): Promise<void> {
  const store = openStores.get(db);
  if (store === undefined) throw new BacktestrError('E_INTERNAL', 'rekeyStore called for a database the store did not open');
  if (keyring.currentKey(STORE_PURPOSE).generation !== fresh.generation) {
    throw new BacktestrError('E_INTERNAL', `rekeyStore expected generation ${fresh.generation} to be the newest 'store' key`);
  }
  await store.compact();
}
