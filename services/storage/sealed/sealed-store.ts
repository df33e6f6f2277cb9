/**
 * The sealed store: DuckDB runs on a plaintext database file in a private RAM-backed directory,
 * and only sealed files reach persistent disk.
 *
 *   <durable dir>/snapshot-N.sealed  the database file at commit S, sealed (snapshot.ts)
 *   <durable dir>/journal-N.sealed   every commit after S, one sealed record each (journal.ts)
 *
 * Two counters under the keyring's MAC anchor the store: 'store-file' is the current N and
 * 'store-commit' the last acknowledged commit. A write is acknowledged only after its journal
 * record is fdatasync'ed and 'store-commit' is raised, so after a kill -9 at any moment:
 * - the journal contains every acknowledged commit, and replaying it rebuilds the database;
 * - at most one complete record past 'store-commit' exists (written, not yet acknowledged),
 *   and it is kept, because it authenticates and is whole;
 * - an incomplete last record is a torn write of an unacknowledged commit and is cut off.
 * A journal that contains fewer commits than 'store-commit' records is an older copy or damage.
 *
 * Compaction seals a new snapshot N+1 from a CHECKPOINTed database and starts journal N+1; the
 * switch is the single raise of 'store-file'. So small writes cost one journal record, not a
 * re-encryption of the database, and the journal's size stays bounded.
 *
 * NOTE: restoring older copies of the keyring and the store together opens the older profile;
 * detecting that needs a counter outside the profile directory (an OS keystore or a TPM).
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { BacktestrError } from '../../../protocol/errors';
import type { Keyring } from '../crypto/keyring';
import { DATABASE_FILE, StorageDatabase, type DurableLog } from '../database';
import { migrateSchema } from '../schema';
import { decodeStoreRecord } from '../store-records';
import type { SecurityEvent } from '../../runtime/types';
import { HEADER_SIZE, HEADER_TAG_SIZE, sealedFileError } from './file-header';
import { Journal } from './journal';
import { checkRamDir, emptyRamDir } from './ram-dir';
import { openSealedFile, STORE_PURPOSE } from './sealed-file';
import { restoreSnapshot, writeSnapshot } from './snapshot';

export const FILE_COUNTER = 'store-file';
export const COMMIT_COUNTER = 'store-commit';
/**
 * Compaction starts once the journal is larger than this and twice as large as the snapshot.
 * Each compaction rewrites the whole database, so a threshold that grows with the snapshot keeps
 * the total sealing work of a long series of imports within about 1.5 times the data imported.
 * Locking compacts anyway, so the journal only has to be replayed after a crash.
 */
export const DEFAULT_COMPACT_AFTER_BYTES = 256 * 1024 * 1024;
const STORE_FILE_PATTERN = /^(snapshot|journal)-(\d{1,15})\.sealed(\.partial)?$/;

export interface SealedStoreOptions {
  /** Directory on persistent disk for the sealed files (created 0700 if missing). */
  durableDir: string;
  /** Private RAM-backed directory for the plaintext database (see ram-dir.ts). */
  ramDir: string;
  keyring: Keyring;
  log: Logger;
  securityEvent(event: SecurityEvent): void;
  compactAfterBytes?: number;
}

export const snapshotName = (fileNumber: number): string => `snapshot-${fileNumber}.sealed`;
export const journalName = (fileNumber: number): string => `journal-${fileNumber}.sealed`;

export class SealedStore implements DurableLog {
  private compaction: Promise<void> | null = null;
  private closed = false;

  private constructor(
    private readonly options: SealedStoreOptions,
    readonly database: StorageDatabase,
    private journal: Journal,
    private fileNumber: number,
    private snapshotBytes: number,
  ) {}

  /**
   * Opens the store, or creates it when the keyring records none. Raises E_INTEGRITY (and sends a
   * critical security event) for any sealed file that fails verification, and leaves no
   * plaintext behind when it fails.
   */
  static async open(options: SealedStoreOptions): Promise<SealedStore> {
    await checkRamDir(options.ramDir);
    const stale = await emptyRamDir(options.ramDir);
    if (stale > 0) options.log.warn({ entries: stale }, 'removed plaintext left in the RAM directory by an earlier run');
    await mkdir(options.durableDir, { recursive: true, mode: 0o700 });

    try {
      const fileNumber = options.keyring.counter(FILE_COUNTER);
      // Nothing is deleted before the current files have been found and verified, so a keyring
      // and a store from different points in time are refused without touching either.
      const entries = await listStoreFiles(options);
      checkCurrentFilesPresent(entries, fileNumber);
      if (fileNumber === 0) {
        await removeInterruptedCreation(options, entries);
        return await SealedStore.create(options);
      }
      return await SealedStore.restore(options, fileNumber, entries);
    } catch (error) {
      await emptyRamDir(options.ramDir);
      if (error instanceof BacktestrError && error.code === 'E_INTEGRITY') {
        options.securityEvent({ type: 'storage.integrity_failed', severity: 'critical', details: { ...error.details } });
      }
      throw error;
    }
  }

  /** Seals a new empty store: schema, snapshot 1, journal 1, then the counter that makes it real. */
  private static async create(options: SealedStoreOptions): Promise<SealedStore> {
    const committed = options.keyring.counter(COMMIT_COUNTER);
    if (committed > 0) {
      throw new BacktestrError('E_INTEGRITY', `the keyring records ${committed} commits but no sealed store file: the store was deleted or moved`, { file: snapshotName(1), reason: 'missing' });
    }
    const database = await openPlainDatabase(options);
    try {
      await migrateSchema(database);
      const snapshot = await database.checkpointAndHold(() =>
        writeSnapshot(plainFile(options), durable(options, snapshotName(1)), options.keyring, { fileNumber: 1, commitSequence: 0 }),
      );
      const journal = await Journal.create(durable(options, journalName(1)), options.keyring, { fileNumber: 1, commitSequence: 0 });
      await options.keyring.setCounter(FILE_COUNTER, 1);
      options.log.info('sealed store created');
      return SealedStore.attach(options, database, journal, 1, snapshot.bytes);
    } catch (error) {
      await database.close();
      throw error;
    }
  }

  private static async restore(options: SealedStoreOptions, fileNumber: number, entries: StoreFileEntry[]): Promise<SealedStore> {
    const committed = options.keyring.counter(COMMIT_COUNTER);
    const snapshotFile = durable(options, snapshotName(fileNumber));
    const { commitSequence: snapshotSequence, keyGeneration } = await restoreSnapshot(snapshotFile, plainFile(options), options.keyring, fileNumber);
    if (snapshotSequence > committed) {
      throw sealedFileError(snapshotName(fileNumber), `contains commit ${snapshotSequence}, but the keyring records only ${committed}: the keyring is an older copy`);
    }

    const database = await openPlainDatabase(options);
    try {
      const journalFile = durable(options, journalName(fileNumber));
      const { journal, tail } = await Journal.open(journalFile, options.keyring, { fileNumber, commitSequence: snapshotSequence }, async (sequence, plaintext) => {
        const record = decodeStoreRecord(plaintext, `${journalName(fileNumber)} record ${sequence - snapshotSequence}`);
        plaintext.fill(0);
        await database.replay(record);
      });
      try {
        await checkJournal(options, journal, tail, committed);
        await removeLeftoverFiles(options, entries, fileNumber, journal.lastSequence);
      } catch (error) {
        await journal.close();
        throw error;
      }
      await migrateSchema(database);
      // Finishes a rekey that a crash interrupted after its compaction switched files.
      await retireUnusedKeys(options, Math.min(keyGeneration, journal.keyGeneration));
      const snapshotBytes = (await stat(snapshotFile)).size;
      options.log.info({ commits: journal.lastSequence, replayed: journal.recordCount }, 'sealed store opened');
      return SealedStore.attach(options, database, journal, fileNumber, snapshotBytes);
    } catch (error) {
      await database.close();
      throw error;
    }
  }

  private static attach(options: SealedStoreOptions, database: StorageDatabase, journal: Journal, fileNumber: number, snapshotBytes: number): SealedStore {
    const store = new SealedStore(options, database, journal, fileNumber, snapshotBytes);
    database.attachDurableLog(store);
    return store;
  }

  /** DurableLog: appends the record to the journal and fdatasyncs it. */
  append(record: Uint8Array): Promise<number> {
    return this.journal.append(record);
  }

  /** DurableLog: raises the keyring's commit counter, then starts a compaction if one is due. */
  async acknowledge(sequence: number): Promise<void> {
    await this.options.keyring.setCounter(COMMIT_COUNTER, sequence);
    const threshold = this.options.compactAfterBytes ?? DEFAULT_COMPACT_AFTER_BYTES;
    if (this.compaction === null && this.journal.size > threshold && this.journal.size > 2 * this.snapshotBytes) {
      // Queued behind the current write, which is still running; awaiting it here would deadlock.
      this.compaction = this.compact()
        .catch((error: unknown) => {
          this.options.log.error({ err: (error as Error).message }, 'store compaction failed; the journal keeps every commit');
        })
        .finally(() => {
          this.compaction = null;
        });
    }
  }

  /**
   * Seals the current database as snapshot N+1 with an empty journal N+1, switches to them by
   * raising 'store-file', and deletes the files of N. Uses the newest 'store' key generation.
   */
  async compact(): Promise<void> {
    await this.database.checkpointAndHold(async () => {
      const next = this.fileNumber + 1;
      const commitSequence = this.journal.lastSequence;
      const snapshot = await writeSnapshot(plainFile(this.options), durable(this.options, snapshotName(next)), this.options.keyring, {
        fileNumber: next,
        commitSequence,
      });
      const journal = await Journal.create(durable(this.options, journalName(next)), this.options.keyring, { fileNumber: next, commitSequence });
      try {
        await this.options.keyring.setCounter(FILE_COUNTER, next);
      } catch (error) {
        await journal.close();
        throw error;
      }

      const previous = this.fileNumber;
      await this.journal.close();
      this.journal = journal;
      this.fileNumber = next;
      this.snapshotBytes = snapshot.bytes;
      await rm(durable(this.options, snapshotName(previous)), { force: true });
      await rm(durable(this.options, journalName(previous)), { force: true });
      await retireUnusedKeys(this.options, Math.min(snapshot.keyGeneration, journal.keyGeneration));
      this.options.log.info({ fileNumber: next, commits: commitSequence, snapshotBytes: snapshot.bytes }, 'store compacted');
    });
  }

  /**
   * Re-encrypts the whole store under a fresh 'store' data key; the compaction then destroys the
   * older keys. A crash before the switch leaves the old files and key in use, with the new key
   * unused until the next compaction. A crash after it leaves the new files, and the next unlock
   * destroys the old key.
   */
  async rekey(): Promise<number> {
    const generations = this.options.keyring.generations(STORE_PURPOSE);
    const newest = generations[generations.length - 1];
    // A newer key than the files use was added by a rekey that a crash interrupted. It never
    // sealed anything, so it is as fresh as a new one, and reusing it keeps keys from piling up.
    const generation = newest > this.journal.keyGeneration ? newest : (await this.options.keyring.rekey(STORE_PURPOSE)).generation;
    await this.compact();
    return generation;
  }

  /** Commits sealed so far: the commit sequence of the last journal record. */
  get lastCommit(): number {
    return this.journal.lastSequence;
  }

  /**
   * Compacts if the journal holds anything (so the next unlock replays nothing), closes DuckDB
   * and removes the plaintext from the RAM directory.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.compaction !== null) await this.compaction;
      if (this.journal.recordCount > 0) await this.compact();
    } finally {
      try {
        await this.database.close();
        await this.journal.close();
      } finally {
        await emptyRamDir(this.options.ramDir);
      }
    }
  }
}

/** Destroys the 'store' keys older than `inUse`, the oldest generation the current files use. */
async function retireUnusedKeys(options: SealedStoreOptions, inUse: number): Promise<void> {
  const older = options.keyring.generations(STORE_PURPOSE).filter((generation) => generation < inUse);
  if (older.length === 0) return;
  await options.keyring.retireGenerationsBefore(STORE_PURPOSE, inUse);
  options.log.info({ generations: older }, 'destroyed store keys that no file uses any more');
}

/** Applies the rules for what may follow the last valid journal record (see the file comment). */
async function checkJournal(options: SealedStoreOptions, journal: Journal, tail: { offset: number; bytes: number; reason: string } | null, committed: number): Promise<void> {
  const last = journal.lastSequence;
  if (tail !== null) {
    if (last < committed) {
      throw sealedFileError(journal.fileName, `${tail.reason} at byte ${tail.offset}, and the keyring records ${committed} commits where the journal proves ${last}`);
    }
    await journal.dropTail();
    options.log.warn({ file: journal.fileName, bytes: tail.bytes, reason: tail.reason }, 'cut an unacknowledged torn write from the journal');
    options.securityEvent({ type: 'storage.journal_tail_dropped', severity: 'warning', details: { file: journal.fileName, bytes: tail.bytes } });
  }
  if (last < committed) {
    throw sealedFileError(journal.fileName, `contains commits up to ${last}, but the keyring records ${committed}: the file is an older copy or truncated`);
  }
  if (last > committed + 1) {
    throw sealedFileError(journal.fileName, `contains commits up to ${last}, but the keyring records only ${committed}: the keyring is an older copy`);
  }
  if (last === committed + 1) {
    // Written and synced before a crash, but never acknowledged: complete and authentic, so kept.
    await options.keyring.setCounter(COMMIT_COUNTER, last);
    options.log.info({ commit: last }, 'kept a complete commit that was written but not acknowledged before a crash');
  }
}

interface StoreFileEntry {
  name: string;
  kind: 'snapshot' | 'journal';
  number: number;
  /** A snapshot's temporary name: written, never renamed into place. */
  partial: boolean;
}

/** Lists the sealed files in the store directory; other names are logged and left alone. */
async function listStoreFiles(options: SealedStoreOptions): Promise<StoreFileEntry[]> {
  const entries: StoreFileEntry[] = [];
  for (const name of await readdir(options.durableDir)) {
    const match = STORE_FILE_PATTERN.exec(name);
    if (match === null) {
      options.log.warn({ file: name }, 'unexpected file in the sealed store directory, left untouched');
      continue;
    }
    entries.push({ name, kind: match[1] as StoreFileEntry['kind'], number: Number(match[2]), partial: match[3] !== undefined });
  }
  return entries;
}

/**
 * Raises E_INTEGRITY, before anything is read or deleted, when the files the keyring names are
 * missing or when files numbered past N+1 exist. A crash leaves at most the files of N+1 beside
 * those of N, so anything else means the keyring and the store are from different times.
 */
function checkCurrentFilesPresent(entries: StoreFileEntry[], fileNumber: number): void {
  const complete = entries.filter((entry) => !entry.partial);
  // With no store recorded, only the files 1 of an interrupted creation may exist.
  const limit = fileNumber === 0 ? 1 : fileNumber + 1;
  const ahead = complete.find((entry) => entry.number > limit);
  if (ahead !== undefined) {
    throw sealedFileError(ahead.name, `file number ${ahead.number} is ahead of the ${fileNumber} the keyring records: the keyring is older than the store; restore the keyring and the store from the same backup`);
  }
  if (fileNumber === 0) return;
  for (const kind of ['snapshot', 'journal'] as const) {
    if (complete.some((entry) => entry.kind === kind && entry.number === fileNumber)) continue;
    const others = [...new Set(complete.map((entry) => entry.number))].sort((a, b) => a - b);
    const name = kind === 'snapshot' ? snapshotName(fileNumber) : journalName(fileNumber);
    throw sealedFileError(
      name,
      others.length === 0
        ? 'file is missing; restore the profile from a backup'
        : `file is missing, but the store contains files numbered ${others.join(', ')}: the keyring and the store are from different times; restore both from the same backup`,
    );
  }
}

/**
 * Removes the files of a creation that a crash interrupted before the keyring recorded the store.
 * Only files whose authenticated header shows they belong to this keyring are removed.
 */
async function removeInterruptedCreation(options: SealedStoreOptions, entries: StoreFileEntry[]): Promise<void> {
  for (const entry of entries) {
    if (entry.partial || (await isShorterThanHeader(options, entry))) continue;
    const { empty } = await verifyOwnFile(options, entry);
    if (entry.kind === 'journal' && !empty) {
      throw sealedFileError(entry.name, 'contains commits, but the keyring records no store: the keyring is older than the store; restore both from the same backup');
    }
  }
  for (const entry of entries) await rm(path.join(options.durableDir, entry.name), { force: true });
}

/**
 * After the current files N opened: removes partial snapshots, files below N (a compaction
 * switched away from them and crashed before deleting them) and the files of N+1 (a compaction
 * crashed before switching to them). Files N+1 are removed only when they contain exactly the
 * commits of N, so nothing is lost. Otherwise the keyring is an older copy and E_INTEGRITY is
 * raised. A file below N whose header does not verify is reported and left in place.
 */
async function removeLeftoverFiles(options: SealedStoreOptions, entries: StoreFileEntry[], fileNumber: number, lastSequence: number): Promise<void> {
  const removable: string[] = [];
  for (const entry of entries) {
    if (entry.partial) {
      removable.push(entry.name);
    } else if (entry.number === fileNumber + 1) {
      if (await isShorterThanHeader(options, entry)) {
        // Journals are renamed into place with a whole header, so only a torn copy or a crash in
        // an older build's creation leaves this. It cannot contain a commit.
        removable.push(entry.name);
        continue;
      }
      const { commitSequence, empty } = await verifyOwnFile(options, entry);
      if (commitSequence !== lastSequence || (entry.kind === 'journal' && !empty)) {
        throw sealedFileError(entry.name, `contains commits after ${lastSequence}, which the keyring does not record: the keyring is older than the store; restore the keyring and the store from the same backup`);
      }
      removable.push(entry.name);
    } else if (entry.number < fileNumber) {
      try {
        await verifyOwnFile(options, entry);
        removable.push(entry.name);
      } catch (error) {
        if (!(error instanceof BacktestrError && error.code === 'E_INTEGRITY')) throw error;
        options.log.warn({ file: entry.name, reason: error.details.reason }, 'old sealed file does not verify; left in place');
        options.securityEvent({ type: 'storage.unexpected_file', severity: 'warning', details: { file: entry.name } });
      }
    }
  }
  for (const name of removable) {
    await rm(path.join(options.durableDir, name), { force: true });
    options.log.info({ file: name }, 'removed a sealed file left by an interrupted compaction');
  }
}

async function isShorterThanHeader(options: SealedStoreOptions, entry: StoreFileEntry): Promise<boolean> {
  return (await stat(path.join(options.durableDir, entry.name))).size < HEADER_SIZE + HEADER_TAG_SIZE;
}

/** Verifies the header of a store file against this keyring and its name; E_INTEGRITY if it does not. */
async function verifyOwnFile(options: SealedStoreOptions, entry: StoreFileEntry): Promise<{ commitSequence: number; empty: boolean }> {
  const file = await openSealedFile(path.join(options.durableDir, entry.name), options.keyring, { kind: entry.kind, fileNumber: entry.number });
  try {
    return { commitSequence: file.header.commitSequence, empty: file.size === file.bodyOffset };
  } finally {
    await file.handle.close();
  }
}

async function openPlainDatabase(options: SealedStoreOptions): Promise<StorageDatabase> {
  const tempDirectory = path.join(options.ramDir, 'spill');
  await mkdir(tempDirectory, { mode: 0o700 });
  return StorageDatabase.open(options.ramDir, options.log, { tempDirectory });
}

function plainFile(options: SealedStoreOptions): string {
  return path.join(options.ramDir, DATABASE_FILE);
}

function durable(options: SealedStoreOptions, name: string): string {
  return path.join(options.durableDir, name);
}
