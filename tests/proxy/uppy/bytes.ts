/**
 * The bytes of a test file, the same in the page and in the test: xorshift32 from `seed`. The page
 * generates what it uploads with it; the test regenerates it to compare what was stored.
 */
export function fileBytes(seed: number, size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let at = 0; at < size; at += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    for (let k = 0; k < 4 && at + k < size; k++) out[at + k] = (x >>> (8 * k)) & 0xff;
  }
  return out;
}

export interface FileSpec {
  name: string;
  seed: number;
  size: number;
}
