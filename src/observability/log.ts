/** One JSON line per request (and per background failure), with the request id. */
export type LogEntry = Record<string, string | number | boolean | undefined>;
export type Logger = (entry: LogEntry) => void;

export const jsonLogger: Logger = (entry) => console.log(JSON.stringify({ time: new Date().toISOString(), ...entry }));

/** The client's X-Request-Id when it is a sane token, else a new one. */
export function requestId(header: string | null): string {
  return header && /^[\w.:-]{1,64}$/.test(header) ? header : crypto.randomUUID();
}
