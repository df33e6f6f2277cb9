/**
 * Writes build/manifest.json after `tsc`. Run from the repository root:
 *   node build/ops/manifest/write-manifest.js [buildDir]
 * buildDir defaults to ./build. Exits with status 1, and writes nothing, if the tree contains a
 * symbolic link or special file or no code file at all (a sign that `tsc` did not run).
 * NOTE: the manifest is unsigned in this version; see manifest.ts for what that leaves open.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildManifest, COVERED_DIRS, hashTree, MANIFEST_FILE } from './manifest';

async function writeFileAtomic(filePath: string, text: string): Promise<void> {
  const tempPath = `${filePath}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(tempPath, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tempPath, filePath);

  const dir = await fs.open(path.dirname(filePath), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function main(args: string[]): Promise<void> {
  const buildDir = path.resolve(args[0] ?? 'build');
  const files = await hashTree(buildDir);
  const count = Object.keys(files).length;
  if (count === 0) {
    throw new Error(`no code files under ${COVERED_DIRS.map((dir) => path.join(buildDir, dir)).join(', ')}; run tsc first`);
  }

  const manifest = buildManifest(files, new Date());
  const manifestPath = path.join(buildDir, MANIFEST_FILE);
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  process.stdout.write(`write-manifest: wrote ${manifestPath} (${count} files, list sha256 ${manifest.listSha256})\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`write-manifest: failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
