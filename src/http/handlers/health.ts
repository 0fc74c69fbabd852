import type { UploadEngine } from '../../engine/engine.ts';
import { redact } from '../../observability/redact.ts';

/** `GET /health`: is the state store reachable, is storage reachable, and how fast. 503 if not. */
export async function health(engine: UploadEngine): Promise<Response> {
  const checks = await engine.health();
  const ok = Object.values(checks).every((c) => c.ok);
  // Anyone may ask (no credentials): a backend's error may quote a URL with its password or token.
  for (const check of Object.values(checks)) if (check.error) check.error = redact(check.error);
  return Response.json({ status: ok ? 'ok' : 'failing', ...checks }, { status: ok ? 200 : 503, headers: { 'Cache-Control': 'no-store' } });
}
