/**
 * The build manifest: SHA-256 of every code file the kernel and the services run from, and the
 * functions that build and check it. write-manifest.ts writes it after `tsc`; the integrity service
 * checks it before the services are trusted.
 *
 * Covered files: every file ending in a code extension under build/kernel, build/services,
 * build/protocol and build/ops. build/ops is covered because the integrity service loads this
 * module from it. Source maps and the manifest itself are not code and are not covered.
 *
 * NOTE: this version of the manifest is unsigned. It detects accidental damage and changes made
 * after the build, but anyone who can rewrite build/ can also rewrite build/manifest.json to
 * match. A signature over `listSha256`, checked against a key kept outside build/, is what would
 * close that gap.
 */
import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';

export const MANIFEST_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_ROOT = 'build';
/** Top-level folders of build/ whose code the processes load. */
export const COVERED_DIRS: readonly string[] = ['kernel', 'services', 'protocol', 'ops'];
/**
 * Extensions Node can load as code. tsc emits only `.js` here; the others are covered so that a
 * planted `.cjs`, `.mjs` or native addon counts as an unexpected file too.
 */
export const CODE_EXTENSIONS: readonly string[] = ['.js', '.cjs', '.mjs', '.node'];
/** Upper bound on the manifest file, checked before it is read. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
const MAX_MANIFEST_FILES = 100_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface Manifest {
  version: 1;
  /** ISO 8601 time of the build. */
  createdAt: string;
  root: 'build';
  /** Path relative to build/ with `/` separators, to lower-case hex SHA-256; keys sorted. */
  files: Record<string, string>;
  /** SHA-256 of canonicalFileList(files). */
  listSha256: string;
}

/**
 * Failure kinds of a check:
 * - `modified`: a listed file's hash differs;
 * - `missing`: a listed file does not exist;
 * - `unexpected`: a code file that is not listed, or a symbolic link or special file anywhere in
 *   the covered folders (require() would follow it, so it is never accepted);
 * - `unreadable`: a covered file exists but could not be read;
 * - `manifest-unreadable`, `manifest-malformed`: the manifest is absent, unreadable or invalid.
 */
export type IntegrityFailureKind = 'modified' | 'missing' | 'unexpected' | 'unreadable' | 'manifest-unreadable' | 'manifest-malformed';

export interface IntegrityFailure {
  ok: false;
  kind: IntegrityFailureKind;
  /** Path relative to the build directory (`manifest.json` for manifest failures). */
  file: string;
  /** errno code (for example `EACCES`) when a read failed. */
  errno?: string;
}

export type VerifyResult = { ok: true; files: number } | IntegrityFailure;

export type ReadManifestResult = { ok: true; manifest: Manifest } | IntegrityFailure;

function errnoOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'unknown';
}

interface CoveredTree {
  /** Regular code files, relative to the build directory. */
  files: string[];
  /** Symbolic links and special files of any name, relative to the build directory. */
  nonRegular: string[];
}

function isCodeFile(name: string): boolean {
  return CODE_EXTENSIONS.some((extension) => name.endsWith(extension));
}

function toManifestPath(relative: string): string {
  return relative.split(path.sep).join('/');
}

/** Lists the covered tree without following symbolic links; a missing covered folder has no files. */
export async function scanCoveredTree(buildDir: string): Promise<CoveredTree> {
  const tree: CoveredTree = { files: [], nonRegular: [] };

  async function walk(relativeDir: string): Promise<void> {
    const entries = await fs.readdir(path.join(buildDir, relativeDir), { withFileTypes: true });
    for (const entry of entries) {
      const relative = path.join(relativeDir, entry.name);
      if (entry.isDirectory()) await walk(relative);
      else if (!entry.isFile()) tree.nonRegular.push(toManifestPath(relative));
      else if (isCodeFile(entry.name)) tree.files.push(toManifestPath(relative));
    }
  }

  for (const dir of COVERED_DIRS) {
    let stat;
    try {
      stat = await fs.lstat(path.join(buildDir, dir));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    if (stat.isDirectory()) await walk(dir);
    else tree.nonRegular.push(dir);
  }

  tree.files.sort();
  tree.nonRegular.sort();
  return tree;
}

/** Returns the lower-case hex SHA-256 of a file, refusing to follow a symbolic link at its path. */
export async function hashFile(filePath: string): Promise<string> {
  const handle = await fs.open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return createHash('sha256').update(await handle.readFile()).digest('hex');
  } finally {
    await handle.close();
  }
}

/**
 * Hashes every covered file under `buildDir`. Throws if the tree contains a symbolic link or a
 * special file, because a manifest must never vouch for a path whose target can change.
 */
export async function hashTree(buildDir: string): Promise<Record<string, string>> {
  const tree = await scanCoveredTree(buildDir);
  if (tree.nonRegular.length > 0) {
    const file = tree.nonRegular[0];
    throw new BacktestrError('E_INTEGRITY', `${file} under ${buildDir} is a symbolic link or special file; the build must contain regular files only`, {
      file,
      kind: 'unexpected',
    });
  }

  const files: Record<string, string> = {};
  for (const file of tree.files) files[file] = await hashFile(path.join(buildDir, file));
  return files;
}

/**
 * Returns the canonical text of a file list: one `<sha256>  <path>\n` line per file (the format
 * of `sha256sum`), sorted by path in UTF-16 code unit order.
 */
export function canonicalFileList(files: Record<string, string>): string {
  return Object.keys(files)
    .sort()
    .map((file) => `${files[file]}  ${file}\n`)
    .join('');
}

export function hashFileList(files: Record<string, string>): string {
  return createHash('sha256').update(canonicalFileList(files), 'utf8').digest('hex');
}

export function buildManifest(files: Record<string, string>, createdAt: Date): Manifest {
  const sorted: Record<string, string> = {};
  for (const file of Object.keys(files).sort()) sorted[file] = files[file];
  return {
    version: MANIFEST_VERSION,
    createdAt: createdAt.toISOString(),
    root: MANIFEST_ROOT,
    files: sorted,
    listSha256: hashFileList(sorted),
  };
}

/** Accepts only `covered-dir/.../name.ext` with no empty, `.` or `..` segment and no backslash. */
function isValidManifestPath(file: string): boolean {
  if (file.includes('\\') || file.includes('\0') || !isCodeFile(file)) return false;
  const segments = file.split('/');
  if (!COVERED_DIRS.includes(segments[0])) return false;
  return segments.every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** Parses and checks manifest text; returns null for anything that is not a valid manifest. */
export function parseManifest(text: string): Manifest | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not JSON: reported to the caller as a malformed manifest.
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const { version, createdAt, root, files, listSha256 } = value as Record<string, unknown>;

  if (version !== MANIFEST_VERSION || root !== MANIFEST_ROOT) return null;
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) return null;
  if (typeof listSha256 !== 'string' || !SHA256_HEX.test(listSha256)) return null;
  if (files === null || typeof files !== 'object' || Array.isArray(files)) return null;

  // An empty list would vouch for nothing, and the writer never produces one.
  const entries = Object.entries(files);
  if (entries.length === 0 || entries.length > MAX_MANIFEST_FILES) return null;
  const checked: Record<string, string> = {};
  for (const [file, sha256] of entries) {
    if (!isValidManifestPath(file) || typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return null;
    checked[file] = sha256;
  }

  // The list hash ties paths and hashes together, so a hand edit that skips it is caught here.
  if (hashFileList(checked) !== listSha256) return null;
  return { version: MANIFEST_VERSION, createdAt, root: MANIFEST_ROOT, files: checked, listSha256 };
}

/** Reads build/manifest.json. Fails closed: absent, oversized or invalid is a failure, never a pass. */
export async function readManifest(buildDir: string): Promise<ReadManifestResult> {
  const manifestPath = path.join(buildDir, MANIFEST_FILE);
  let text: string;
  try {
    const handle = await fs.open(manifestPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const { size } = await handle.stat();
      if (size > MAX_MANIFEST_BYTES) return { ok: false, kind: 'manifest-malformed', file: MANIFEST_FILE };
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    // Any reason the manifest cannot be read (absent, a link, no permission) fails the check.
    return { ok: false, kind: 'manifest-unreadable', file: MANIFEST_FILE, errno: errnoOf(error) };
  }

  const manifest = parseManifest(text);
  if (manifest === null) return { ok: false, kind: 'manifest-malformed', file: MANIFEST_FILE };
  return { ok: true, manifest };
}

/**
 * Checks the covered tree against a manifest and returns the first failure in path order, so
 * the same damage always names the same file. Every listed file must exist and match, and no
 * other code file, symbolic link or special file may exist in the covered folders.
 * NOTE: files are checked when this runs. A file changed after the check and before require()
 * loads it is not caught; loading from a read-only install closes that window.
 */
export async function verifyManifest(buildDir: string, manifest: Manifest): Promise<VerifyResult> {
  const tree = await scanCoveredTree(buildDir);
  const onDisk = new Set(tree.files);
  const nonRegular = new Set(tree.nonRegular);
  const paths = [...new Set([...Object.keys(manifest.files), ...tree.files, ...tree.nonRegular])].sort();

  for (const file of paths) {
    if (nonRegular.has(file)) return { ok: false, kind: 'unexpected', file };

    const expected = Object.hasOwn(manifest.files, file) ? manifest.files[file] : undefined;
    if (expected === undefined) return { ok: false, kind: 'unexpected', file };
    if (!onDisk.has(file)) return { ok: false, kind: 'missing', file };

    let actual: string;
    try {
      actual = await hashFile(path.join(buildDir, file));
    } catch (error) {
      // The scan listed the file, so failing to read it now fails the check instead of skipping it.
      return { ok: false, kind: 'unreadable', file, errno: errnoOf(error) };
    }
    if (actual !== expected) return { ok: false, kind: 'modified', file };
  }

  return { ok: true, files: Object.keys(manifest.files).length };
}
