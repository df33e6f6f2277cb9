/**
 * Measures calibration, unlock, wrap/unwrap and vault costs; prints medians. Not a test (no
 * timing assertions). Run from the repository root:
 *   PATH=$PWD/node_modules/.bin:$PATH node -r ts-node/register/transpile-only tests/storage/crypto/measure.ts
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Keyring, SecretVault, calibrateArgon2, timeDerivation } from '../../../services/storage/crypto';
import { associatedData, open, seal } from '../../../services/storage/crypto/aead';
import { deriveSubkeys, unwrapDataKey, wrapDataKey } from '../../../services/storage/crypto/keyring-keys';
import { keyringPath, makeTempDir, removeDir, vaultPath } from './helpers';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median microseconds per call over `rounds` batches of `batch` calls. */
function microsPerCall(batch: number, rounds: number, fn: () => void): number {
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    for (let i = 0; i < batch; i++) fn();
    samples.push(((performance.now() - started) * 1000) / batch);
  }
  return median(samples);
}

async function main(): Promise<void> {
  const calibration = await calibrateArgon2();
  const { params } = calibration;
  console.log(`calibrated Argon2id: m=${params.memoryKiB} KiB t=${params.timeCost} p=${params.parallelism}, ${calibration.measuredMs.toFixed(0)} ms during calibration`);
  const derivations: number[] = [];
  for (let i = 0; i < 5; i++) derivations.push(await timeDerivation(params));
  console.log(`derivation at calibrated parameters: median ${median(derivations).toFixed(0)} ms over 5`);
  const minimum: number[] = [];
  for (let i = 0; i < 9; i++) minimum.push(await timeDerivation({ memoryKiB: 19456, timeCost: 2, parallelism: 1 }));
  console.log(`derivation at the minimum m=19456 t=2 p=1: median ${median(minimum).toFixed(1)} ms over 9`);

  const dir = makeTempDir();
  try {
    const created = await Keyring.create(keyringPath(dir), 'measure-password', { purposes: ['store', 'vault'], kdf: params });
    created.lock();
    const unlocks: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const keyring = await Keyring.open(keyringPath(dir), 'measure-password');
      unlocks.push(performance.now() - started);
      keyring.lock();
    }
    console.log(`Keyring.open at calibrated parameters: median ${median(unlocks).toFixed(0)} ms over 5`);

    const subkeys = deriveSubkeys(new Uint8Array(randomBytes(32)), new Uint8Array(16));
    const dataKey = new Uint8Array(randomBytes(32));
    const binding = { keyringId: new Uint8Array(16), keyId: new Uint8Array(16), purpose: 'store', generation: 1 };
    const wrapped = wrapDataKey(subkeys, dataKey, binding);
    console.log(`wrap one data key (XChaCha20-Poly1305, @noble/ciphers): ${microsPerCall(2000, 9, () => wrapDataKey(subkeys, dataKey, binding)).toFixed(1)} us`);
    console.log(`unwrap one data key: ${microsPerCall(2000, 9, () => unwrapDataKey(subkeys, wrapped, binding)).toFixed(1)} us`);

    // For comparison: AES-256-GCM from node:crypto on the same 32-byte payload.
    const aesKey = createSecretKey(Buffer.from(subkeys.wrap));
    const ad = associatedData('backtestr keyring data key v1', binding.keyringId, binding.keyId, binding.purpose, binding.generation);
    const gcmWrap = () => {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', aesKey, iv).setAAD(ad);
      return { iv, body: Buffer.concat([cipher.update(dataKey), cipher.final()]), tag: cipher.getAuthTag() };
    };
    const gcmSealed = gcmWrap();
    console.log(`wrap with node:crypto AES-256-GCM (KeyObject): ${microsPerCall(2000, 9, gcmWrap).toFixed(1)} us`);
    console.log(
      `unwrap with node:crypto AES-256-GCM: ${microsPerCall(2000, 9, () => {
        const decipher = createDecipheriv('aes-256-gcm', aesKey, gcmSealed.iv).setAAD(ad).setAuthTag(gcmSealed.tag);
        Buffer.concat([decipher.update(gcmSealed.body), decipher.final()]);
      }).toFixed(1)} us`,
    );
    const fourKiB = new Uint8Array(4096);
    const key = new Uint8Array(randomBytes(32));
    console.log(`seal 4 KiB (XChaCha20-Poly1305): ${microsPerCall(500, 9, () => seal(key, fourKiB, ad)).toFixed(1)} us`);
    const sealed4k = seal(key, fourKiB, ad);
    console.log(`open 4 KiB: ${microsPerCall(500, 9, () => open(key, sealed4k, ad)).toFixed(1)} us`);

    const keyring = await Keyring.open(keyringPath(dir), 'measure-password');
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    for (let i = 0; i < 20; i++) await vault.put(`secret-${i}`, `value-${i}`);
    const puts: number[] = [];
    for (let i = 0; i < 15; i++) {
      const started = performance.now();
      await vault.put('broker-api-key', `value-${i}`);
      puts.push(performance.now() - started);
    }
    console.log(`vault.put with 21 secrets (vault write + keyring counter write, 2 fsync'd renames): median ${median(puts).toFixed(1)} ms`);
    console.log(`vault.get: ${microsPerCall(500, 9, () => vault.get('broker-api-key')).toFixed(1)} us`);
    const changes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await keyring.changePassword(i % 2 ? 'other-password' : 'measure-password', i % 2 ? 'measure-password' : 'other-password');
      changes.push(performance.now() - started);
    }
    console.log(`changePassword (two derivations and one file write): median ${median(changes).toFixed(0)} ms over 3`);
    keyring.lock();
  } finally {
    removeDir(dir);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
