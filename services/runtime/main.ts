/**
 * Entry point of every service process:
 *   node --no-node-snapshot build/services/runtime/main.js --service NAME --endpoint ipc://...
 *        --profile DIR --state-dir DIR --install-dir DIR
 *        [--session-lifetime-ms N] [--weak-kdf-for-tests]   (test settings, see ServiceSettings)
 * The channel secret arrives on fd 3 (see secret-pipe.ts). The process connects to the kernel,
 * runs the service's start(), reports Ready, then handles requests until the kernel sends
 * Shutdown or the channel fails.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Channel } from '../../protocol/channel';
import { EnvelopeCodec } from '../../protocol/envelope';
import { BacktestrError } from '../../protocol/errors';
import { deriveDirectionKeys, wipe } from '../../protocol/keys';
import { MessageKind, PeerId } from '../../protocol/layout';
import { parse } from '../../protocol/schema';
import { NanomsgTransport } from '../../protocol/transport';
import { lockDown } from '../../ops/native/self-restrict';
import { ServiceExit } from './exit-codes';
import { stderrDestination } from './log-destination';
import { loadServiceDefinition } from './registry';
import { readSecretFromPipe } from './secret-pipe';
import { SERVICE_NAMES, type SecurityEvent, type ServiceContext, type ServiceDefinition, type ServiceName, type ServiceSettings } from './types';

/** Time a service's own calls through the kernel may take. */
const CALL_TIMEOUT_MS = 30_000;
/** Time stop() and the exit handlers get before the process kills itself. */
const STOP_DEADLINE_MS = 5000;

interface ServiceArguments {
  service: ServiceName;
  endpoint: string;
  profileDir: string;
  stateDir: string;
  installDir: string;
  ramDir?: string;
  /** Set by the kernel when it started this process through the privilege launcher. */
  lockDown: boolean;
  settings: ServiceSettings;
}

function parseServiceArguments(argv: string[]): ServiceArguments {
  const { values } = parseArgs({
    args: argv,
    options: {
      service: { type: 'string' },
      endpoint: { type: 'string' },
      profile: { type: 'string' },
      'state-dir': { type: 'string' },
      'install-dir': { type: 'string' },
      'ram-dir': { type: 'string' },
      'lock-down': { type: 'boolean' },
      'session-lifetime-ms': { type: 'string' },
      'weak-kdf-for-tests': { type: 'boolean' },
    },
    strict: true,
  });
  const service = values.service as ServiceName;
  if (!SERVICE_NAMES.includes(service)) throw new BacktestrError('E_INTERNAL', `unknown service ${String(values.service)}`);
  for (const key of ['endpoint', 'profile', 'state-dir', 'install-dir'] as const) {
    if (!values[key]) throw new BacktestrError('E_INTERNAL', `missing --${key}`);
  }
  const settings: ServiceSettings = {};
  if (values['session-lifetime-ms'] !== undefined) {
    const lifetime = Number(values['session-lifetime-ms']);
    if (!Number.isSafeInteger(lifetime) || lifetime <= 0) throw new BacktestrError('E_INTERNAL', `invalid --session-lifetime-ms ${values['session-lifetime-ms']}: expected a positive integer`);
    settings.sessionLifetimeMs = lifetime;
  }
  if (values['weak-kdf-for-tests'] === true) settings.weakKdfForTests = true;
  return { service, endpoint: values.endpoint!, profileDir: values.profile!, stateDir: values['state-dir']!, installDir: values['install-dir']!, ramDir: values['ram-dir'], lockDown: values['lock-down'] === true, settings };
}

function buildContext(args: ServiceArguments, channel: Channel, log: pino.Logger): ServiceContext {
  return {
    service: args.service,
    profileDir: args.profileDir,
    stateDir: args.stateDir,
    installDir: args.installDir,
    ramDir: args.ramDir,
    log,
    call: (method, params) => channel.request(method, params, CALL_TIMEOUT_MS),
    securityEvent: (event: SecurityEvent) => {
      if (channel.isClosed) {
        log.warn({ event: event.type }, 'security event not sent: channel closed');
        return;
      }
      channel.send(MessageKind.SecurityEvent, event);
    },
  };
}

function dispatch(definition: ServiceDefinition, ctx: ServiceContext) {
  const prefix = `${definition.name}.`;
  return async (method: string, params: unknown): Promise<unknown> => {
    const shortName = method.startsWith(prefix) ? method.slice(prefix.length) : undefined;
    const handler = shortName !== undefined && Object.hasOwn(definition.methods, shortName) ? definition.methods[shortName] : undefined;
    if (!handler) throw new BacktestrError('E_UNKNOWN_METHOD', `${definition.name} has no method ${method}`, { method });
    const checked = parse(handler.params, params, 'params');
    return handler.handle(checked, ctx);
  };
}

async function main(): Promise<void> {
  // Files a service creates are private to the user, whatever umask the desktop session had.
  process.umask(0o077);
  const args = parseServiceArguments(process.argv.slice(2));
  // Before any service code loads: not dumpable again (execve reset it) and no execve from here on.
  if (args.lockDown) lockDown();
  const log = pino({ base: { service: args.service, pid: process.pid } }, stderrDestination());

  const secret = readSecretFromPipe();
  const selfId = PeerId[args.service];
  const keys = deriveDirectionKeys(secret, selfId, PeerId.kernel);
  wipe(secret);

  // The kernel creates the state directory before the launch; creating it here only when it is
  // missing keeps services whose policy gives no write access from needing any.
  if (!fs.existsSync(args.stateDir)) fs.mkdirSync(args.stateDir, { recursive: true, mode: 0o700 });
  const transport = new NanomsgTransport(args.endpoint, 'connect');
  const channel = new Channel(transport, new EnvelopeCodec(keys, selfId, PeerId.kernel), 'kernel');
  const definition = loadServiceDefinition(args.service, args.settings);
  const ctx = buildContext(args, channel, log);
  let stopping = false;

  const stop = async (exitCode: number, reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'service stopping');
    // Last resort: a stop() or an exit handler that hangs must not leave this process behind.
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), STOP_DEADLINE_MS).unref();
    try {
      await definition.stop?.(ctx);
    } catch (error) {
      log.error({ err: error }, 'service stop failed');
      exitCode = exitCode === ServiceExit.ok ? ServiceExit.startFailed : exitCode;
    }
    channel.close(reason);
    process.exit(exitCode);
  };

  channel.on('violation', (violation) => {
    log.error({ reason: violation.reason }, 'kernel envelope rejected');
    void stop(ServiceExit.protocolViolation, `protocol violation: ${violation.reason}`);
  });
  channel.on('closed', (reason) => {
    void stop(stopping ? ServiceExit.ok : ServiceExit.channelLost, reason);
  });
  channel.on('message', (kind, body) => {
    if (kind === MessageKind.Heartbeat) channel.send(MessageKind.HeartbeatAck, { at: (body as { at: number }).at });
    else if (kind === MessageKind.Shutdown) void stop(ServiceExit.ok, 'shutdown requested by the kernel');
    else log.warn({ kind }, 'unexpected message kind ignored');
  });
  channel.onRequest(dispatch(definition, ctx));
  // The kernel owns the write end of our stdin and never writes to it. When the kernel dies for
  // any reason, even SIGKILL, the pipe reaches end-of-file, so no service outlives its kernel.
  process.stdin.on('data', () => undefined);
  process.stdin.on('end', () => void stop(ServiceExit.channelLost, 'kernel went away (stdin closed)'));
  process.on('SIGTERM', () => void stop(ServiceExit.ok, 'SIGTERM'));
  // Ctrl-C and a closed terminal (SIGHUP) reach the whole process group. The kernel decides and
  // stops the services in order; a service that died here would leave its plaintext behind.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);

  await definition.start?.(ctx);
  channel.send(MessageKind.Ready, { pid: process.pid });
  log.info('service ready');
}

main().catch((error: unknown) => {
  const code = error instanceof BacktestrError ? error.code : 'E_INTERNAL';
  process.stderr.write(`${JSON.stringify({ level: 50, msg: 'service start failed', code, err: error instanceof Error ? error.message : String(error) })}\n`);
  process.exit(ServiceExit.startFailed);
});
