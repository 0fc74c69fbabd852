/**
 * The server's own view of an upload: live from the Server-Sent Events of `GET <upload>/progress`
 * (from the shared state store, so it also moves when the bytes go to another instance), and its
 * offset from a `HEAD` when the page needs to know where to resume.
 */
import type { Progress } from '../model/progress.ts';
import { authHeaders } from './auth.ts';
import { formatBytes } from './format.ts';

/** Where an upload stands on the server, from its `HEAD`: what tus itself resumes from. */
export interface ServerOffset {
  offset: number;
  length: number | undefined;
  finished: boolean;
}

/**
 * Asks the server where an upload stands (`HEAD`, never cached): 'gone' if it has no such upload
 * (expired or removed), undefined if it could not tell (unreachable, or refused without a token).
 */
export async function serverOffset(uploadUrl: string | null): Promise<ServerOffset | 'gone' | undefined> {
  if (!uploadUrl) return 'gone';
  try {
    const res = await fetch(uploadUrl, { method: 'HEAD', cache: 'no-store', headers: { ...authHeaders(), 'Tus-Resumable': '1.0.0' } });
    if (res.status === 404 || res.status === 410) return 'gone';
    const offset = Number(res.headers.get('Upload-Offset'));
    if (!res.ok || !Number.isSafeInteger(offset)) return undefined;
    const header = res.headers.get('Upload-Length');
    const length = header === null ? undefined : Number(header);
    return { offset, length, finished: length === offset };
  } catch {
    return undefined;
  }
}

/** The line under a bar that shows what the server has received, kept live while it is watched. */
export class ServerView {
  #unwatch?: () => void;

  constructor(
    readonly el: HTMLElement,
    /** What the upload's length is taken to be while the server does not know it. */
    readonly fileSize: number,
  ) {}

  /**
   * Follows the upload's progress events until the server has no such upload, `stop()` is called,
   * or `onProgress` answers that no more are wanted. Watching an upload already watched does nothing.
   */
  watch(uploadUrl: string, onProgress: (progress: Progress) => boolean): void {
    if (this.#unwatch) return;
    const unwatch = serverEvents(`${uploadUrl}/progress`, (event, data) => {
      if (event === 'gone') return close();
      if (event === 'unreachable') return this.#unreachable();
      if (event !== 'progress') return;
      const progress = JSON.parse(data) as Progress;
      this.show(progress);
      if (!onProgress(progress)) close();
    });
    const close = () => {
      unwatch();
      if (this.#unwatch === unwatch) this.#unwatch = undefined;
    };
    this.#unwatch = unwatch;
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Shows an offset read with `HEAD` while no event has come. */
  showOffset({ offset, length }: ServerOffset): void {
    this.show({ id: '', offset, received: offset, length: length ?? null, bytesPerSecond: 0, state: 'paused' });
  }

  /** The last figures stay, marked as such: the server cannot say more until it is back. */
  #unreachable(): void {
    if (this.el.dataset.state === 'unreachable') return;
    const received = Number(this.el.dataset.received ?? 0);
    this.el.textContent = `Server: cannot be reached · ${formatBytes(received)} received when last seen`;
    this.el.dataset.state = 'unreachable';
  }

  show(p: Progress): void {
    const length = p.length ?? this.fileSize;
    const parts = [`Server: ${formatBytes(p.received)} of ${formatBytes(length)} received`, p.state];
    if (p.state === 'uploading' && p.bytesPerSecond > 0) parts.push(`${formatBytes(p.bytesPerSecond)}/s`);
    this.el.textContent = parts.join(' · ');
    this.el.dataset.state = p.state;
    this.el.dataset.received = String(p.received);
  }
}

/**
 * Server-Sent Events read through fetch, which (unlike EventSource) can send the token; reopened a
 * second after it ends or fails, as EventSource does, until the returned function is called. A
 * failed connection is told as an `unreachable` event.
 */
function serverEvents(url: string, on: (event: string, data: string) => void): () => void {
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch(url, { cache: 'no-store', headers: { ...authHeaders(), Accept: 'text/event-stream' }, signal: stop.signal });
        if (res.status === 404 || res.status === 410) return on('gone', '');
        if (!res.ok) {
          await res.body?.cancel();
          // A refusal (no token, or the wrong one) does not pass by itself: stop, as EventSource does.
          if (res.status < 500) return;
        }
        const reader = res.ok ? res.body?.pipeThrough(new TextDecoderStream()).getReader() : undefined;
        let text = '';
        for (let read = await reader?.read(); read && !read.done; read = await reader!.read()) {
          text += read.value;
          for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
            const lines = text.slice(0, end).split('\n');
            text = text.slice(end + 2);
            const field = (name: string) => lines.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart());
            on(field('event')[0] ?? 'message', field('data').join('\n'));
          }
        }
      } catch {
        // reopened below, unless stopped
        if (!stop.signal.aborted) on('unreachable', '');
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return () => stop.abort();
}
