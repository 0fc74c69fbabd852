/** Shared pieces of the benchmarks: generated bodies, process memory, timing. Loopback only. */
import { readFileSync } from 'node:fs';

export const MiB = 1024 * 1024;

/** A body of `size` pseudo-random bytes made on the fly (the client holds one MiB, not the file). */
export function generatedBody(size: number, seed = 1): ReadableStream<Uint8Array> {
  const block = new Uint8Array(MiB);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < block.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = x & 0xff;
  }
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) return controller.close();
      const n = Math.min(MiB, size - sent);
      const chunk = block.slice(0, n);
      chunk[0] = (sent / MiB) & 0xff; // every MiB differs, so a misplaced part shows in the hash
      sent += n;
      controller.enqueue(chunk);
    },
  });
}

export async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<{ hash: string; size: number }> {
  const hasher = new Bun.CryptoHasher('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hasher.update(chunk);
    size += chunk.byteLength;
  }
  return { hash: hasher.digest('hex'), size };
}

/** Peak resident memory of a process so far (VmHWM), in MiB; Linux only. */
export function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmHWM:\s+(\d+) kB/)![1]) / 1024;
}

/** User + system CPU seconds a process has used (from /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function table(rows: Record<string, string | number>[]): string {
  const columns = Object.keys(rows[0] ?? {});
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(columns), line(columns.map(() => '---')), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))].join('\n');
}
