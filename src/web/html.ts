/**
 * HTML from template literals with one escaping rule: every interpolated value is escaped unless
 * it is already {@link SafeHtml} (the result of another `html` template). Arrays are joined.
 */
import { strings } from './strings.js';

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

type Interpolated = SafeHtml | string | number | boolean | null | undefined | readonly Interpolated[];

function render(value: Interpolated): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map((v: Interpolated) => render(v)).join('');
  return escapeHtml(String(value));
}

export function html(parts: TemplateStringsArray, ...values: Interpolated[]): SafeHtml {
  let out = parts[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (parts[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

export interface LayoutOptions {
  readonly title: string;
  /** The signed-in account, for the header; absent on the sign-in page. */
  readonly jid?: string;
  readonly csrf?: string;
  /** Which navigation entry is the current page. */
  readonly current?: 'overview' | 'import' | 'move';
  readonly showMove?: boolean;
  readonly base: string;
}

/** A message box: `error` is announced to screen readers at once. */
export function notice(kind: 'error' | 'info', text: string | undefined): SafeHtml {
  if (text === undefined) return html``;
  return kind === 'error'
    ? html`<div class="notice error" role="alert" id="notice" tabindex="-1">${text}</div>`
    : html`<div class="notice info" role="status" id="notice" tabindex="-1">${text}</div>`;
}

export function layout(options: LayoutOptions, body: SafeHtml): string {
  const { base } = options;
  const nav = (key: 'overview' | 'import' | 'move', href: string, label: string): SafeHtml =>
    html`<li><a href="${href}"${options.current === key ? html` aria-current="page"` : html``}>${label}</a></li>`;
  const header =
    options.jid !== undefined
      ? html`<header class="top">
  <p class="brand">${strings.appName}</p>
  <nav aria-label="${strings.mainNav}"><ul>
    ${nav('overview', `${base}/`, strings.navOverview)}
    ${nav('import', `${base}/import`, strings.navImport)}
    ${options.showMove === true ? nav('move', `${base}/move`, strings.navMove) : html``}
  </ul></nav>
  <form method="post" action="${base}/sign-out" class="signout">
    <input type="hidden" name="csrf" value="${options.csrf ?? ''}">
    <span class="who">${strings.signedInAs(options.jid)}</span>
    <button type="submit" class="link">${strings.signOut}</button>
  </form>
</header>`
      : html`<header class="top"><p class="brand">${strings.appName}</p></header>`;
  return `<!doctype html>
${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${strings.pageTitle(options.title)}</title>
<link rel="stylesheet" href="${base}/static/app.css">
<script src="${base}/static/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">${strings.skipToContent}</a>
${header}
<main id="main" tabindex="-1">
<h1>${options.title}</h1>
${body}
</main>
</body>
</html>`.value}
`;
}
