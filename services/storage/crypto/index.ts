/** Encryption-at-rest primitives for the storage service: the keyring and the secrets vault. */
export { Keyring, DATA_KEY_SIZE, type DataKey, type KeyringOptions, type CreateKeyringOptions, type ChangePasswordOptions } from './keyring';
export { SecretVault, VAULT_PURPOSE, VAULT_REVISION_COUNTER, type VaultOptions } from './vault';
export {
  calibrateArgon2, timeDerivation, MIN_ARGON2_PARAMS, MAX_ARGON2_PARAMS, type Argon2Params, type CalibrateOptions,
  type CalibrationResult, type KdfPolicy,
} from './kdf';
export type { AtomicWriteStep } from '../../runtime/atomic-file';
