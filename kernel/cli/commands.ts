/**
 * The CLI commands. Each one connects to the kernel (see connect.ts), makes its calls through
 * the control socket, and prints a table or, with --json, one JSON document.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import { MAX_PAYLOAD_BYTES } from '../../protocol/layout';
import type { KernelClient } from '../client';
import type { UnreadableServiceAudit } from '../privileges/audit-service-process';
import { privilegeDetailLines, privilegeSummaryRows } from '../privileges/format-audit';
import type { ServiceAudit } from '../privileges/proc-audit';
import { Kernel } from '../kernel';
import { connect, type Connection } from './connect';
import { formatDuration, formatMetrics, formatTable } from './format';
import { readNewPassword, readPassword, readSecretValue } from './password';

export interface CommonOptions {
  profile: string;
  json: boolean;
  passwordStdin: boolean;
}

/** Largest CSV file `import` sends: one envelope carries it. */
const MAX_CSV_BYTES = MAX_PAYLOAD_BYTES;
/** Largest strategy file `run` sends, the size the kernel and the sandbox accept. */
const MAX_STRATEGY_BYTES = 1024 * 1024;

interface RunResult {
  id: number | string;
  symbol: string;
  bars: number;
  fills: number;
  metrics: Record<string, number>;
  logs: string[];
}

function print(options: CommonOptions, json: unknown, human: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(json, null, 2)}\n` : `${human}\n`);
}

async function withConnection<T>(options: CommonOptions, action: (client: KernelClient, connection: Connection) => Promise<T>, allowEmbedded = true): Promise<T> {
  const connection = await connect(options.profile, { allowEmbedded });
  try {
    return await action(connection.client, connection);
  } finally {
    await connection.close();
  }
}

async function unlock(client: KernelClient, options: CommonOptions): Promise<void> {
  const password = await readPassword(options.passwordStdin);
  await client.call('auth.unlock', { password });
}

export async function initCommand(options: CommonOptions): Promise<void> {
  await withConnection(options, async (client) => {
    const password = await readNewPassword(options.passwordStdin);
    await client.call('auth.createProfile', { password });
  });
  print(options, { created: true, profile: options.profile }, `Created a profile in ${options.profile}`);
}

export async function importCommand(options: CommonOptions, file: string, symbol: string): Promise<void> {
  const csv = readInputFile(file, MAX_CSV_BYTES, 'CSV file');
  const result = await withConnection(options, async (client) => {
    await unlock(client, options);
    return client.call<{ symbol: string; bars: number; first: string; last: string }>('storage.importBars', { symbol, csv });
  });
  print(options, result, `Imported ${result.bars} bars of ${result.symbol} (${result.first} to ${result.last})`);
}

export interface RunOptions {
  strategy: string;
  symbol: string;
  params: Record<string, number>;
  from?: string;
  to?: string;
  /** Run options passed to the sandbox as they are: cash, commission and the limits. */
  runOptions: Record<string, number>;
}

export async function runCommand(options: CommonOptions, run: RunOptions): Promise<void> {
  const source = readInputFile(run.strategy, MAX_STRATEGY_BYTES, 'strategy file').toString('utf8');
  const result = await withConnection(options, async (client) => {
    await unlock(client, options);
    return client.call<RunResult>('backtest.run', runParams(source, run));
  });
  printRunResult(options, result);
}

function runParams(source: string, run: RunOptions): Record<string, unknown> {
  const params: Record<string, unknown> = { source, filename: path.basename(run.strategy), symbol: run.symbol, params: run.params };
  if (run.from) params.from = run.from;
  if (run.to) params.to = run.to;
  if (Object.keys(run.runOptions).length > 0) params.options = run.runOptions;
  return params;
}

function printRunResult(options: CommonOptions, result: RunResult): void {
  const json = { id: result.id, symbol: result.symbol, bars: result.bars, ...result.metrics, fills: result.metrics.fills ?? result.fills, logs: result.logs };
  const logs = result.logs.length > 0 ? `\nStrategy log (${result.logs.length} lines):\n${result.logs.join('\n')}` : '';
  print(options, json, `Backtest ${result.id} on ${result.symbol}\n${formatMetrics(result.metrics, result.bars)}${logs}`);
}

export async function resultsCommand(options: CommonOptions, limit?: number): Promise<void> {
  const list = await withConnection(options, async (client) => {
    await unlock(client, options);
    return client.call<StoredBacktest[]>('storage.listBacktests', limit === undefined ? {} : { limit });
  });
  const rows = list.map((entry) => [
    String(entry.id),
    new Date(entry.createdAt).toISOString().replace('T', ' ').slice(0, 19),
    entry.strategyFile,
    entry.symbol,
    formatParams(entry.params),
    `${(entry.metrics.total_return * 100).toFixed(2)} %`,
    entry.metrics.sharpe.toFixed(3),
  ]);
  print(options, list, list.length === 0 ? 'No backtests stored yet' : formatTable(['id', 'created (UTC)', 'strategy', 'symbol', 'params', 'return', 'sharpe'], rows));
}

interface StoredBacktest {
  id: number | string;
  createdAt: number;
  strategyFile: string;
  symbol: string;
  params: Record<string, number>;
  metrics: Record<string, number>;
}

function formatParams(params: Record<string, number>): string {
  const text = Object.entries(params).map(([name, value]) => `${name}=${value}`).join(' ');
  return text.length > 0 ? text : '-';
}

export async function passwdCommand(options: CommonOptions): Promise<void> {
  await withConnection(options, async (client) => {
    const current = await readPassword(options.passwordStdin, 'Current password: ');
    const next = await readNewPassword(options.passwordStdin, 1);
    await client.call('auth.unlock', { password: current });
    await client.call('storage.changePassword', { current, next });
  });
  print(options, { changed: true }, 'Password changed; the old password no longer unlocks the profile');
}

export const REKEY_PURPOSES = ['store', 'vault'] as const;

export async function rekeyCommand(options: CommonOptions, purpose: (typeof REKEY_PURPOSES)[number] | undefined): Promise<void> {
  const result = await withConnection(options, async (client) => {
    await unlock(client, options);
    return client.call<{ rekeyed: { purpose: string; generation: number }[] }>('storage.rekey', purpose ? { purpose } : {});
  });
  print(options, result, result.rekeyed.map((entry) => `New ${entry.purpose} key: generation ${entry.generation}; older generations destroyed`).join('\n'));
}

export type SecretAction = 'put' | 'get' | 'list' | 'delete';

export async function secretCommand(options: CommonOptions, action: SecretAction, name: string | undefined): Promise<void> {
  if (action !== 'list' && name === undefined) throw new BacktestrError('E_INVALID_PARAMS', `secret ${action} takes a NAME: backtestr secret ${action} NAME`);
  await withConnection(options, async (client) => {
    await unlock(client, options);
    switch (action) {
      case 'put': {
        const value = await readSecretValue(options.passwordStdin);
        await client.call('storage.putSecret', { name, value });
        print(options, { stored: true, name }, `Stored secret ${name}`);
        return;
      }
      case 'get': {
        const secret = await client.call<{ name: string; value: string }>('storage.getSecret', { name });
        print(options, secret, secret.value);
        return;
      }
      case 'list': {
        const { names } = await client.call<{ names: string[] }>('storage.listSecrets', {});
        print(options, names, names.length === 0 ? 'No secrets stored' : names.join('\n'));
        return;
      }
      case 'delete':
        await client.call('storage.deleteSecret', { name });
        print(options, { deleted: true, name }, `Deleted secret ${name}`);
        return;
    }
  });
}

interface AuditService {
  name: string;
  pid: number | null;
  state: string;
  uptimeMs: number;
  restarts: number;
  lastExit: { reason: string; detail: string } | null;
  messages: { sent: number; received: number; rejected: number };
  privileges: ServiceAudit | UnreadableServiceAudit | null;
}

export async function auditPsCommand(options: CommonOptions): Promise<void> {
  const audit = await withConnection(options, (client) => client.call<{ kernel: Record<string, unknown>; services: AuditService[] }>('kernel.audit', {}), false);
  const rows = audit.services.map((service) => [
    service.name, service.pid ?? '-', service.state, formatDuration(service.uptimeMs), service.restarts,
    service.messages.sent, service.messages.received, service.messages.rejected,
    service.lastExit ? `${service.lastExit.reason} (${service.lastExit.detail})` : '-',
  ]);
  const clients = audit.kernel.clients as { phase: string }[];
  const header = `kernel pid ${audit.kernel.pid}, up ${formatDuration(audit.kernel.uptimeMs as number)}, ${clients.length} client session(s) (${clients.filter((client) => client.phase === 'unlocked').length} unlocked), rejected control frames ${audit.kernel.rejectedControlFrames}`;
  const audited = audit.services.flatMap((service) => (service.privileges ? [service.privileges] : []));
  const privileges = privilegeSummaryRows(audited);
  const details = privilegeDetailLines(audited);
  const privilegeText = audited.length === 0 ? 'privileges: not enforced (disabled or not Linux)' : `${formatTable(privileges.headers, privileges.rows)}${details.length > 0 ? `\n${details.join('\n')}` : ''}`;
  print(options, audit, `${header}\n${formatTable(['service', 'pid', 'state', 'uptime', 'restarts', 'sent', 'received', 'rejected', 'last exit'], rows)}\n\n${privilegeText}`);
}

export async function serveCommand(options: CommonOptions): Promise<void> {
  const kernel = new Kernel({ profileDir: options.profile, forwardLogs: Boolean(process.env.BACKTESTR_DEBUG) });
  await kernel.start();
  print(options, { pid: process.pid, runtimeDir: kernel.runtimeDir }, `Kernel ${process.pid} serving ${kernel.profileDir}; stop it with Ctrl-C`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Closing the terminal sends SIGHUP: stop in order, so storage seals and removes its plaintext.
    process.once('SIGHUP', stop);
  });
  await kernel.stop();
}

/** Returns the path of the S&P 500 daily bars that the vega-datasets package ships. */
export function sp500CsvPath(): string {
  return path.join(path.dirname(require.resolve('vega-datasets')), '..', 'data', 'sp500-2000.csv');
}

/** Generates a password that meets the policy: random base64url plus one of each required class. */
function generatePassword(): string {
  return `${crypto.randomBytes(24).toString('base64url')}aZ7!`;
}

export async function demoCommand(options: CommonOptions, repoRoot: string): Promise<void> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-demo-'));
  const demoOptions = { ...options, profile };
  const password = generatePassword();
  const strategyPath = path.join(repoRoot, 'examples', 'sma-crossover.ts');
  const started = Date.now();
  try {
    const result = await withConnection(demoOptions, async (client, connection) => {
      const integrity = await client.call<{ ok: boolean; files: number }>('integrity.verify', {});
      if (!options.json) process.stderr.write(`Services started and ${integrity.files} installed files verified (kernel ${connection.embedded ? 'embedded' : 'attached'})\n`);
      await client.call('auth.createProfile', { password });
      await client.call('auth.unlock', { password });
      const imported = await client.call<{ bars: number; first: string; last: string }>('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(sp500CsvPath()) });
      if (!options.json) process.stderr.write(`Imported ${imported.bars} S&P 500 daily bars (${imported.first} to ${imported.last})\n`);
      const source = fs.readFileSync(strategyPath, 'utf8');
      return client.call<RunResult>('backtest.run', { source, filename: path.basename(strategyPath), symbol: 'SPX', params: { fast: 50, slow: 200 } });
    });
    if (!options.json) process.stderr.write(`Done in ${Date.now() - started} ms; all services stopped\n`);
    printRunResult(options, result);
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Reads an input file after checking that it is a regular file of at most `maxBytes`, so that
 * /dev/zero or a huge file is rejected before anything is read or a password is asked for.
 */
function readInputFile(file: string, maxBytes: number, what: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    throw new BacktestrError('E_NOT_FOUND', `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { file });
  }
  if (!stat.isFile()) throw new BacktestrError('E_INVALID_PARAMS', `${what} ${file} is not a regular file`, { file });
  if (stat.size > maxBytes) {
    throw new BacktestrError('E_INVALID_PARAMS', `${what} ${file} has ${stat.size} bytes; the maximum is ${maxBytes} bytes`, { file, size: stat.size, maxBytes });
  }
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new BacktestrError('E_NOT_FOUND', `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { file });
  }
}
