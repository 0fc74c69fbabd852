import { DIGEST_METADATA_NAMES } from './digest.ts';

/**
 * What a stored object carries besides its type and disposition: how caches may keep it, where the
 * storage keeps it, and user metadata. Set for every upload by the server's options, and per upload
 * by a pre-create hook.
 */
export interface ObjectSettings {
  /** e.g. `public, max-age=31536000, immutable`. */
  cacheControl?: string;
  /** e.g. STANDARD_IA, INTELLIGENT_TIERING (AWS); R2 takes STANDARD and STANDARD_IA. */
  storageClass?: string;
  /** User metadata: names are lower-case tokens, values any text. */
  metadata?: Record<string, string>;
}

/** A header field value: visible ASCII and spaces. */
export const FIELD_VALUE = /^[\x20-\x7e]*$/;
/** A metadata name: an HTTP token, lower-case (S3 lower-cases them). */
export const METADATA_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
export const STORAGE_CLASS = /^[A-Z][A-Z0-9_]*$/;

/**
 * Why a user-metadata name cannot be set (by S3_METADATA, a hook, the server's options), or
 * undefined when it can: S3 lower-cases names, so only lower-case tokens; the digest's names are
 * the server's.
 */
export function metadataNameProblem(name: string): string | undefined {
  if (!METADATA_NAME.test(name)) return `"${name.slice(0, 40)}" is not a lower-case token`;
  if (DIGEST_METADATA_NAMES.includes(name)) return `"${name}" is reserved for the upload's digest`;
  return undefined;
}

/** Only the settings an object has, copied: a hook's answer may carry other fields, which are not kept. */
export function pickObjectSettings(settings: ObjectSettings): ObjectSettings {
  const picked: ObjectSettings = {};
  if (settings.cacheControl !== undefined) picked.cacheControl = settings.cacheControl;
  if (settings.storageClass !== undefined) picked.storageClass = settings.storageClass;
  if (settings.metadata !== undefined) picked.metadata = { ...settings.metadata };
  return picked;
}

/** Why `settings` cannot be stored (a hook's answer is not typed), or undefined when they can. */
export function objectSettingsProblem(settings: unknown): string | undefined {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return 'not an object';
  const { cacheControl, storageClass, metadata } = settings as Record<string, unknown>;
  if (cacheControl !== undefined && !(typeof cacheControl === 'string' && FIELD_VALUE.test(cacheControl))) return 'cacheControl must be visible ASCII';
  if (storageClass !== undefined && !(typeof storageClass === 'string' && STORAGE_CLASS.test(storageClass))) return 'storageClass must be like STANDARD_IA';
  if (metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return 'metadata must be an object of strings';
  for (const [name, value] of Object.entries(metadata)) {
    const problem = metadataNameProblem(name);
    if (problem) return `metadata name ${problem}`;
    if (typeof value !== 'string') return `metadata "${name}" is not a string`;
  }
  return undefined;
}
