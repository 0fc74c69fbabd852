/** bench/null-hop.ts on Deno.serve: the cheapest server Deno can be (loopback only). */
Deno.serve(
  { hostname: '127.0.0.1', port: Number(Deno.env.get('PORT')), onListen: ({ port }) => console.log(`null hop listening on http://127.0.0.1:${port}/`) },
  async (request) => {
    let size = 0;
    for await (const chunk of request.body ?? []) {
      size += chunk.byteLength;
      (chunk.buffer as ArrayBuffer).transfer(0);
    }
    return new Response(String(size));
  },
);
