import { toHex } from '../../model/encoding.ts';
import type { Script } from './scripts.ts';

/**
 * What the Redis state store needs from a client: run a script. Adapters exist for Upstash's REST
 * client (any runtime) and for TCP Redis (servers).
 */
export interface ScriptRunner {
  run(script: Script, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** Commands sent so far (what Upstash bills). */
  readonly commands: number;
  close?(): Promise<void>;
}

/** The two calls an adapter provides. */
export interface Eval {
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  eval(source: string, keys: string[], args: string[]): Promise<unknown>;
}

/** Runs scripts by SHA (EVALSHA), loading one with EVAL the first time a server lacks it. */
export function scriptRunner(client: Eval, close?: () => Promise<void>): ScriptRunner {
  const shas = new Map<string, Promise<string>>();
  let commands = 0;
  return {
    get commands() {
      return commands;
    },
    close,
    async run(script, keys, args) {
      let sha = shas.get(script.name);
      if (!sha) shas.set(script.name, (sha = sha1Hex(script.source)));
      const values = args.map(String);
      commands++;
      try {
        return await client.evalsha(await sha, keys, values);
      } catch (error) {
        if (!/NOSCRIPT/i.test(String((error as Error)?.message ?? error))) throw error;
        commands++;
        return client.eval(script.source, keys, values);
      }
    },
  };
}

async function sha1Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(text));
  return toHex(new Uint8Array(digest));
}
