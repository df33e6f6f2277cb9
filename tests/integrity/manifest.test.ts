import { createHash } from 'node:crypto';
import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import {
  buildManifest,
  canonicalFileList,
  hashTree,
  parseManifest,
  readManifest,
  verifyManifest,
  type Manifest,
} from '../../ops/manifest/manifest';
import { createFakeBuild, FAKE_COVERED_COUNT, FAKE_FILES, type FakeBuild } from './fake-build';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('manifest functions', () => {
  let build: FakeBuild;
  let manifest: Manifest;

  beforeEach(async () => {
    build = createFakeBuild();
    manifest = buildManifest(await hashTree(build.buildDir), new Date('2026-01-02T03:04:05Z'));
  });

  afterEach(() => {
    build.cleanup();
  });

  test('hashTree covers code files only', async () => {
    const files = await hashTree(build.buildDir);
    expect(Object.keys(files)).toEqual([
      'kernel/main.js',
      'ops/manifest/manifest.js',
      'protocol/errors.js',
      'services/auth/service.js',
      'services/monitor/service.js',
    ]);
    expect(files['kernel/main.js']).toBe(sha256(FAKE_FILES['kernel/main.js']));
  });

  test('buildManifest sorts files and hashes the list', () => {
    expect(manifest.version).toBe(1);
    expect(manifest.root).toBe('build');
    expect(manifest.createdAt).toBe('2026-01-02T03:04:05.000Z');
    expect(Object.keys(manifest.files)).toEqual([...Object.keys(manifest.files)].sort());

    const list = canonicalFileList(manifest.files);
    expect(list.split('\n')[0]).toBe(`${sha256(FAKE_FILES['kernel/main.js'])}  kernel/main.js`);
    expect(manifest.listSha256).toBe(sha256(list));
  });

  test('parseManifest round trips a valid manifest', () => {
    expect(parseManifest(JSON.stringify(manifest))).toEqual(manifest);
  });

  const validHash = 'a'.repeat(64);
  test.each<[string, (m: Manifest) => unknown]>([
    ['version 2', (m) => ({ ...m, version: 2 })],
    ['other root', (m) => ({ ...m, root: 'dist' })],
    ['invalid createdAt', (m) => ({ ...m, createdAt: 'yesterday' })],
    ['files as array', (m) => ({ ...m, files: [] })],
    ['upper-case hash', (m) => ({ ...m, files: { ...m.files, 'kernel/main.js': 'A'.repeat(64) } })],
    ['short hash', (m) => ({ ...m, files: { ...m.files, 'kernel/main.js': 'abc' } })],
    ['parent segment', (m) => ({ ...m, files: { ...m.files, 'kernel/../../etc/x.js': validHash } })],
    ['absolute path', (m) => ({ ...m, files: { ...m.files, '/kernel/x.js': validHash } })],
    ['uncovered folder', (m) => ({ ...m, files: { ...m.files, 'bench/x.js': validHash } })],
    ['source map path', (m) => ({ ...m, files: { ...m.files, 'kernel/main.js.map': validHash } })],
    ['backslash path', (m) => ({ ...m, files: { ...m.files, 'kernel\\x.js': validHash } })],
    ['edited hash, stale list', (m) => ({ ...m, files: { ...m.files, 'kernel/main.js': validHash } })],
    ['missing listSha256', (m) => ({ ...m, listSha256: undefined })],
    ['no files', (m) => ({ ...m, files: {}, listSha256: createHash('sha256').update('').digest('hex') })],
  ])('parseManifest rejects %s', (_name, mutate) => {
    expect(parseManifest(JSON.stringify(mutate(manifest)))).toBeNull();
  });

  test('parseManifest rejects non-JSON', () => {
    expect(parseManifest('{"version":1,')).toBeNull();
    expect(parseManifest('null')).toBeNull();
  });

  test('verifyManifest passes an untouched tree', async () => {
    expect(await verifyManifest(build.buildDir, manifest)).toEqual({ ok: true, files: FAKE_COVERED_COUNT });
  });

  test('non-code files may change freely', async () => {
    build.write('kernel/main.js.map', '{"changed":true}\n');
    build.write('services/auth/notes.txt', 'not code\n');
    build.write('bench/new.js', 'outside the covered folders\n');
    expect(await verifyManifest(build.buildDir, manifest)).toEqual({ ok: true, files: FAKE_COVERED_COUNT });
  });

  test.each<[string, (b: FakeBuild) => void, string, string]>([
    ['modified file', (b) => b.write('services/auth/service.js', 'exports.authService = { evil: true };\n'), 'modified', 'services/auth/service.js'],
    ['one byte appended', (b) => b.write('protocol/errors.js', `${FAKE_FILES['protocol/errors.js']} `), 'modified', 'protocol/errors.js'],
    ['missing file', (b) => rmSync(path.join(b.buildDir, 'services/monitor/service.js')), 'missing', 'services/monitor/service.js'],
    ['extra .js file', (b) => b.write('services/auth/backdoor.js', 'x\n'), 'unexpected', 'services/auth/backdoor.js'],
    ['extra .cjs file', (b) => b.write('kernel/loader.cjs', 'x\n'), 'unexpected', 'kernel/loader.cjs'],
    ['extra native addon', (b) => b.write('protocol/fast.node', 'x\n'), 'unexpected', 'protocol/fast.node'],
    ['missing covered folder', (b) => rmSync(path.join(b.buildDir, 'kernel'), { recursive: true }), 'missing', 'kernel/main.js'],
  ])('verifyManifest detects %s', async (_name, damage, kind, file) => {
    damage(build);
    expect(await verifyManifest(build.buildDir, manifest)).toEqual({ ok: false, kind, file });
  });

  test('symlink in covered folder is unexpected', async () => {
    const outside = path.join(build.root, 'outside.js');
    writeFileSync(outside, FAKE_FILES['services/auth/service.js']);
    rmSync(path.join(build.buildDir, 'services/auth/service.js'));
    symlinkSync(outside, path.join(build.buildDir, 'services/auth/service.js'));

    expect(await verifyManifest(build.buildDir, manifest)).toEqual({ ok: false, kind: 'unexpected', file: 'services/auth/service.js' });
  });

  test('symlinked directory is unexpected', async () => {
    symlinkSync(path.join(build.buildDir, 'protocol'), path.join(build.buildDir, 'services/linked'));
    expect(await verifyManifest(build.buildDir, manifest)).toEqual({ ok: false, kind: 'unexpected', file: 'services/linked' });
  });

  test('first bad file in path order is reported', async () => {
    build.write('services/monitor/service.js', 'changed\n');
    build.write('kernel/zz-extra.js', 'x\n');
    expect(await verifyManifest(build.buildDir, manifest)).toEqual({ ok: false, kind: 'unexpected', file: 'kernel/zz-extra.js' });
  });

  test('hashTree rejects a symlink', async () => {
    symlinkSync('/etc/hostname', path.join(build.buildDir, 'kernel/link.js'));
    await expect(hashTree(build.buildDir)).rejects.toBeInstanceOf(BacktestrError);
    await expect(hashTree(build.buildDir)).rejects.toMatchObject({ code: 'E_INTEGRITY' });
  });

  test('readManifest fails closed', async () => {
    expect(await readManifest(build.buildDir)).toMatchObject({ ok: false, kind: 'manifest-unreadable', file: 'manifest.json', errno: 'ENOENT' });

    writeFileSync(path.join(build.buildDir, 'manifest.json'), '');
    expect(await readManifest(build.buildDir)).toEqual({ ok: false, kind: 'manifest-malformed', file: 'manifest.json' });

    writeFileSync(path.join(build.buildDir, 'manifest.json'), JSON.stringify(manifest));
    expect(await readManifest(build.buildDir)).toEqual({ ok: true, manifest });
  });
});
