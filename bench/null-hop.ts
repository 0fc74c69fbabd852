/**
 * The cheapest server a tus upload can pass through: Bun.serve reading a request body and dropping
 * it. What the bench's client and this server spend to move bytes over loopback is the least any
 * upload server adds to a direct S3 upload on the same cores. With HOLD_MS, each request waits that
 * long before its body is read, to show what Bun holds of a body nobody reads yet (loopback only).
 */
const holdMs = Number(process.env.HOLD_MS ?? 0);
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT),
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  idleTimeout: 0,
  async fetch(request) {
    if (holdMs) await Bun.sleep(holdMs);
    let size = 0;
    for await (const chunk of request.body ?? []) {
      size += chunk.byteLength;
      // Freed at once, as the S3 store frees the chunks it has copied.
      (chunk.buffer as ArrayBuffer).transfer(0);
    }
    return new Response(String(size));
  },
});
console.log(`null hop listening on http://127.0.0.1:${server.port}/`);
