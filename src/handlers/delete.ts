import type { Handler } from './context.ts';

export const terminate: Handler = async ({ engine, id }) => {
  await engine.terminate(id);
  return new Response(null, { status: 204 });
};
