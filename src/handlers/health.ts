import type { UploadEngine } from '../engine/engine.ts';

/** `GET /health`: is the state store reachable, is storage reachable, and how fast. 503 if not. */
export async function health(engine: UploadEngine): Promise<Response> {
  const checks = await engine.health();
  const ok = Object.values(checks).every((c) => c.ok);
  return Response.json({ status: ok ? 'ok' : 'failing', ...checks }, { status: ok ? 200 : 503, headers: { 'Cache-Control': 'no-store' } });
}
