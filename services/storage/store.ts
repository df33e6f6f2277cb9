/**
 * The seam between the storage service and the store that contains market data and results. The
 * service opens the store when the profile is unlocked and closes it when the last session
 * locks, so the store never stays open without the keyring.
 *
 * TODO: the bodies below open the plain DuckDB file. The sealed store replaces them and seals
 * the database with the keyring's 'store' data key. Callers depend only on these signatures.
 */
import type { Keyring, DataKey } from './crypto';
import { StorageDatabase } from './database';
import type { ServiceContext } from '../runtime/types';

/** Keyring purpose whose data keys seal the store. */
export const STORE_PURPOSE = 'store';

/**
 * Opens the store in the service's state directory with the unlocked keyring. The keyring stays
 * owned by the caller: it is locked (and its keys zeroed) after `closeStore`.
 */
export async function openStore(ctx: ServiceContext, _keyring: Keyring): Promise<StorageDatabase> {
  return StorageDatabase.open(ctx.stateDir, ctx.log);
}

/** Closes the store: waits for running operations, then writes everything to disk. */
export async function closeStore(db: StorageDatabase): Promise<void> {
  await db.close();
}

/**
 * Re-seals everything in the store under `fresh`, the keyring's new 'store' generation, which
 * `keyring.rekey('store')` just added. When this returns, nothing in the store may depend on an
 * older 'store' generation: the caller then retires those generations, and data still sealed
 * with them becomes unreadable.
 *
 * It does nothing today, because the plain DuckDB file uses no data key.
 */
export async function rekeyStore(_ctx: ServiceContext, _db: StorageDatabase, _keyring: Keyring, _fresh: DataKey): Promise<void> {}
