/** Every metric the server records (its help text lives with the registry that renders it). */
export type MetricName =
  | 'tusflow_requests_total'
  | 'tusflow_bytes_received_total'
  | 'tusflow_uploads_created_total'
  | 'tusflow_uploads_finished_total'
  | 'tusflow_uploads_terminated_total'
  | 'tusflow_s3_request_duration_seconds'
  | 'tusflow_s3_retries_total'
  | 'tusflow_lock_wait_seconds'
  | 'tusflow_hook_failures_total'
  | 'tusflow_part_buffer_bytes'
  | 'tusflow_part_buffer_wait_seconds'
  | 'tusflow_active_uploads';

export type Labels = Record<string, string>;

/**
 * Where a part of the server records what it measures. Passed in (never a module singleton), so
 * two servers in one process keep their own counts.
 */
export interface Metrics {
  inc(name: MetricName, labels?: Labels, by?: number): void;
  set(name: MetricName, labels: Labels, value: number): void;
  observe(name: MetricName, labels: Labels, seconds: number): void;
  /** Makes a labelled series exist at 0 before anything is recorded, so a scraper sees it from the start. */
  declare(name: MetricName, labels: Labels): void;
}

/** Records nothing: the default of a part that was given no registry. */
export const NO_METRICS: Metrics = { inc() {}, set() {}, observe() {}, declare() {} };
