import type { Handler } from './context.ts';

export const terminate: Handler = async ({ engine, id, hook }) => {
  await engine.terminate(id, hook);
  return new Response(null, { status: 204 });
};
