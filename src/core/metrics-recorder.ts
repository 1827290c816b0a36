/**
 * What the import pipeline and the transfer counters record into: the service's Prometheus
 * metrics (metrics.ts) or, in a CLI run, nothing. Apart from metrics.ts so that a face that has
 * no one to scrape its figures does not load prom-client.
 */

export type Labels = Readonly<Record<string, string>>;

/** Long-running operations whose duration is measured. */
export type Operation = 'export' | 'export_file' | 'import' | 'dry_run' | 'import_from' | 'host_export' | 'host_import' | 'host_dry_run';

export type Outcome = 'ok' | 'error';

export interface MetricsRecorder {
  /** Adds `by` to counter family `name` (an unknown family is a programming error). */
  inc(name: string, labels?: Labels, by?: number): void;
  /** Starts timing `operation`; call the result once, with how it ended. */
  time(operation: Operation): (outcome: Outcome) => void;
}

/** Records nothing: a CLI process exits before anyone could read its figures. */
export const UNRECORDED: MetricsRecorder = {
  inc: () => undefined,
  time: () => () => undefined,
};
