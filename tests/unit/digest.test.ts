import { describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { parseReprDigest, preferredDigest, restoreHash, startHash, type DigestAlgorithm } from '../../src/model/digest.ts';
import { toHex } from '../../src/model/encoding.ts';

const text = (s: string) => new TextEncoder().encode(s);
const node = (algorithm: DigestAlgorithm, bytes: Uint8Array) => createHash(algorithm.replace('-', '')).update(bytes).digest('hex');

// FIPS 180-2 / RFC 6234 test vectors.
const VECTORS: [DigestAlgorithm, string, string][] = [
  ['sha-256', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['sha-256', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['sha-256', 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'],
  ['sha-512', 'abc', 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f'],
  [
    'sha-512',
    'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
    '8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909',
  ],
];

describe('running hash', () => {
  for (const [algorithm, input, expected] of VECTORS) {
    test(`${algorithm} of ${JSON.stringify(input.slice(0, 12))}: known digest, also through save/restore at every byte`, () => {
      expect(toHex(startHash(algorithm).digest())).toBe(algorithm === 'sha-256' ? VECTORS[0]![2] : node(algorithm, new Uint8Array()));
      const bytes = text(input);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const first = startHash(algorithm);
        first.update(bytes.subarray(0, cut));
        const second = restoreHash(algorithm, first.save())!;
        second.update(bytes.subarray(cut));
        expect(toHex(second.digest())).toBe(expected);
      }
    });
  }

  for (const algorithm of ['sha-256', 'sha-512'] as const) {
    test(`${algorithm}: saved and restored at every byte of three blocks, in two and three pieces, equals one pass`, () => {
      const bytes = crypto.getRandomValues(new Uint8Array(3 * (algorithm === 'sha-256' ? 64 : 128) + 1));
      const whole = node(algorithm, bytes);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const a = startHash(algorithm);
        a.update(bytes.subarray(0, cut));
        const b = restoreHash(algorithm, a.save())!;
        expect(b.hashed).toBe(cut);
        const mid = Math.min(bytes.length, cut + 37);
        b.update(bytes.subarray(cut, mid));
        const c = restoreHash(algorithm, b.save())!;
        c.update(bytes.subarray(mid));
        expect(toHex(c.digest())).toBe(whole);
      }
    });

    test(`${algorithm}: digest() leaves the hash running; a state is small`, () => {
      const hash = startHash(algorithm);
      hash.update(text('hello '));
      expect(toHex(hash.digest())).toBe(node(algorithm, text('hello ')));
      hash.update(text('world'));
      expect(toHex(hash.digest())).toBe(node(algorithm, text('hello world')));
      const big = startHash(algorithm);
      big.update(new Uint8Array(5 * 1024 * 1024 + 63));
      // words + 8-byte count + < 1 block of pending bytes, in base64
      expect(big.save().length).toBeLessThanOrEqual(Math.ceil(((algorithm === 'sha-256' ? 32 + 64 : 64 + 128) + 8) / 3) * 4);
      expect(toHex(restoreHash(algorithm, big.save())!.digest())).toBe(node(algorithm, new Uint8Array(5 * 1024 * 1024 + 63)));
    });
  }

  test('a state that is not one is refused', () => {
    expect(restoreHash('sha-256', 'not base64!')).toBeUndefined();
    expect(restoreHash('sha-256', btoa('short'))).toBeUndefined();
    const state = startHash('sha-256');
    state.update(text('abc'));
    // A count that disagrees with the pending bytes.
    const bytes = Uint8Array.from(atob(state.save()), (c) => c.charCodeAt(0));
    bytes[39] = 4;
    expect(restoreHash('sha-256', btoa(String.fromCharCode(...bytes)))).toBeUndefined();
    expect(restoreHash('sha-512', state.save())).toBeUndefined();
  });
});

describe('digest fields', () => {
  const s256 = btoa(String.fromCharCode(...new Uint8Array(32)));
  const s512 = btoa(String.fromCharCode(...new Uint8Array(64)));
  test('Repr-Digest: the strongest supported algorithm; unsupported ones ignored; malformed → null', () => {
    expect(parseReprDigest(`sha-256=:${s256}:`)).toEqual({ algorithm: 'sha-256', digest: s256 });
    expect(parseReprDigest(`sha-256=:${s256}:, sha-512=:${s512}:`)).toEqual({ algorithm: 'sha-512', digest: s512 });
    expect(parseReprDigest('md5=:AAAA:')).toBeUndefined();
    expect(parseReprDigest(`sha-256=${s256}`)).toBeNull();
    expect(parseReprDigest('sha-256=:AAAA:')).toBeNull();
    // 44 characters, but 31 bytes.
    expect(parseReprDigest(`sha-256=:${'A'.repeat(42)}==:`)).toBeNull();
    expect(parseReprDigest(`sha-256=:${'A'.repeat(1_000_000)}:`)).toBeNull();
  });
  test('Want-Repr-Digest: the heaviest supported algorithm, weight 0 excluded', () => {
    expect(preferredDigest('sha-256=3, sha-512=10')).toBe('sha-512');
    expect(preferredDigest('sha-512=0, sha-256=1')).toBe('sha-256');
    expect(preferredDigest('md5=10')).toBeUndefined();
  });
});
