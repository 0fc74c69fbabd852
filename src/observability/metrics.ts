import type { Labels, MetricName, Metrics } from '../model/metrics.ts';

type Kind = 'counter' | 'gauge' | 'histogram';

/** A series: a counter's or gauge's value, or a histogram's sum, count and per-bucket counts. */
interface Series {
  labels: Labels;
  value: number;
  count: number;
  buckets: number[];
}

interface Family {
  help: string;
  kind: Kind;
  series: Map<string, Series>;
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
  tusflow_active_uploads: 'Uploads receiving bytes right now (PATCHes in progress).',
} as const satisfies Record<MetricName, string>;

const KINDS = {
  tusflow_requests_total: 'counter',
  tusflow_bytes_received_total: 'counter',
  tusflow_uploads_created_total: 'counter',
  tusflow_uploads_finished_total: 'counter',
  tusflow_uploads_terminated_total: 'counter',
  tusflow_s3_request_duration_seconds: 'histogram',
  tusflow_s3_retries_total: 'counter',
  tusflow_lock_wait_seconds: 'histogram',
  tusflow_hook_failures_total: 'counter',
  tusflow_part_buffer_bytes: 'gauge',
  tusflow_part_buffer_wait_seconds: 'histogram',
  tusflow_active_uploads: 'gauge',
} as const satisfies Record<MetricName, Kind>;

/** Series whose labels are not known in advance: they appear with their first sample. */
const LABELLED: ReadonlySet<MetricName> = new Set([
  'tusflow_requests_total',
  'tusflow_s3_request_duration_seconds',
  'tusflow_s3_retries_total',
  'tusflow_hook_failures_total',
]);

/** Upper bounds, in seconds, of the histogram buckets: from a fast lock (1 ms) to a slow S3 part (60 s). */
export const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

/** Gauges read when /metrics is rendered, from what only the runtime can tell. */
export const COLLECTED_HELP = {
  process_resident_memory_bytes: 'Resident memory of the server process, in bytes.',
} as const;
export type CollectedName = keyof typeof COLLECTED_HELP;

const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());

function formatLabels(labels: Labels, extra = ''): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/**
 * One server's Prometheus metrics, in the text exposition format: every part records into the
 * registry it was given, `GET /metrics` renders it. Every series without labels is there at 0 from
 * the start; labelled ones from their `declare` (their known label values) or first sample.
 */
export class MetricsRegistry implements Metrics {
  readonly #families = new Map<MetricName, Family>();
  readonly #collected = new Map<CollectedName, () => number>();

  constructor() {
    for (const name of Object.keys(HELP) as MetricName[]) {
      const family: Family = { help: HELP[name], kind: KINDS[name], series: new Map() };
      this.#families.set(name, family);
      if (!LABELLED.has(name)) this.#series(name, {});
    }
  }

  #series(name: MetricName, labels: Labels): Series {
    const family = this.#families.get(name)!;
    const k = key(labels);
    let series = family.series.get(k);
    if (!series) family.series.set(k, (series = { labels, value: 0, count: 0, buckets: family.kind === 'histogram' ? BUCKETS.map(() => 0) : [] }));
    return series;
  }

  inc(name: MetricName, labels: Labels = {}, by = 1): void {
    this.#series(name, labels).value += by;
  }

  set(name: MetricName, labels: Labels, value: number): void {
    this.#series(name, labels).value = value;
  }

  observe(name: MetricName, labels: Labels, seconds: number): void {
    const series = this.#series(name, labels);
    series.value += seconds;
    series.count += 1;
    const at = BUCKETS.findIndex((bound) => seconds <= bound);
    if (at !== -1) series.buckets[at]! += 1;
  }

  declare(name: MetricName, labels: Labels): void {
    this.#series(name, labels);
  }

  /** A gauge read at each render (process memory: only where the runtime can tell). */
  collect(name: CollectedName, read: () => number): void {
    this.#collected.set(name, read);
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.kind}`);
      for (const { labels, value, count, buckets } of family.series.values()) {
        if (family.kind !== 'histogram') {
          lines.push(`${name}${formatLabels(labels)} ${value}`);
          continue;
        }
        let cumulative = 0;
        BUCKETS.forEach((bound, i) => {
          cumulative += buckets[i]!;
          lines.push(`${name}_bucket${formatLabels(labels, `le="${bound}"`)} ${cumulative}`);
        });
        lines.push(
          `${name}_bucket${formatLabels(labels, 'le="+Inf"')} ${count}`,
          `${name}_sum${formatLabels(labels)} ${value}`,
          `${name}_count${formatLabels(labels)} ${count}`,
        );
      }
    }
    for (const [name, read] of this.#collected) {
      lines.push(`# HELP ${name} ${COLLECTED_HELP[name]}`, `# TYPE ${name} gauge`, `${name} ${read()}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
