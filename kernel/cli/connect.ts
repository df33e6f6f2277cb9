/**
 * Gives a CLI command a client of the kernel for its profile: the running kernel if one serves
 * the profile (`backtestr serve`), otherwise a kernel started in this process for the duration
 * of the command. Both paths use the same control socket and envelope protocol.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KernelClient } from '../client';
import { Kernel } from '../kernel';
import { isLiveProcess } from '../process-state';
import { runtimeDirFor } from '../runtime-dir';

export interface Connection {
  client: KernelClient;
  embedded: Kernel | undefined;
  close(): Promise<void>;
}

export function kernelIsRunning(profileDir: string): boolean {
  const pidPath = path.join(runtimeDirFor(profileDir), 'kernel.pid');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidPath, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  return isLiveProcess(pid);
}

export async function connect(profileDir: string, options: { allowEmbedded: boolean }): Promise<Connection> {
  if (kernelIsRunning(profileDir) || !options.allowEmbedded) {
    const client = await KernelClient.connect(runtimeDirFor(profileDir));
    return { client, embedded: undefined, close: () => client.close() };
  }
  const kernel = new Kernel({ profileDir, forwardLogs: Boolean(process.env.BACKTESTR_DEBUG) });
  const stopOnSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`${signal}: stopping the kernel and its services; the command did not finish\n`);
    void kernel.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  process.once('SIGHUP', stopOnSignal);
  await kernel.start();
  const client = await KernelClient.connect(kernel.runtimeDir, kernel.embeddedClientKey);
  return {
    client,
    embedded: kernel,
    close: async () => {
      await client.close();
      await kernel.stop();
      process.off('SIGINT', stopOnSignal);
      process.off('SIGTERM', stopOnSignal);
      process.off('SIGHUP', stopOnSignal);
    },
  };
}
