/**
 * Canary scan: a user's workload through `backtestr serve` and the CLI (init with the production
 * key derivation, a CSV import, a backtest run, a stored secret), then a byte scan of the profile
 * directory, the system temp directory, /dev/shm and the services' logs for every canary value:
 * the symbol, a price as text and as a float64, the strategy's file name and source, its log
 * line, the secret's name and value, the password, and the data keys. The scan runs twice: while
 * a client keeps the profile unlocked (journal records not yet compacted) and after serve stops.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KernelClient } from '../../kernel/client';
import { runtimeDirFor } from '../../kernel/runtime-dir';
import { Keyring } from '../../services/storage/crypto';
import { REPO_ROOT, temporaryProfile, waitFor } from '../support/harness';

const CLI = path.join(REPO_ROOT, 'bin', 'backtestr');
const PASSWORD = 'Canary-Pass-7731-zebra';
const SYMBOL = 'CNRYQZ';
const PRICE = 4242.4242;
const STRATEGY_FILE = 'canary-edge-7f3c.ts';
const SOURCE_MARKER = 'canary-source-91be';
const LOG_MARKER = 'canary-log-55aa';
const SECRET_NAME = 'canary-name-beef';
const SECRET_VALUE = 'canary-secret-d00d-value';

interface Needle {
  label: string;
  bytes: Buffer;
}

function cli(args: string[], input: string) {
  const result = spawnSync(CLI, args, { input, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function csvText(): string {
  const lines = ['date,open,high,low,close,volume'];
  for (let i = 0; i < 400; i++) {
    const day = new Date(Date.UTC(2001, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);
    const close = i === 123 ? PRICE : 1000 + i;
    lines.push(`${day},${close},${close + 1},${close - 1},${close},${10_000 + i}`);
  }
  return `${lines.join('\n')}\n`;
}

function strategySource(): string {
  return [
    `// ${SOURCE_MARKER}`,
    'function onBar(ctx) {',
    `  if (ctx.bar.index === 0) ctx.log('${LOG_MARKER}');`,
    '  if (ctx.bar.index === 10) ctx.buy(5);',
    '  if (ctx.bar.index === 200) ctx.sell(5);',
    '}',
    '',
  ].join('\n');
}

function needlesFor(texts: Record<string, string>): Needle[] {
  const needles = Object.entries(texts).map(([label, text]) => ({ label, bytes: Buffer.from(text, 'utf8') }));
  const price = Buffer.alloc(8);
  price.writeDoubleLE(PRICE);
  needles.push({ label: 'price as float64', bytes: price });
  return needles;
}

/** Lists every regular file below `dir`; with `since`, only below top-level entries changed after it. */
function filesBelow(dir: string, since?: number): string[] {
  const files: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EACCES') return files;
    throw error;
  }
  for (const name of names) {
    const entry = path.join(dir, name);
    let stats: fs.Stats;
    try {
      stats = fs.lstatSync(entry);
    } catch (error) {
      // Other processes create and delete temporary files while the scan runs.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    if (since !== undefined && stats.mtimeMs < since) continue;
    if (stats.isDirectory()) files.push(...filesBelow(entry));
    else if (stats.isFile()) files.push(entry);
  }
  return files;
}

function scan(files: string[], extraTexts: Record<string, string>, needles: Needle[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const needle of needles) if (bytes.includes(needle.bytes)) found.push(`${needle.label} in ${file}`);
  }
  for (const [name, text] of Object.entries(extraTexts)) {
    const bytes = Buffer.from(text, 'utf8');
    for (const needle of needles) if (bytes.includes(needle.bytes)) found.push(`${needle.label} in ${name}`);
  }
  return found;
}

describe('canary scan at rest', () => {
  let profile: string;
  let inputDir: string;
  let serve: ChildProcessWithoutNullStreams;
  let serveOutput = '';
  const startedAt = Date.now() - 1_000;

  beforeAll(async () => {
    profile = temporaryProfile();
    inputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-canary-input-'));
    fs.writeFileSync(path.join(inputDir, 'bars.csv'), csvText());
    fs.writeFileSync(path.join(inputDir, STRATEGY_FILE), strategySource());
    serve = spawn(CLI, ['serve', '--profile', profile, '--json'], { env: { ...process.env, BACKTESTR_DEBUG: '1' } });
    serve.stdout.on('data', (chunk: Buffer) => (serveOutput += chunk.toString()));
    serve.stderr.on('data', (chunk: Buffer) => (serveOutput += chunk.toString()));
    await waitFor(() => serveOutput.includes('runtimeDir'), 30_000, 'serve to report its runtime directory');
  }, 60_000);

  afterAll(async () => {
    if (serve.exitCode === null && serve.signalCode === null) {
      serve.kill('SIGTERM');
      await new Promise((resolve) => serve.once('exit', resolve));
    }
    fs.rmSync(profile, { recursive: true, force: true });
    fs.rmSync(inputDir, { recursive: true, force: true });
  });

  test('no canary on disk or in logs', async () => {
    const common = ['--profile', profile, '--password-stdin'];
    const steps = [
      cli(['init', ...common], `${PASSWORD}\n`),
      cli(['import', path.join(inputDir, 'bars.csv'), '--symbol', SYMBOL, ...common], `${PASSWORD}\n`),
      cli(['run', '--strategy', path.join(inputDir, STRATEGY_FILE), '--symbol', SYMBOL, ...common], `${PASSWORD}\n`),
      cli(['secret', 'put', SECRET_NAME, ...common], `${PASSWORD}\n${SECRET_VALUE}\n`),
    ];
    steps.forEach((step, index) => expect([index, step.status, step.stderr]).toEqual([index, 0, '']));
    // The run printed the strategy's log line to the user, so the workload really carried it.
    expect(steps[2].stdout).toContain(LOG_MARKER);

    const texts = { symbol: SYMBOL, 'price as text': String(PRICE), 'strategy file': STRATEGY_FILE, 'strategy source': SOURCE_MARKER, 'strategy log': LOG_MARKER, 'secret name': SECRET_NAME, 'secret value': SECRET_VALUE, password: PASSWORD };
    const needles = needlesFor(texts);
    const written = (): string[] => [
      ...filesBelow(profile),
      ...filesBelow(os.tmpdir(), startedAt).filter((file) => !file.startsWith(inputDir)),
      ...filesBelow('/dev/shm'),
    ];

    // While a session keeps the profile unlocked: the journal holds the uncompacted records.
    const client = await KernelClient.connect(runtimeDirFor(profile));
    await client.call('auth.unlock', { password: PASSWORD });
    await client.call('storage.putSecret', { name: `${SECRET_NAME}-2`, value: `${SECRET_VALUE}-2` });
    const durableWhileUnlocked = [...filesBelow(profile), ...filesBelow(os.tmpdir(), startedAt).filter((file) => !file.startsWith(inputDir))];
    expect(durableWhileUnlocked.some((file) => file.endsWith('.sealed'))).toBe(true);
    expect(scan(durableWhileUnlocked, {}, needles)).toEqual([]);
    await client.close();

    serve.kill('SIGTERM');
    await new Promise((resolve) => serve.once('exit', resolve));

    // The data keys, read back with the password after everything stopped.
    const keyring = await Keyring.open(path.join(profile, 'data', 'keyring.bin'), PASSWORD);
    for (const purpose of ['store', 'vault']) {
      const key = Buffer.from(keyring.currentKey(purpose).key);
      needles.push({ label: `${purpose} key`, bytes: key }, { label: `${purpose} key (hex)`, bytes: Buffer.from(key.toString('hex')) }, { label: `${purpose} key (base64)`, bytes: Buffer.from(key.toString('base64')) });
    }
    keyring.lock();

    const files = written();
    expect(files.some((file) => file.endsWith('security.log'))).toBe(true);
    expect(serveOutput).toContain('"service":"storage"');
    expect(scan(files, { 'serve output and service logs': serveOutput.replace(/"runtimeDir":"[^"]*"/, '') }, needles)).toEqual([]);
  }, 180_000);
});
