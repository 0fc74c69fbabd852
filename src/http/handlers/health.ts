import type { UploadEngine } from '../../engine/engine.ts';
import { withTimeout } from '../../model/async.ts';
import { redact } from '../../observability/redact.ts';

/**
 * How long `GET /health` waits for its checks. A backend that hangs (S3 that accepts and never
 * answers) would otherwise hold the probe for the S3 client's whole retry budget (20 s), longer
 * than a load balancer waits; past this the answer is 503 with the reason.
 */
export const HEALTH_DEADLINE_MS = 5_000;

type Checks = Awaited<ReturnType<UploadEngine['health']>>;

// One check of the backends at a time per engine: a probe past its deadline goes on (its calls do
// not take a signal), and the next /health waits for it instead of piling another one onto a
// backend that hangs.
const running = new WeakMap<UploadEngine, Promise<Checks>>();

function checksOf(engine: UploadEngine): Promise<Checks> {
  let checks = running.get(engine);
  if (!checks) {
    checks = engine.health().finally(() => running.delete(engine));
    running.set(engine, checks);
  }
  return checks;
}

/** `GET /health`: is the state store reachable, is storage reachable, and how fast. 503 if not. */
export async function health(engine: UploadEngine, deadlineMs = HEALTH_DEADLINE_MS): Promise<Response> {
  const headers = { 'Cache-Control': 'no-store' };
  let checks: Checks;
  try {
    checks = await withTimeout(deadlineMs, () => checksOf(engine));
  } catch {
    const error = `the state store or the storage gave no answer within ${deadlineMs / 1000} s`;
    return Response.json({ status: 'failing', error }, { status: 503, headers });
  }
  const ok = Object.values(checks).every((c) => c.ok);
  // Anyone may ask (no credentials): a backend's error may quote a URL with its password or token.
  const shown = Object.fromEntries(Object.entries(checks).map(([name, c]) => [name, c.error ? { ...c, error: redact(c.error) } : c]));
  return Response.json({ status: ok ? 'ok' : 'failing', ...shown }, { status: ok ? 200 : 503, headers });
}
