/**
 * Reads passwords and secret values from standard input (`--password-stdin`) or from an
 * interactive prompt that does not echo. They never come from argv or the environment, where
 * other processes of the same user could read them (/proc/PID/cmdline, /proc/PID/environ).
 */
import readline from 'node:readline';
import { BacktestrError } from '../../protocol/errors';

let stdinText: Promise<string> | undefined;

/** Reads all of standard input once; later calls return the same text. */
function readStdinText(): Promise<string> {
  stdinText ??= new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (chunk: Buffer) => chunks.push(chunk));
    process.stdin.on('error', reject);
    process.stdin.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      chunks.forEach((chunk) => chunk.fill(0));
      resolve(text);
    });
  });
  return stdinText;
}

/** Returns line `index` (0-based) of standard input; `description` names the line in errors. */
async function readStdinLine(index: number, description: string): Promise<string> {
  const line = (await readStdinText()).split(/\r?\n/)[index] ?? '';
  if (line.length === 0) {
    throw new BacktestrError('E_INVALID_PARAMS', `--password-stdin was given but line ${index + 1} of standard input, the ${description}, is empty or missing`);
  }
  return line;
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
  return fromStdin ? readStdinLine(0, 'password') : promptWithoutEcho(question);
}

/**
 * Reads a new password: line `stdinLine` of standard input with --password-stdin, else prompts
 * twice so that a typo does not become the profile password.
 */
export async function readNewPassword(fromStdin: boolean, stdinLine = 0): Promise<string> {
  if (fromStdin) return readStdinLine(stdinLine, 'new password');
  const first = await promptWithoutEcho('New password: ');
  const second = await promptWithoutEcho('Repeat the password: ');
  if (first !== second) throw new BacktestrError('E_INVALID_PARAMS', 'the two passwords differ; nothing was changed, try again');
  return first;
}

/**
 * Reads a secret value. With --password-stdin, it is everything after the first line (the
 * password) up to the end of standard input, less one final newline, so `printf '%s\n%s' PW
 * VALUE` and a value with inner newlines both work. Without it, a prompt that does not echo.
 */
export async function readSecretValue(fromStdin: boolean): Promise<string> {
  if (!fromStdin) return promptWithoutEcho('Secret value: ');
  const text = await readStdinText();
  const firstBreak = text.indexOf('\n');
  const value = firstBreak === -1 ? '' : text.slice(firstBreak + 1).replace(/\r?\n$/, '');
  if (value.length === 0) throw new BacktestrError('E_INVALID_PARAMS', 'the secret value is empty: give it after the password line on standard input');
  return value;
}
