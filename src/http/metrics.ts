/**
 * Prometheus text exposition (format 0.0.4) of a handful of counters and gauges. Small enough
 * not to need a client library; label values are escaped as the format requires.
 */
type Labels = Readonly<Record<string, string>>;

interface Series {
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, number>;
}

function labelKey(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${(labels[k] ?? '').replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Metrics {
  private readonly series = new Map<string, Series>();

  constructor() {
    this.define('xporta_http_requests_total', 'counter', 'HTTP requests by method, route and status.');
    this.define('xporta_bytes_streamed_total', 'counter', 'Bytes of XEP-0227 streamed, by direction (export, import).');
    this.define('xporta_records_total', 'counter', 'Records exported or imported, by direction and data kind.');
    this.define('xporta_errors_total', 'counter', 'Errors answered, by problem type.');
    this.define('xporta_imports_in_progress', 'gauge', 'Imports running now.');
    this.define('xporta_component_connected', 'gauge', '1 while the XMPP component is connected.');
  }

  private define(name: string, type: Series['type'], help: string): void {
    this.series.set(name, { help, type, values: new Map() });
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const s = this.series.get(name);
    if (!s) throw new Error(`unknown metric ${name}`);
    const key = labelKey(labels);
    s.values.set(key, (s.values.get(key) ?? 0) + by);
  }

  set(name: string, value: number, labels: Labels = {}): void {
    const s = this.series.get(name);
    if (!s) throw new Error(`unknown metric ${name}`);
    s.values.set(labelKey(labels), value);
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, s] of this.series) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const [key, value] of s.values) lines.push(`${name}${key} ${value}`);
    }
    return lines.join('\n') + '\n';
  }
}
