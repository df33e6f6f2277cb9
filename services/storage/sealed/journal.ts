/**
 * Journal files: the commits made since the snapshot with the same file number, one sealed
 * record per commit, appended and fdatasync'ed before the commit is acknowledged.
 *
 * Record k (1-based) is chunk k of the file and has commit sequence `header.commitSequence + k`.
 * Its associated data includes the tag of record k-1, so records cannot be reordered, dropped
 * from the middle or spliced in from another journal without failing authentication.
 */
import { rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { BacktestrError } from '../../../protocol/errors';
import type { Keyring } from '../crypto/keyring';
import { closeAfterFailure, syncDirectory } from './directory';
import { TAG_SIZE } from './file-cipher';
import { sealedFileError } from './file-header';
import { createSealedFile, frameChunk, openSealedFile, readChunk, type SealedFile } from './sealed-file';

const FIRST_PREVIOUS_TAG = Buffer.alloc(TAG_SIZE);

/** Bytes after the last record that authenticates. */
export interface JournalTail {
  /** Byte offset where the valid records end. */
  offset: number;
  bytes: number;
  reason: string;
}

export class Journal {
  private broken: Error | null = null;

  private constructor(
    private readonly file: SealedFile,
    private end: number,
    private nextIndex: number,
    private previousTag: Buffer,
  ) {}

  get fileName(): string {
    return this.file.fileName;
  }

  /** Commit sequence of the last record, or of the snapshot when the journal is empty. */
  get lastSequence(): number {
    return this.file.header.commitSequence + this.nextIndex - 1;
  }

  /** Generation of the 'store' key that seals this journal. */
  get keyGeneration(): number {
    return this.file.header.keyGeneration;
  }

  /** Bytes in the file, header included. */
  get size(): number {
    return this.end;
  }

  get recordCount(): number {
    return this.nextIndex - 1;
  }

  /** Creates an empty journal that continues after commit `commitSequence`, durably. */
  static async create(file: string, keyring: Keyring, fields: { fileNumber: number; commitSequence: number }): Promise<Journal> {
    // Written under a temporary name and renamed once its header is synced, so a journal under
    // its final name always has a whole header, whenever a crash comes.
    const partial = `${file}.partial`;
    await rm(partial, { force: true });
    const sealedFile = await createSealedFile(partial, keyring, { kind: 'journal', ...fields });
    try {
      await sealedFile.handle.sync();
      await rename(partial, file);
      await syncDirectory(file);
    } catch (error) {
      await closeAfterFailure(sealedFile.handle, error);
      await rm(partial, { force: true });
      throw error;
    }
    // The open handle follows the renamed file.
    return new Journal({ ...sealedFile, fileName: path.basename(file) }, sealedFile.bodyOffset, 1, FIRST_PREVIOUS_TAG);
  }

  /**
   * Opens a journal and passes each record that authenticates, in order, to `onRecord`. Reading
   * stops at the first record that is incomplete or does not authenticate. `tail` describes the
   * bytes from there on, and the caller decides whether they are a torn write or damage.
   */
  static async open(
    file: string,
    keyring: Keyring,
    expected: { fileNumber: number; commitSequence: number },
    onRecord: (sequence: number, plaintext: Buffer) => Promise<void>,
  ): Promise<{ journal: Journal; tail: JournalTail | null }> {
    const sealedFile = await openSealedFile(file, keyring, { kind: 'journal', fileNumber: expected.fileNumber }, 'r+');
    try {
      if (sealedFile.header.commitSequence !== expected.commitSequence) {
        throw sealedFileError(
          sealedFile.fileName,
          `journal starts after commit ${sealedFile.header.commitSequence}, but its snapshot contains commits up to ${expected.commitSequence}`,
        );
      }

      let offset = sealedFile.bodyOffset;
      let index = 1;
      let previousTag: Buffer = FIRST_PREVIOUS_TAG;
      let tail: JournalTail | null = null;
      while (offset < sealedFile.size) {
        const chunk = await readChunk(sealedFile, offset);
        if (chunk === null) {
          tail = { offset, bytes: sealedFile.size - offset, reason: 'incomplete record' };
          break;
        }
        const plaintext = chunk.final ? null : sealedFile.cipher.open(index, chunk.sealed, previousTag);
        if (plaintext === null) {
          tail = { offset, bytes: sealedFile.size - offset, reason: `record ${index} does not authenticate` };
          break;
        }
        await onRecord(sealedFile.header.commitSequence + index, plaintext);
        previousTag = chunk.sealed.subarray(chunk.sealed.length - TAG_SIZE);
        offset = chunk.next;
        index++;
      }
      return { journal: new Journal(sealedFile, offset, index, Buffer.from(previousTag)), tail };
    } catch (error) {
      await closeAfterFailure(sealedFile.handle, error);
      throw error;
    }
  }

  /** Cuts the file after the last valid record and syncs it; used once, when opening. */
  async dropTail(): Promise<void> {
    await this.file.handle.truncate(this.end);
    await this.file.handle.sync();
  }

  /**
   * Appends one record and returns its commit sequence once it is on disk. After a failed
   * append the file's end is unknown, so every later append fails until the store reopens.
   */
  async append(plaintext: Uint8Array): Promise<number> {
    if (this.broken) throw new BacktestrError('E_STORAGE', `journal ${this.fileName} failed earlier; lock and unlock the profile to recover`, { file: this.fileName });
    const sealed = this.file.cipher.seal(this.nextIndex, plaintext, this.previousTag);
    const frame = frameChunk(sealed, false);
    try {
      await writeAllAt(this.file, [frame, sealed], this.end);
      await this.file.handle.datasync();
    } catch (error) {
      this.broken = error as Error;
      throw error;
    }
    this.end += frame.length + sealed.length;
    this.previousTag = Buffer.from(sealed.subarray(sealed.length - TAG_SIZE));
    this.nextIndex++;
    return this.lastSequence;
  }

  async close(): Promise<void> {
    await this.file.handle.close();
  }
}

async function writeAllAt(file: SealedFile, buffers: Buffer[], position: number): Promise<void> {
  let offset = position;
  for (const buffer of buffers) {
    let done = 0;
    while (done < buffer.length) {
      const { bytesWritten } = await file.handle.write(buffer, done, buffer.length - done, offset + done);
      done += bytesWritten;
    }
    offset += buffer.length;
  }
}
