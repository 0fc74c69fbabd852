/**
 * Prometheus metrics of this process, in the text exposition format. One registry per process, as
 * Prometheus clients keep it: every part records into it, `GET /metrics` renders it.
 */
type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'counter' | 'gauge' | 'summary';
  /** Label set (serialized) → value, or for summaries the sum and count. */
  values: Map<string, { labels: Labels; value: number; count: number }>;
}

const families = new Map<string, Family>();

function family(name: string, help: string, type: Family['type']): Family {
  let f = families.get(name);
  if (!f) families.set(name, (f = { help, type, values: new Map() }));
  return f;
}

function entry(f: Family, labels: Labels) {
  const key = JSON.stringify(Object.entries(labels).sort());
  let e = f.values.get(key);
  if (!e) f.values.set(key, (e = { labels, value: 0, count: 0 }));
  return e;
}

export const HELP = {
  tusflow_requests_total: 'HTTP requests answered, by method and status.',
  tusflow_bytes_received_total: 'Upload bytes stored (acknowledged to clients).',
  tusflow_uploads_created_total: 'Uploads created.',
  tusflow_uploads_finished_total: 'Uploads finished.',
  tusflow_uploads_terminated_total: 'Uploads terminated by clients.',
  tusflow_s3_request_duration_seconds: 'S3 requests, by operation: time until the answer.',
  tusflow_s3_retries_total: 'S3 requests sent again after a failure, by operation.',
  tusflow_lock_wait_seconds: 'Time spent waiting for an upload lock.',
  tusflow_hook_failures_total: 'Hooks that failed (threw, or a webhook that gave up or could not answer), by hook.',
  tusflow_part_buffer_bytes: 'Memory in S3 part buffers (in use or kept for reuse); at most S3_BUFFER_MEMORY.',
  tusflow_part_buffer_wait_seconds: 'Time PATCHes waited for a part buffer because S3_BUFFER_MEMORY was spent.',
} as const;
type Name = keyof typeof HELP;

export const metrics = {
  inc(name: Name, labels: Labels = {}, by = 1): void {
    entry(family(name, HELP[name], 'counter'), labels).value += by;
  },
  set(name: Name, labels: Labels, value: number): void {
    entry(family(name, HELP[name], 'gauge'), labels).value = value;
  },
  observe(name: Name, labels: Labels, seconds: number): void {
    const e = entry(family(name, HELP[name], 'summary'), labels);
    e.value += seconds;
    e.count += 1;
  },
  render(): string {
    const lines: string[] = [];
    const fmt = (labels: Labels) => {
      const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`);
      return parts.length ? `{${parts.join(',')}}` : '';
    };
    for (const [name, f] of families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value, count } of f.values.values()) {
        if (f.type !== 'summary') lines.push(`${name}${fmt(labels)} ${value}`);
        else lines.push(`${name}_sum${fmt(labels)} ${value}`, `${name}_count${fmt(labels)} ${count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  },
};
