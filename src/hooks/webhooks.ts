import { exponential, retry, withTimeout } from '../model/async.ts';
import { toHex } from '../model/encoding.ts';
import type { HookDecision, HookEvent, Hooks, HookType } from './types.ts';
import { HookFailure, PRE_HOOKS } from './types.ts';

export interface WebhookOptions {
  /** One endpoint receiving every event as JSON `{type, upload, request}`. */
  url: string;
  /** Signs each delivery: `Tusflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
  secret?: string;
  /** Per attempt, the answer's body included. */
  timeoutMs?: number;
  /** Background deliveries: attempts, and the time after which no new attempt starts. */
  attempts?: number;
  budgetMs?: number;
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Told about background deliveries that gave up (the upload is not affected). The delivery also
   * rejects with a HookFailure, which the engine reports (metric and log).
   */
  onFailure?(type: HookType, error: unknown): void;
}

const encoder = new TextEncoder();

export async function signature(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${timestamp}.${body}`));
  return toHex(new Uint8Array(mac));
}

/**
 * Why a delivery failed, in words fit for a log line: never the receiver's answer, nor the URL (its
 * query may hold a token), which some fetch errors quote.
 */
function failureReason(error: unknown): string {
  if (error instanceof HookFailure) return error.message;
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^\w{1,40}$/.test(code) ? `no answer (${code})` : 'no answer';
}

/**
 * Hooks delivered over HTTP. A pre-hook is one synchronous call whose answer decides: a 2xx
 * proceeds (a JSON body may carry `metadata` and `key` changes) and a 4xx is a refusal, with that
 * status and the body as the reason. Anything else (a 5xx, no answer in time, no connection) is a
 * failure: it rejects with a HookFailure, and the engine refuses the request with a generic reason.
 * Every other event is retried with backoff in the background, bounded in attempts and time, and
 * never holds up the upload; one that gives up rejects with a HookFailure.
 */
export function webhooks(options: WebhookOptions): Hooks {
  const send = options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? 5_000;

  const deliver = async (event: HookEvent, signal: AbortSignal): Promise<Response> => {
    const body = JSON.stringify(event);
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Tusflow-Event': event.type };
    if (options.secret) {
      const t = Math.floor(Date.now() / 1000);
      headers['Tusflow-Signature'] = `t=${t},v1=${await signature(options.secret, t, body)}`;
    }
    return send(options.url, { method: 'POST', headers, body, signal });
  };

  const decide = async (event: HookEvent, signal: AbortSignal): Promise<HookDecision> => {
    const res = await deliver(event, signal);
    const refused = res.status >= 400 && res.status < 500;
    if (!res.ok && !refused) {
      await res.body?.cancel();
      throw new HookFailure(`receiver answered ${res.status}`, res.status >= 500 && res.status < 600 ? res.status : 502);
    }
    const text = await res.text();
    if (refused) return { reject: { status: res.status, message: text.slice(0, 200) || `refused by the ${event.type} hook` } };
    if (!text) return {};
    try {
      const answer = JSON.parse(text) as { metadata?: unknown; key?: unknown; object?: unknown };
      const decision: HookDecision = {};
      if (answer.metadata && typeof answer.metadata === 'object') decision.metadata = answer.metadata as HookDecision['metadata'];
      if (typeof answer.key === 'string') decision.key = answer.key;
      // Checked where it is applied (the engine refuses settings storage cannot take).
      if (answer.object !== undefined) decision.object = answer.object as HookDecision['object'];
      return decision;
    } catch {
      return {};
    }
  };

  // The deadline covers reading the answer too: a receiver that trickles its body cannot hold a
  // request. No answer in time, or none at all, is a failure (503), not a refusal.
  const pre = (event: HookEvent): Promise<HookDecision> =>
    withTimeout(timeoutMs, (signal) => decide(event, signal)).catch((error: unknown) => {
      throw error instanceof HookFailure ? error : new HookFailure(failureReason(error), 503);
    });

  // A 4xx (but 429) is the receiver's final word; anything else is tried again.
  const background = async (event: HookEvent): Promise<void> => {
    let attempts = 0;
    const attempt = async (n: number) => {
      attempts = n;
      const res = await withTimeout(timeoutMs, async (signal) => {
        const answer = await deliver(event, signal);
        await answer.body?.cancel();
        return answer;
      });
      if (res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429)) return;
      throw new HookFailure(`receiver answered ${res.status}`);
    };
    try {
      await retry(attempt, { attempts: options.attempts ?? 4, budgetMs: options.budgetMs ?? 10_000, maxDelayMs: exponential(400) });
    } catch (error) {
      options.onFailure?.(event.type, error);
      throw new HookFailure(`gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${failureReason(error)}`);
    }
  };

  const types: HookType[] = ['pre-create', 'post-create', 'post-receive', 'pre-finish', 'post-finish', 'pre-terminate', 'post-terminate'];
  return Object.fromEntries(types.map((type) => [type, PRE_HOOKS.includes(type) ? pre : background]));
}
