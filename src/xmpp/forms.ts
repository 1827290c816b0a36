/**
 * XEP-0004 data forms: just enough to render the commands' forms and results and to read what a
 * client submitted.
 */
import { NS, x, type Stanza } from './ltx.js';

export type FieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

export interface Field {
  readonly var?: string;
  readonly type: FieldType;
  readonly label?: string;
  readonly desc?: string;
  readonly required?: boolean;
  readonly values?: readonly string[];
  readonly options?: readonly { readonly value: string; readonly label?: string }[];
}

export interface Form {
  readonly type: 'form' | 'result';
  readonly title?: string;
  readonly instructions?: readonly string[];
  readonly fields: readonly Field[];
}

export function renderForm(form: Form): Stanza {
  return x(
    'x',
    { xmlns: NS.dataForms, type: form.type },
    form.title !== undefined && x('title', {}, form.title),
    (form.instructions ?? []).map((line) => x('instructions', {}, line)),
    form.fields.map((f) =>
      x(
        'field',
        { var: f.var, type: f.type, label: f.label },
        f.desc !== undefined && x('desc', {}, f.desc),
        f.required === true && x('required'),
        (f.values ?? []).map((v) => x('value', {}, v)),
        (f.options ?? []).map((o) => x('option', { label: o.label }, x('value', {}, o.value))),
      ),
    ),
  );
}

/** Values of a submitted form (`type='submit'`), by field var; empty for anything else. */
export function submittedValues(container: Stanza | undefined): Map<string, string[]> {
  const values = new Map<string, string[]>();
  const form = container?.getChild('x', NS.dataForms);
  if (!form || form.attrs.type !== 'submit') return values;
  for (const field of form.getChildren('field')) {
    const name = field.attrs.var;
    if (name === undefined) continue;
    values.set(
      name,
      field.getChildren('value').map((v) => v.getText()),
    );
  }
  return values;
}

/** A single value, trimmed; undefined when absent or empty. */
export function single(values: ReadonlyMap<string, readonly string[]>, name: string): string | undefined {
  const v = values.get(name)?.[0]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** XEP-0004 booleans are `1`/`true` or `0`/`false`. */
export function bool(values: ReadonlyMap<string, readonly string[]>, name: string, fallback: boolean): boolean {
  const v = single(values, name);
  if (v === undefined) return fallback;
  return v === '1' || v === 'true';
}
