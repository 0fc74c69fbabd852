import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';

/**
 * Incremental hashers for Upload-Checksum. WebCrypto's digest is one-shot and has no md5, and a
 * PATCH body must be hashed as it streams, so the pure-JS @noble/hashes (runs on every runtime,
 * Workers included, where compiling WASM at run time is not allowed) does the work.
 */
export interface Hasher {
  update(chunk: Uint8Array): void;
  digest(): Uint8Array;
}

/**
 * Reflected CRC-32 hashers for one polynomial (its table made once): 0xedb88320 is CRC-32
 * (Upload-Checksum's crc32), 0x82f63b78 CRC-32C (S3's x-amz-checksum-crc32c).
 */
export function crc32Hasher(polynomial: number): () => Hasher {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? polynomial ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return () => {
    let crc = 0xffffffff;
    return {
      update(chunk) {
        for (let i = 0; i < chunk.length; i++) crc = table[(crc ^ chunk[i]!) & 0xff]! ^ (crc >>> 8);
      },
      digest() {
        const value = (crc ^ 0xffffffff) >>> 0;
        return new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
      },
    };
  };
}

const crc32 = crc32Hasher(0xedb88320);

const algorithms = {
  md5: () => md5.create(),
  sha1: () => sha1.create(),
  sha256: () => sha256.create(),
  sha512: () => sha512.create(),
  crc32,
} satisfies Record<string, () => Hasher>;

export type ChecksumAlgorithm = keyof typeof algorithms;
export const CHECKSUM_ALGORITHMS = Object.keys(algorithms) as ChecksumAlgorithm[];

export const isChecksumAlgorithm = (name: string): name is ChecksumAlgorithm => Object.hasOwn(algorithms, name);

export const createHasher = (algorithm: ChecksumAlgorithm): Hasher => algorithms[algorithm]();

/** A digest a client sent with a body (Upload-Checksum): the body must hash to it. */
export interface Checksum {
  algorithm: ChecksumAlgorithm;
  /** Base64. */
  digest: string;
}
