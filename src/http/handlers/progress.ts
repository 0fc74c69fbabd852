import { progressOf } from '../../model/progress.ts';
import type { Handler } from './context.ts';

const TICK_MS = 500;
const HEARTBEAT_MS = 15_000;
/** An event stream ends after this; EventSource reconnects by itself. */
const STREAM_MS = 10 * 60_000;

/**
 * `GET <path>/<id>/progress`: JSON, or with `Accept: text/event-stream` a Server-Sent Events stream
 * of the same until the upload finishes. Fed from the state store, so it works on any instance,
 * whichever one receives the bytes.
 */
export const progress: Handler = async ({ request, engine, id, loaded }) => {
  const first = progressOf(await engine.get(id, loaded));
  if (!request.headers.get('Accept')?.includes('text/event-stream')) {
    return Response.json(first, { headers: { 'Cache-Control': 'no-store' } });
  }
  // Nothing more will happen: 204 tells an EventSource not to reconnect.
  if (first.state === 'finished') return new Response(null, { status: 204 });
  const encoder = new TextEncoder();
  let stopped = false;
  // A loop that pushes events (tiny, at most one per tick) rather than a pull source: the stream
  // then does not depend on when the runtime asks for more.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => controller.enqueue(encoder.encode(text));
      void (async () => {
        const started = Date.now();
        let current = first;
        let last = '';
        let lastSent = 0;
        while (!stopped) {
          const data = JSON.stringify(current);
          if (data !== last) {
            send(`event: progress\ndata: ${data}\n\n`);
            [last, lastSent] = [data, Date.now()];
          } else if (Date.now() - lastSent > HEARTBEAT_MS) {
            send(': keep-alive\n\n');
            lastSent = Date.now();
          }
          if (current.state === 'finished' || Date.now() - started > STREAM_MS) break;
          await new Promise((resolve) => setTimeout(resolve, TICK_MS));
          try {
            current = progressOf(await engine.get(id));
          } catch {
            send('event: gone\ndata: {}\n\n');
            break;
          }
        }
        if (!stopped) controller.close();
      })().catch((error) => controller.error(error));
    },
    cancel() {
      stopped = true;
    },
  });
  return new Response(body, {
    headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' },
  });
};
