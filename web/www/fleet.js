// The fleet page: every device, refreshed every few seconds from
// /api/v1/fleet; sortable; problems stand out.
'use strict';

(() => {
  const { getJSON, el, utc, ago, status, problemBadges, configText, reportText } = edgetel;
  const REFRESH_MS = 5000;
  let sortKey = 'id';
  let sortDir = 1;
  let last = null;

  function sortValue(d, key) {
    switch (key) {
      case 'config_version': return d.config ? d.config.running_version : -1;
      case 'config_result': return d.config && d.config.report ? d.config.report.result : '';
      case 'problems': return d.problems.length;
      case 'online': return d.online ? 1 : 0;
      default: {
        const v = d[key];
        return v === null || v === undefined ? -1 : v;
      }
    }
  }

  function compare(a, b) {
    const x = sortValue(a, sortKey);
    const y = sortValue(b, sortKey);
    if (x < y) return -sortDir;
    if (x > y) return sortDir;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }

  function numCell(v, flag) {
    const td = el('td', v === null || v === undefined ? '—' : v.toLocaleString('en'), 'num');
    if (flag) td.classList.add('flag');
    return td;
  }

  function row(d, now) {
    const tr = el('tr');
    tr.dataset.device = d.id;
    tr.dataset.problems = d.problems.join(' ');
    if (d.problems.some((p) => p === 'offline' || p === 'dropping' || p === 'config_failed')) {
      tr.className = 'bad';
    } else if (d.problems.length) {
      tr.className = 'warn';
    }
    const name = el('td');
    const a = el('a', d.id);
    a.href = '/device?id=' + encodeURIComponent(d.id);
    name.appendChild(a);
    tr.appendChild(name);
    tr.appendChild(el('td', d.online ? 'online' : 'offline', d.online ? 'ok' : 'flag'));
    const seen = el('td', ago(d.last_seen_ms, now));
    seen.title = utc(d.last_seen_ms) + ' UTC';
    tr.appendChild(seen);
    tr.appendChild(numCell(d.samples_today));
    tr.appendChild(numCell(d.outbox_batches, d.problems.includes('behind')));
    tr.appendChild(numCell(d.dropped_samples, d.dropped_samples > 0));
    tr.appendChild(el('td', configText(d.config),
      d.config && d.config.state === 'refused' ? 'flag' : ''));
    tr.appendChild(el('td', reportText(d.config)));
    tr.appendChild(el('td', d.cert_not_after_ms === null ? '—' : utc(d.cert_not_after_ms)));
    const p = el('td');
    p.appendChild(problemBadges(d.problems));
    tr.appendChild(p);
    return tr;
  }

  function render() {
    if (!last) return;
    const table = document.getElementById('fleet');
    const body = table.tBodies[0];
    const devices = last.devices.slice().sort(compare);
    const rows = devices.map((d) => row(d, last.now_ms));
    body.replaceChildren(...rows);
    table.dataset.devices = String(devices.length);
    for (const th of table.tHead.rows[0].cells) {
      th.classList.toggle('sorted', th.dataset.key === sortKey);
      th.classList.toggle('desc', th.dataset.key === sortKey && sortDir < 0);
    }
    const online = devices.filter((d) => d.online).length;
    const troubled = devices.filter((d) => d.problems.length).length;
    document.getElementById('summary').textContent = devices.length + ' devices, ' + online +
      ' online, ' + troubled + ' with problems' + (last.truncated ? ' (list truncated)' : '');
  }

  async function refresh() {
    try {
      last = await getJSON('/api/v1/fleet');
      render();
      status('updated ' + utc(last.now_ms) + ' UTC');
    } catch (e) {
      status('cannot load the fleet: ' + e.message, true);
    }
  }

  for (const th of document.getElementById('fleet').tHead.rows[0].cells) {
    if (!th.dataset.key) continue;
    th.addEventListener('click', () => {
      sortDir = sortKey === th.dataset.key ? -sortDir : 1;
      sortKey = th.dataset.key;
      render();
    });
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
