/**
 * Child process for the crash tests. Reads one JSON job from stdin (so that test passwords never
 * sit in argv), runs it against the compiled library in build/, and kills itself with SIGKILL
 * right after write step number `killAtStep` (counted over every keyring and vault write) when
 * that is set. Prints "ready" once the keyring is open, "step N NAME" after each write step and
 * "done" at the end.
 */
'use strict';
const path = require('node:path');
const { Keyring, SecretVault } = require(path.join(__dirname, '../../../build/services/storage/crypto/index.js'));

async function main(job) {
  let steps = 0;
  const onWriteStep = (step) => {
    steps += 1;
    process.stdout.write(`step ${steps} ${step}\n`);
    if (steps === job.killAtStep) process.kill(process.pid, 'SIGKILL');
  };
  const options = { allowWeakKdfForTests: true, onWriteStep };
  const keyringFile = path.join(job.dir, 'keyring.bin');
  const keyring = await Keyring.open(keyringFile, job.passwords[0], options);
  process.stdout.write('ready\n');

  switch (job.op) {
    case 'change-password':
      await keyring.changePassword(job.passwords[0], job.passwords[1]);
      break;
    case 'change-password-loop':
      for (let i = 0; ; i++) await keyring.changePassword(job.passwords[i % 2], job.passwords[(i + 1) % 2]);
    case 'rekey': {
      const fresh = await keyring.rekey('store');
      await keyring.retireGenerationsBefore('store', fresh.generation);
      break;
    }
    case 'rekey-loop':
      for (;;) {
        const fresh = await keyring.rekey('store');
        await keyring.retireGenerationsBefore('store', fresh.generation);
      }
    case 'vault-put': {
      const vault = await SecretVault.open(keyring, path.join(job.dir, 'vault.bin'), { onWriteStep });
      await vault.put(job.secretName, job.secretValue);
      break;
    }
    default:
      throw new Error(`unknown job ${job.op}`);
  }
  keyring.lock();
  process.stdout.write(`done ${steps}\n`);
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  main(JSON.parse(input)).catch((error) => {
    process.stderr.write(`crash-child failed: ${error && error.code} ${error && error.message}\n`);
    process.exit(1);
  });
});
