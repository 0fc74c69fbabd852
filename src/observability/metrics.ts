import type { Labels, MetricName, Metrics } from '../model/metrics.ts';

interface Family {
  help: string;
  type: 'counter' | 'gauge' | 'summary';
  /** Label set (serialized) → value, or for summaries the sum and count. */
  values: Map<string, { labels: Labels; value: number; count: number }>;
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
} as const satisfies Record<MetricName, string>;

/**
 * One server's Prometheus metrics, in the text exposition format: every part records into the
 * registry it was given, `GET /metrics` renders it.
 */
export class MetricsRegistry implements Metrics {
  readonly #families = new Map<string, Family>();

  #entry(name: MetricName, type: Family['type'], labels: Labels) {
    let f = this.#families.get(name);
    if (!f) this.#families.set(name, (f = { help: HELP[name], type, values: new Map() }));
    const key = JSON.stringify(Object.entries(labels).sort());
    let e = f.values.get(key);
    if (!e) f.values.set(key, (e = { labels, value: 0, count: 0 }));
    return e;
  }

  inc(name: MetricName, labels: Labels = {}, by = 1): void {
    this.#entry(name, 'counter', labels).value += by;
  }

  set(name: MetricName, labels: Labels, value: number): void {
    this.#entry(name, 'gauge', labels).value = value;
  }

  observe(name: MetricName, labels: Labels, seconds: number): void {
    const e = this.#entry(name, 'summary', labels);
    e.value += seconds;
    e.count += 1;
  }

  render(): string {
    const lines: string[] = [];
    const fmt = (labels: Labels) => {
      const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`);
      return parts.length ? `{${parts.join(',')}}` : '';
    };
    for (const [name, f] of this.#families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value, count } of f.values.values()) {
        if (f.type !== 'summary') lines.push(`${name}${fmt(labels)} ${value}`);
        else lines.push(`${name}_sum${fmt(labels)} ${value}`, `${name}_count${fmt(labels)} ${count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
