/**
 * `backtestr`: the command-line front end of the kernel.
 *
 *   backtestr demo | init | import FILE --symbol S | run --strategy FILE --symbol S [--param k=v]
 *   backtestr results | serve | audit ps | passwd | rekey [store|vault]
 *   backtestr secret put NAME | secret get NAME | secret list | secret delete NAME
 *
 * Every command takes --profile DIR and --json; password-taking commands take --password-stdin.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BacktestrError, toBacktestrError } from '../../protocol/errors';
import {
  auditPsCommand, demoCommand, importCommand, initCommand, passwdCommand, rekeyCommand, REKEY_PURPOSES, resultsCommand, runCommand, secretCommand, serveCommand,
  type CommonOptions, type SecretAction,
} from './commands';

const USAGE = `Usage: backtestr COMMAND [options]

Commands:
  demo                              create a temporary profile, import the S&P 500 bars, run the
                                    SMA crossover (50/200) in the sandbox and print its metrics
  init                              create the profile (asks for a new password)
  import FILE --symbol S            import daily OHLCV bars from a CSV file
  run --strategy FILE --symbol S    run a strategy on stored bars and store the result
      [--param NAME=NUMBER ...] [--from YYYY-MM-DD] [--to YYYY-MM-DD]
      [--cash N]                    starting cash (default 100000)
      [--commission F]              commission as a fraction of traded value (default 0)
      [--memory-limit-mb N]         strategy heap limit in MB (default 512)
      [--timeout-ms N]              wall-clock limit of the run in ms (default 30000)
      [--cpu-time-ms N]             CPU-time limit of the strategy in ms (default 20000)
      [--max-orders N]              orders a run may place (default 100000)
      [--max-log-lines N]           lines ctx.log may write (default 1000)
  results [--limit N]              list the newest stored backtests (default 50, at most 1000)
  secret put NAME                   store a secret (for example a broker API key) in the
                                    encrypted vault; asks for the value without echo
  secret get NAME                   print a secret's value
  secret list                       list the names of the stored secrets, never their values
  secret delete NAME                delete a secret
  passwd                            change the profile password (asks for the current one,
                                    then the new one twice)
  rekey [store|vault]               replace the data keys of one purpose (default: both) and
                                    destroy the old ones
  serve                             run the kernel in the foreground until SIGINT, SIGTERM or SIGHUP
  audit ps                          show each service of the running kernel

Options:
  --profile DIR       profile directory (default: $XDG_DATA_HOME/backtestr or ~/.local/share/backtestr)
  --json              print one JSON document instead of tables
  --password-stdin    read the password from the first line of standard input; for passwd, the
                      current password from line 1 and the new one from line 2; for secret put,
                      the value from line 2 to the end (one final newline removed)
  -h, --help          show this help

Passwords and secret values are never read from arguments or the environment.

Set BACKTESTR_DEBUG=1 to see the services' logs on stderr.`;

/** Maximum number of backtests storage.listBacktests returns; storage's own schema enforces it too. */
const MAX_BACKTEST_LIST_LIMIT = 1_000;

/** Parses --limit: how many of the newest backtests `results` lists. */
function parseLimit(text: string): number {
  const limit = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_BACKTEST_LIST_LIMIT) {
    throw new BacktestrError('E_INVALID_PARAMS', `invalid --limit ${text}: expected a whole number from 1 to ${MAX_BACKTEST_LIST_LIMIT}`);
  }
  return limit;
}

function defaultProfileDir(): string {
  const dataHome = process.env.XDG_DATA_HOME && path.isAbsolute(process.env.XDG_DATA_HOME) ? process.env.XDG_DATA_HOME : path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'backtestr');
}

function parseParams(pairs: string[]): Record<string, number> {
  const params: Record<string, number> = {};
  for (const pair of pairs) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(pair);
    const value = match ? Number(match[2]) : NaN;
    if (!match || !Number.isFinite(value)) throw new BacktestrError('E_INVALID_PARAMS', `invalid --param ${pair}: expected NAME=NUMBER, for example fast=50`);
    params[match[1]] = value;
  }
  return params;
}

function optionalNumber(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new BacktestrError('E_INVALID_PARAMS', `invalid --${name} ${value}: expected a number`);
  return number;
}

/** CLI flags of `run` and the sandbox option each one sets. */
const RUN_OPTION_FLAGS = {
  cash: 'cash',
  commission: 'commission',
  'memory-limit-mb': 'memoryLimitMb',
  'timeout-ms': 'timeoutMs',
  'cpu-time-ms': 'cpuTimeMs',
  'max-orders': 'maxOrders',
  'max-log-lines': 'maxLogLines',
} as const;

function runOptionsFrom(values: Partial<Record<keyof typeof RUN_OPTION_FLAGS, string>>): Record<string, number> {
  const runOptions: Record<string, number> = {};
  for (const [flag, option] of Object.entries(RUN_OPTION_FLAGS) as [keyof typeof RUN_OPTION_FLAGS, string][]) {
    const value = optionalNumber(values[flag], flag);
    if (value !== undefined) runOptions[option] = value;
  }
  return runOptions;
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new BacktestrError('E_INVALID_PARAMS', `missing --${name}; see backtestr --help`);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      profile: { type: 'string' },
      json: { type: 'boolean', default: false },
      'password-stdin': { type: 'boolean', default: false },
      symbol: { type: 'string' },
      strategy: { type: 'string' },
      param: { type: 'string', multiple: true, default: [] },
      from: { type: 'string' },
      to: { type: 'string' },
      cash: { type: 'string' },
      commission: { type: 'string' },
      'memory-limit-mb': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'cpu-time-ms': { type: 'string' },
      'max-orders': { type: 'string' },
      'max-log-lines': { type: 'string' },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const options: CommonOptions = { profile: path.resolve(values.profile ?? defaultProfileDir()), json: values.json, passwordStdin: values['password-stdin'] };
  const repoRoot = path.resolve(__dirname, '..', '..', '..');

  switch (command) {
    case 'demo':
      return demoCommand(options, repoRoot);
    case 'init':
      return initCommand(options);
    case 'import':
      if (rest.length !== 1) throw new BacktestrError('E_INVALID_PARAMS', 'import takes one FILE: backtestr import FILE --symbol S');
      return importCommand(options, rest[0], required(values.symbol, 'symbol'));
    case 'run':
      return runCommand(options, {
        strategy: required(values.strategy, 'strategy'),
        symbol: required(values.symbol, 'symbol'),
        params: parseParams(values.param),
        from: values.from,
        to: values.to,
        runOptions: runOptionsFrom(values),
      });
    case 'results':
      return resultsCommand(options, values.limit === undefined ? undefined : parseLimit(values.limit));
    case 'serve':
      return serveCommand(options);
    case 'secret': {
      const action = rest[0] as SecretAction | undefined;
      if (!action || !['put', 'get', 'list', 'delete'].includes(action)) {
        throw new BacktestrError('E_INVALID_PARAMS', `unknown secret command ${action ?? '(none)'}; try: backtestr secret put|get|delete NAME, or backtestr secret list`);
      }
      // The extra arguments are not echoed: a mistaken `secret put NAME VALUE` must not print the value.
      if (rest.length > (action === 'list' ? 1 : 2)) {
        throw new BacktestrError('E_INVALID_PARAMS', `secret ${action} takes ${action === 'list' ? 'no arguments' : 'one NAME'}; a value is read from standard input or a prompt, never from arguments`);
      }
      return secretCommand(options, action, rest[1]);
    }
    case 'passwd':
      if (rest.length > 0) throw new BacktestrError('E_INVALID_PARAMS', 'passwd takes no arguments; it asks for the passwords');
      return passwdCommand(options);
    case 'rekey': {
      const purpose = rest[0] as (typeof REKEY_PURPOSES)[number] | undefined;
      if (rest.length > 1 || (purpose !== undefined && !REKEY_PURPOSES.includes(purpose))) {
        throw new BacktestrError('E_INVALID_PARAMS', `invalid rekey purpose ${rest.join(' ')}: expected store, vault or nothing for both`);
      }
      return rekeyCommand(options, purpose);
    }
    case 'audit':
      if (rest[0] !== 'ps') throw new BacktestrError('E_INVALID_PARAMS', `unknown audit command ${rest[0] ?? '(none)'}; try: backtestr audit ps`);
      return auditPsCommand(options);
    default:
      throw new BacktestrError('E_INVALID_PARAMS', `unknown command ${command}; see backtestr --help`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    const failure = error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')
      ? new BacktestrError('E_INVALID_PARAMS', `${error.message}; see backtestr --help`)
      : toBacktestrError(error);
    if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ error: failure.toWire() })}\n`);
    const where = Object.keys(failure.details).length > 0 ? ` ${JSON.stringify(failure.details)}` : '';
    process.stderr.write(`error ${failure.code}: ${failure.message}${where}\n`);
    const flag = Object.entries(RUN_OPTION_FLAGS).find(([, option]) => option === failure.details.limit)?.[0];
    if (flag) process.stderr.write(`To raise this limit, pass --${flag} to backtestr run.\n`);
    if (failure.code === 'E_CHANNEL_CLOSED' && /the kernel \(pid \d+\) exited/.test(failure.message)) {
      process.stderr.write(`The kernel this command used has stopped: it may have belonged to another backtestr command that finished. Run the command again, or start 'backtestr serve' so that commands share one kernel.\n`);
    }
    if (failure.code === 'E_INTERNAL' && process.env.BACKTESTR_DEBUG) process.stderr.write(`${String((failure.cause as Error)?.stack ?? failure.cause)}\n`);
    process.exit(1);
  },
);
