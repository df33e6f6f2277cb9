/**
 * Reads the profile password from standard input (`--password-stdin`) or from an interactive
 * prompt that does not echo. Passwords never come from argv or the environment, where other
 * processes of the same user could read them (/proc/PID/cmdline, /proc/PID/environ).
 */
import readline from 'node:readline';
import { BacktestrError } from '../../protocol/errors';

let stdinPassword: Promise<string> | undefined;

/** Reads the first line of standard input once; later calls return the same password. */
function readPasswordFromStdin(): Promise<string> {
  stdinPassword ??= new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (chunk: Buffer) => chunks.push(chunk));
    process.stdin.on('error', reject);
    process.stdin.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      chunks.forEach((chunk) => chunk.fill(0));
      const line = text.split(/\r?\n/)[0] ?? '';
      if (line.length === 0) reject(new BacktestrError('E_INVALID_PARAMS', '--password-stdin was given but standard input had no password line'));
      else resolve(line);
    });
  });
  return stdinPassword;
}

function promptWithoutEcho(question: string): Promise<string> {
  if (!process.stdin.isTTY) {
    return Promise.reject(new BacktestrError('E_INVALID_PARAMS', 'no terminal to ask for the password: pass it on standard input with --password-stdin'));
  }
  return new Promise<string>((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput: (text: string) => void };
    process.stderr.write(question);
    // Echo nothing of what is typed; readline offers no switch for this.
    output._writeToOutput = () => undefined;
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

export async function readPassword(fromStdin: boolean, question = 'Password: '): Promise<string> {
  return fromStdin ? readPasswordFromStdin() : promptWithoutEcho(question);
}

/** Asks twice when interactive, so a typo does not become the profile password. */
export async function readNewPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return readPasswordFromStdin();
  const first = await promptWithoutEcho('New password: ');
  const second = await promptWithoutEcho('Repeat the password: ');
  if (first !== second) throw new BacktestrError('E_INVALID_PARAMS', 'the two passwords differ; nothing was created');
  return first;
}
