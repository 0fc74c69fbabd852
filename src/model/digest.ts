import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { toBase64 } from './encoding.ts';

/**
 * Whole-upload digests (RFC 9530 `Repr-Digest`): a SHA-256 or SHA-512 that runs across requests and
 * server instances. Between requests its state lives on the upload record, so no byte is read back
 * from storage to check or report the digest. WebCrypto's digest is one-shot, and hash-wasm (which
 * can save its state) compiles WASM at run time, which Workers refuse; so the state of @noble/hashes'
 * pure-JS SHA-2 is read and written here: its chaining words, its pending partial block and the
 * count of bytes hashed — exactly what the algorithm carries from one block to the next.
 */
export type DigestAlgorithm = 'sha-256' | 'sha-512';
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha-256', 'sha-512'];

/** What an upload record keeps of its whole-upload digest. */
export interface UploadDigest {
  algorithm: DigestAlgorithm;
  /** The digest the client sent (base64), checked when the upload completes. */
  expected?: string;
  /**
   * The running hash over exactly the first `offset` bytes (`RunningHash.save`); saved with the offset
   * in the same record, never ahead of it. Gone once the upload is finished.
   */
  state?: string;
  /** The digest of the whole upload (base64), once it is finished. */
  value?: string;
}

/**
 * @noble/hashes' SHA-2 as far as its state goes (protected members in its typings, plain at run
 * time). Not a public API: tests/unit/digest.test.ts restores states at every byte of several blocks
 * against known digests, so a release that changes these members fails there, not in production.
 */
interface Sha2Internals {
  get(): number[];
  set(...words: number[]): void;
  buffer: Uint8Array;
  length: number;
  pos: number;
  blockLen: number;
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
  clone(): unknown;
}

const FACTORIES: Record<DigestAlgorithm, () => Sha2Internals> = {
  'sha-256': () => sha256.create() as unknown as Sha2Internals,
  'sha-512': () => sha512.create() as unknown as Sha2Internals,
};
/** 32-bit words of state: 8 for SHA-256, 16 (8 × high, low) for SHA-512. */
const WORDS: Record<DigestAlgorithm, number> = { 'sha-256': 8, 'sha-512': 16 };
const DIGEST_BYTES: Record<DigestAlgorithm, number> = { 'sha-256': 32, 'sha-512': 64 };

export interface RunningHash {
  readonly algorithm: DigestAlgorithm;
  /** Bytes hashed so far. */
  readonly hashed: number;
  update(chunk: Uint8Array): void;
  /** The digest of what was hashed so far; hashing may go on. */
  digest(): Uint8Array;
  /** The state as compact text (base64 of words, byte count and pending bytes), for `restoreHash`. */
  save(): string;
  /** An independent copy of this hash, at the same state. */
  clone(): RunningHash;
}

function wrap(algorithm: DigestAlgorithm, inner: Sha2Internals): RunningHash {
  return {
    algorithm,
    get hashed() {
      return inner.length;
    },
    update: (chunk) => void inner.update(chunk),
    digest: () => (inner.clone() as Sha2Internals).digest(),
    clone: () => wrap(algorithm, inner.clone() as Sha2Internals),
    save() {
      const words = inner.get();
      const pending = inner.pos;
      const bytes = new Uint8Array(words.length * 4 + 8 + pending);
      const view = new DataView(bytes.buffer);
      for (const [i, word] of words.entries()) view.setUint32(i * 4, word >>> 0);
      view.setUint32(words.length * 4, Math.floor(inner.length / 2 ** 32));
      view.setUint32(words.length * 4 + 4, inner.length >>> 0);
      bytes.set(inner.buffer.subarray(0, pending), words.length * 4 + 8);
      return toBase64(bytes);
    },
  };
}

export const startHash = (algorithm: DigestAlgorithm): RunningHash => wrap(algorithm, FACTORIES[algorithm]());

/** A hash from `save`'s text; undefined when the text is not a state of this algorithm. */
export function restoreHash(algorithm: DigestAlgorithm, saved: string): RunningHash | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(saved), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  const inner = FACTORIES[algorithm]();
  const head = WORDS[algorithm] * 4 + 8;
  const pending = bytes.length - head;
  if (pending < 0 || pending >= inner.blockLen) return undefined;
  const view = new DataView(bytes.buffer);
  const words = Array.from({ length: WORDS[algorithm] }, (_, i) => view.getUint32(i * 4) | 0);
  const length = view.getUint32(head - 8) * 2 ** 32 + view.getUint32(head - 4);
  // The byte count must agree with the pending bytes: they are what is left of the last block.
  if (length % inner.blockLen !== pending) return undefined;
  inner.set(...words);
  inner.buffer.set(bytes.subarray(head));
  inner.pos = pending;
  inner.length = length;
  return wrap(algorithm, inner);
}

/**
 * The digest a Repr-Digest header carries for an algorithm: the field is an RFC 8941 dictionary of
 * byte sequences (`sha-256=:base64:`). Of several supported algorithms the strongest is checked;
 * unsupported ones are ignored (RFC 9530 §2). Undefined when none is supported; null when the
 * field cannot be parsed.
 */
export function parseReprDigest(field: string): { algorithm: DigestAlgorithm; digest: string } | undefined | null {
  const members = new Map<string, string>();
  for (const member of field.split(',')) {
    const match = member.trim().match(/^([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/]*={0,2}):$/);
    if (!match) return null;
    members.set(match[1]!, match[2]!);
  }
  for (const algorithm of ['sha-512', 'sha-256'] as const) {
    const digest = members.get(algorithm);
    if (digest === undefined) continue;
    // Exactly the digest's bytes, canonically padded (44 characters for SHA-256, 88 for SHA-512).
    if (digest.length !== Math.ceil(DIGEST_BYTES[algorithm] / 3) * 4 || atob(digest).length !== DIGEST_BYTES[algorithm]) return null;
    return { algorithm, digest };
  }
  return undefined;
}

/**
 * The algorithm a Want-Repr-Digest field prefers among those supported (RFC 9530 §4: a dictionary
 * of integer weights 0–10, where 0 means "not acceptable"), or undefined.
 */
export function preferredDigest(field: string): DigestAlgorithm | undefined {
  let best: { algorithm: DigestAlgorithm; weight: number } | undefined;
  for (const member of field.split(',')) {
    const [name, value] = member
      .trim()
      .split('=', 2)
      .map((s) => s.trim());
    const weight = value === undefined ? 1 : Number(value);
    if (!DIGEST_ALGORITHMS.includes(name as DigestAlgorithm) || !Number.isInteger(weight) || weight <= 0 || weight > 10) continue;
    if (!best || weight > best.weight) best = { algorithm: name as DigestAlgorithm, weight };
  }
  return best?.algorithm;
}

/**
 * The digest as S3 user metadata (`x-amz-meta-sha256` or `-sha512`, lowercase hex), when it is
 * known before the bytes: the one the client sent, which the upload only completes if it matches
 * (or, for an empty upload finished at once, the one computed). Metadata is fixed when the object's
 * multipart upload starts; a digest only computed as the bytes arrive is known too late for it.
 */
/**
 * The user-metadata names the whole-upload digest is stored under (`sha256`, `sha512`): reserved,
 * so no other setting can replace the digest the upload was checked against.
 */
export const DIGEST_METADATA_NAMES: readonly string[] = DIGEST_ALGORITHMS.map((algorithm) => algorithm.replace('-', ''));

export function digestMetadata(digest: UploadDigest | undefined): Record<string, string> {
  const known = digest?.value ?? digest?.expected;
  if (!digest || known === undefined) return {};
  const hex = Array.from(atob(known), (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  return { [`x-amz-meta-${digest.algorithm.replace('-', '')}`]: hex };
}

/** The Repr-Digest field value for a digest. */
export const reprDigestField = (algorithm: DigestAlgorithm, digest: string): string => `${algorithm}=:${digest}:`;

export const digestOf = (hash: RunningHash): string => toBase64(hash.digest());
