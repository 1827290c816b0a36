/**
 * A strict reader of the Prometheus text exposition format 0.0.4, as promtool's `check metrics`
 * reads it: every sample belongs to a family declared by `# TYPE` before it, names and labels
 * follow the grammar, values are floats, no series repeats, and a histogram's buckets are
 * cumulative and end at `+Inf` equal to `_count`. Throws on the first violation, naming the line.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const SUFFIXES: Record<Family['type'], readonly string[]> = {
  counter: ['', '_total', '_created'],
  gauge: [''],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['', '_sum', '_count', '_created'],
  untyped: [''],
};

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: ${JSON.stringify(text)} is not a number`);
  return Number(text);
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without a value`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`${where}: label ${name} repeated`);
    if (text[eq + 1] !== '"') throw new Error(`${where}: label ${name} is not quoted`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`${where}: bad escape \\${next ?? ''} in label ${name}`);
      } else if (text[j] === '\n') throw new Error(`${where}: raw newline in label ${name}`);
      else value += text[j];
    }
    if (j >= text.length) throw new Error(`${where}: unterminated value of label ${name}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`${where}: expected , after label ${name}`);
  }
  return labels;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === '') return;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      const [, kind, name = '', rest = ''] = meta;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      if (kind === 'TYPE') {
        if (!(rest in SUFFIXES)) throw new Error(`${where}: unknown type ${rest}`);
        if (families.get(name)?.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`);
        if (families.has(name) && families.get(name)?.type !== 'untyped') throw new Error(`${where}: ${name} typed twice`);
        families.set(name, { name, type: rest as Family['type'], help: families.get(name)?.help, samples: [] });
      } else {
        const family = families.get(name) ?? { name, type: 'untyped' as const, samples: [] };
        if (family.help !== undefined) throw new Error(`${where}: HELP of ${name} given twice`);
        family.help = rest;
        families.set(name, family);
      }
      return;
    }
    if (line.startsWith('#')) return;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!sample) throw new Error(`${where}: not a sample: ${line}`);
    const [, name = '', labelText = '', valueText = ''] = sample;
    const labels = parseLabels(labelText, where);
    const value = parseValue(valueText, where);
    const family = [...families.values()].find((f) => SUFFIXES[f.type].some((suffix) => f.name + suffix === name));
    if (!family) throw new Error(`${where}: sample ${name} has no TYPE declared before it`);
    const key = `${name}{${Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',')}}`;
    if (seen.has(key)) throw new Error(`${where}: series ${key} repeated`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  const keyOf = (labels: Readonly<Record<string, string>>): string =>
    Object.keys(labels)
      .filter((k) => k !== 'le')
      .sort()
      .map((k) => `${k}=${labels[k]}`)
      .join(',');
  for (const s of family.samples) {
    const entry = series.get(keyOf(s.labels)) ?? { buckets: [] };
    series.set(keyOf(s.labels), entry);
    if (s.name.endsWith('_bucket')) {
      const le = s.labels.le;
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      entry.buckets.push([parseValue(le, family.name), s.value]);
    } else if (s.name.endsWith('_count')) entry.count = s.value;
  }
  for (const [key, { buckets, count }] of series) {
    const last = buckets[buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${family.name}{${key}}: no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      const [le, n] = buckets[i] as [number, number];
      const [previousLe, previousN] = buckets[i - 1] as [number, number];
      if (le <= previousLe || n < previousN) throw new Error(`${family.name}{${key}}: buckets not cumulative`);
    }
    if (count !== last[1]) throw new Error(`${family.name}{${key}}: +Inf bucket ${last[1]} differs from _count ${String(count)}`);
  }
}
