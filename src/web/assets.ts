/**
 * The page's own stylesheet and script, served by xporta (no third-party assets; the CSP allows
 * only these). The script only improves the plain forms: upload progress through XMLHttpRequest
 * upload events, and a note while an import is applied. Its messages come from the page (data-*
 * attributes rendered from the strings table), so it holds no words of its own.
 */
export const APP_CSS = `
:root { --fg: #1b1b1f; --muted: #45454d; --bg: #ffffff; --panel: #f4f4f7; --accent: #0b57a4; --accent-fg: #ffffff;
  --err-bg: #fdecea; --err-fg: #8a1c13; --ok-bg: #e8f3ea; --ok-fg: #1c4d25; --line: #c9c9d1; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; font-size: 100%; line-height: 1.5; color: var(--fg); background: var(--bg); }
body { margin: 0; }
.skip { position: absolute; left: -999px; top: 0; background: var(--accent); color: var(--accent-fg); padding: .5rem 1rem; }
.skip:focus { left: .5rem; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .75rem 1rem; background: var(--panel); border-bottom: 1px solid var(--line); }
.brand { margin: 0; font-weight: 700; font-size: 1.2rem; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
nav a { color: var(--accent); text-decoration: none; padding: .25rem 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: underline; }
form.signout { margin-left: auto; display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.who { color: var(--muted); overflow-wrap: anywhere; }
main { max-width: 44rem; margin: 0 auto; padding: 1rem; }
main:focus { outline: none; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; }
a { color: var(--accent); }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
.hint { color: var(--muted); margin: .25rem 0 0; font-size: .95rem; }
input[type=text], input[type=password], input[type=email], input[type=url], input[type=file] { width: 100%; max-width: 30rem; font: inherit; padding: .5rem; border: 1px solid #6b6b75; border-radius: 4px; background: #fff; color: var(--fg); }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 1rem 0; padding: .5rem 1rem 1rem; }
legend { font-weight: 600; padding: 0 .25rem; }
.choice { display: flex; gap: .5rem; align-items: flex-start; margin: .5rem 0; font-weight: 400; }
.choice input { margin-top: .35rem; }
button { font: inherit; cursor: pointer; border-radius: 4px; padding: .55rem 1.1rem; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); margin-top: 1rem; }
button.secondary { background: #fff; color: var(--accent); }
button.link { background: none; border: none; color: var(--accent); padding: .25rem; margin: 0; text-decoration: underline; }
:focus-visible { outline: 3px solid #e07b00; outline-offset: 2px; }
.notice { padding: .75rem 1rem; border-radius: 6px; margin: 1rem 0; }
.notice.error { background: var(--err-bg); color: var(--err-fg); border: 1px solid #e3a39c; }
.notice.info { background: var(--ok-bg); color: var(--ok-fg); border: 1px solid #9cc8a5; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.report { padding-left: 1.25rem; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; }
.actions form { margin: 0; }
progress { width: 100%; max-width: 30rem; height: 1.25rem; }
.progress[hidden] { display: none; }
.divider { border: 0; border-top: 1px solid var(--line); margin: 2rem 0 1rem; }
@media (max-width: 480px) {
  h1 { font-size: 1.35rem; }
  form.signout { margin-left: 0; width: 100%; justify-content: space-between; }
  button { width: 100%; }
  button.link { width: auto; }
}
`;

export const APP_JS = `'use strict';
(function () {
  var focusNotice = function () {
    var n = document.getElementById('notice');
    if (n) n.focus();
  };
  document.addEventListener('DOMContentLoaded', function () {
    focusNotice();
    var upload = document.querySelector('form[data-upload]');
    if (upload && window.XMLHttpRequest && window.FormData) {
      upload.addEventListener('submit', function (event) {
        var input = upload.querySelector('input[type=file]');
        if (!input || !input.files || input.files.length === 0) return;
        event.preventDefault();
        var box = document.getElementById('upload-progress');
        var bar = box.querySelector('progress');
        var text = box.querySelector('[data-text]');
        var button = upload.querySelector('button[type=submit]');
        box.hidden = false;
        button.disabled = true;
        text.textContent = upload.getAttribute('data-uploading');
        var xhr = new XMLHttpRequest();
        xhr.open('POST', upload.action);
        xhr.setRequestHeader('X-Xporta-Upload', '1');
        xhr.upload.addEventListener('progress', function (e) {
          if (!e.lengthComputable) return;
          var percent = Math.floor((e.loaded / e.total) * 100);
          bar.value = percent;
          text.textContent = upload.getAttribute('data-progress').replace('{percent}', String(percent));
        });
        xhr.upload.addEventListener('load', function () {
          bar.value = 100;
          text.textContent = upload.getAttribute('data-checking');
        });
        xhr.addEventListener('load', function () {
          var next = xhr.getResponseHeader('X-Xporta-Next');
          if (next) window.location.assign(next);
          else if (xhr.status < 400 && xhr.responseURL) window.location.assign(xhr.responseURL);
          else { text.textContent = upload.getAttribute('data-failed'); button.disabled = false; }
        });
        xhr.addEventListener('error', function () {
          text.textContent = upload.getAttribute('data-failed');
          button.disabled = false;
        });
        xhr.send(new FormData(upload));
      });
    }
    var refresh = document.querySelector('a[data-refresh]');
    if (refresh) {
      // The contacts' answers come in over time: the list is read again while the page is open.
      window.setTimeout(function () { window.location.reload(); }, 1000 * Number(refresh.getAttribute('data-refresh')));
    }
    var busy = document.querySelectorAll('form[data-busy]');
    Array.prototype.forEach.call(busy, function (form) {
      form.addEventListener('submit', function () {
        var note = document.getElementById(form.getAttribute('data-busy'));
        if (note) note.hidden = false;
        Array.prototype.forEach.call(form.querySelectorAll('button'), function (b) { b.disabled = true; });
      });
    });
  });
})();
`;
