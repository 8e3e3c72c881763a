// Shared by the fleet and device pages. Every piece of text from the server
// goes into the page through textContent or an attribute, never as HTML.
'use strict';

const edgetel = (() => {
  const tokenKey = 'edgetel-token';

  function headers() {
    const t = sessionStorage.getItem(tokenKey);
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  function showLogin() {
    const form = document.getElementById('login');
    if (!form || !form.hidden) return;
    form.hidden = false;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(tokenKey, document.getElementById('token').value.trim());
      location.reload();
    });
  }

  // GET a path of the API; resolves to the response (ok or not), shows the
  // token form on 401.
  async function get(path) {
    const resp = await fetch(path, { headers: headers(), cache: 'no-store' });
    if (resp.status === 401) showLogin();
    return resp;
  }

  async function getJSON(path) {
    const resp = await get(path);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      const why = body && typeof body.error === 'string' ? body.error : resp.statusText;
      throw new Error(resp.status + ': ' + why);
    }
    return body;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function pad(n) { return n < 10 ? '0' + n : String(n); }

  // "2024-05-01 12:34:56" in UTC.
  function utc(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) +
      ' ' + pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
  }

  function ago(ms, now) {
    if (!ms) return 'never';
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' days ago';
  }

  function status(text, bad) {
    const s = document.getElementById('status');
    s.textContent = text;
    s.classList.toggle('bad', !!bad);
  }

  const problemText = {
    offline: 'offline', silent: 'silent', dropping: 'dropping samples',
    behind: 'behind', config_failed: 'config failed',
  };
  const badProblems = new Set(['offline', 'dropping', 'config_failed']);

  function problemBadges(problems) {
    const span = el('span');
    for (const p of problems || []) {
      span.appendChild(el('span', problemText[p] || p,
        'badge ' + (badProblems.has(p) ? 'bad' : 'warn')));
    }
    return span;
  }

  function configText(c) {
    if (!c) return '—';
    const run = c.running_version ? 'v' + c.running_version : 'file';
    if (c.desired_version === null) return run;
    return run + ' / v' + c.desired_version + (c.desired_kind === 'group'
      ? ' (group ' + c.desired_for + ')' : '') + ' — ' + c.state;
  }

  function reportText(c) {
    if (!c || !c.report) return '—';
    const r = c.report;
    return 'v' + r.version + ' ' + r.result + (r.reason ? ': ' + r.reason : '');
  }

  return { get, getJSON, el, utc, ago, status, problemBadges, configText, reportText };
})();
