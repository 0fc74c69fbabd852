import type { Handler } from './context.ts';

export const terminate: Handler = async ({ engine, id, owner, hook }) => {
  await engine.terminate(id, { owner, request: hook });
  return new Response(null, { status: 204 });
};
