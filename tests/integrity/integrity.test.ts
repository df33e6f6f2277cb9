import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { buildManifest, hashTree, parseManifest } from '../../ops/manifest/manifest';
import { integrityService } from '../../services/integrity/service';
import { createTestContext, invoke, type TestContext, errorOf } from '../support/service-context';
import { createFakeBuild, FAKE_COVERED_COUNT, type FakeBuild } from './fake-build';

const REPO_ROOT = path.resolve(__dirname, '../..');


async function writeManifestFor(buildDir: string): Promise<void> {
  const manifest = buildManifest(await hashTree(buildDir), new Date());
  writeFileSync(path.join(buildDir, 'manifest.json'), JSON.stringify(manifest));
}

describe('integrity service', () => {
  let build: FakeBuild;
  let t: TestContext;

  beforeEach(async () => {
    build = createFakeBuild();
    await writeManifestFor(build.buildDir);
    t = createTestContext('integrity', { installDir: build.buildDir });
  });

  afterEach(() => {
    t.cleanup();
    build.cleanup();
  });

  test('verify passes an untouched build', async () => {
    expect(await invoke(integrityService, t.ctx, 'verify', {})).toEqual({ ok: true, files: FAKE_COVERED_COUNT });
    expect(t.events).toEqual([]);
  });

  test('verify reports a modified file', async () => {
    build.write('services/auth/service.js', 'exports.authService = { evil: true };\n');

    const error = await errorOf(invoke(integrityService, t.ctx, 'verify', {}));
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details).toEqual({ file: 'services/auth/service.js', kind: 'modified' });
    expect(t.events).toEqual([
      { type: 'integrity.verify_failed', severity: 'critical', details: { file: 'services/auth/service.js', kind: 'modified' } },
    ]);
  });

  test('verify reports an extra .js file', async () => {
    build.write('kernel/injected.js', 'x\n');
    const error = await errorOf(invoke(integrityService, t.ctx, 'verify', {}));
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details).toEqual({ file: 'kernel/injected.js', kind: 'unexpected' });
  });

  test('missing manifest fails closed', async () => {
    rmSync(path.join(build.buildDir, 'manifest.json'));
    const error = await errorOf(invoke(integrityService, t.ctx, 'verify', {}));
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details).toEqual({ file: 'manifest.json', kind: 'manifest-unreadable', errno: 'ENOENT' });
    expect(t.events[0].severity).toBe('critical');
  });

  test.each([
    ['empty file', ''],
    ['truncated JSON', '{"version":1,"files":{'],
    ['empty file list', JSON.stringify({ version: 1, createdAt: 'x', root: 'build', files: {}, listSha256: '0'.repeat(64) })],
  ])('malformed manifest fails closed: %s', async (_name, text) => {
    writeFileSync(path.join(build.buildDir, 'manifest.json'), text);
    const error = await errorOf(invoke(integrityService, t.ctx, 'verify', {}));
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details).toEqual({ file: 'manifest.json', kind: 'manifest-malformed' });
  });

  test('symlinked manifest fails closed', async () => {
    const real = path.join(build.root, 'manifest-elsewhere.json');
    cpSync(path.join(build.buildDir, 'manifest.json'), real);
    rmSync(path.join(build.buildDir, 'manifest.json'));
    symlinkSync(real, path.join(build.buildDir, 'manifest.json'));

    const error = await errorOf(invoke(integrityService, t.ctx, 'verify', {}));
    expect(error.details).toEqual({ file: 'manifest.json', kind: 'manifest-unreadable', errno: 'ELOOP' });
  });

  test('verify works again after a repair', async () => {
    const original = readFileSync(path.join(build.buildDir, 'protocol/errors.js'), 'utf8');
    build.write('protocol/errors.js', 'tampered\n');
    await errorOf(invoke(integrityService, t.ctx, 'verify', {}));

    build.write('protocol/errors.js', original);
    expect(await invoke(integrityService, t.ctx, 'verify', {})).toEqual({ ok: true, files: FAKE_COVERED_COUNT });
  });

  test('unknown params are rejected', async () => {
    const error = await errorOf(invoke(integrityService, t.ctx, 'verify', { skip: true }));
    expect(error.code).toBe('E_INVALID_PARAMS');
  });
});

describe('write-manifest script', () => {
  let root: string;
  let build: FakeBuild;

  beforeAll(() => {
    // Compile the real script (and what it imports) into a private copy of a build tree.
    build = createFakeBuild();
    root = build.root;
    rmSync(path.join(build.buildDir, 'ops'), { recursive: true });
    execFileSync(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        '--outDir', build.buildDir,
        '--rootDir', REPO_ROOT,
        '--module', 'commonjs',
        '--target', 'ES2023',
        '--strict',
        '--esModuleInterop',
        '--skipLibCheck',
        '--types', 'node',
        path.join(REPO_ROOT, 'ops/manifest/write-manifest.ts'),
      ],
      { stdio: 'pipe' },
    );
  });

  afterAll(() => {
    build.cleanup();
  });

  function runWriteManifest(cwd: string, args: string[] = []): ReturnType<typeof spawnSync> {
    return spawnSync(process.execPath, [path.join(build.buildDir, 'ops/manifest/write-manifest.js'), ...args], { cwd, encoding: 'utf8' });
  }

  test('writes a manifest that verifies', async () => {
    const run = runWriteManifest(root);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);

    const manifest = parseManifest(readFileSync(path.join(build.buildDir, 'manifest.json'), 'utf8'));
    expect(manifest).not.toBeNull();
    expect(Object.keys(manifest?.files ?? {})).toEqual(
      expect.arrayContaining(['ops/manifest/manifest.js', 'ops/manifest/write-manifest.js', 'protocol/errors.js', 'kernel/main.js']),
    );
    expect(Object.keys(manifest?.files ?? {}).some((file) => file.endsWith('.map'))).toBe(false);

    const t = createTestContext('integrity', { installDir: build.buildDir });
    try {
      const result = await invoke<{ ok: boolean; files: number }>(integrityService, t.ctx, 'verify', {});
      expect(result.ok).toBe(true);
      expect(result.files).toBe(Object.keys(manifest?.files ?? {}).length);

      build.write('services/monitor/service.js', 'tampered\n');
      const error = await errorOf(invoke(integrityService, t.ctx, 'verify', {}));
      expect(error.details).toEqual({ file: 'services/monitor/service.js', kind: 'modified' });
    } finally {
      t.cleanup();
    }
  });

  test('fails without writing when no code exists', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'backtestr-empty-'));
    try {
      const run = runWriteManifest(empty, [path.join(empty, 'build')]);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('write-manifest: failed');
      expect(existsSync(path.join(empty, 'build', 'manifest.json'))).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('fails on a symlink in the build', () => {
    const linked = createFakeBuild();
    try {
      symlinkSync('/etc/hostname', path.join(linked.buildDir, 'kernel/link.js'));
      const run = runWriteManifest(linked.root);
      expect(run.status).toBe(1);
      expect(existsSync(path.join(linked.buildDir, 'manifest.json'))).toBe(false);
    } finally {
      linked.cleanup();
    }
  });
});
