// The device page: its facts, its metrics, and a plot of one metric over a
// range from /api/v1/series (min/mean/max per bucket, server-side), with
// the samples whose time was corrected or is uncorrectable marked and the
// time without data left as gaps; a CSV of what is plotted.
'use strict';

(() => {
  const { get, getJSON, el, utc, ago, status, problemBadges, configText, reportText } = edgetel;
  const REFRESH_MS = 10000;
  const params = new URLSearchParams(location.search);
  const id = params.get('id') || '';
  const plotDiv = document.getElementById('plot');
  const metricSel = document.getElementById('metric');
  const rangeSel = document.getElementById('range');
  const pointsIn = document.getElementById('points');
  let graph = null;
  let metrics = [];
  let seriesURL = null;

  document.getElementById('device-id').textContent = id;
  document.title = 'edgetel ' + id;
  if (params.get('range')) rangeSel.value = params.get('range');
  // A fixed range from the address (?from=MS&to=MS), e.g. a link to an incident.
  const fixedFrom = Number(params.get('from'));
  const fixedTo = Number(params.get('to'));
  const fixed = fixedFrom > 0 && fixedTo > fixedFrom;
  if (fixed) {
    const opt = el('option', utc(fixedFrom) + ' to ' + utc(fixedTo) + ' UTC');
    opt.value = 'fixed';
    rangeSel.appendChild(opt);
    rangeSel.value = 'fixed';
  }
  if (params.get('points')) pointsIn.value = params.get('points');

  function fact(body, name, value) {
    const tr = el('tr');
    tr.appendChild(el('th', name));
    const td = el('td');
    if (value instanceof Node) td.appendChild(value); else td.textContent = value;
    tr.appendChild(td);
    body.appendChild(tr);
  }

  function showDevice(dev, now) {
    const body = document.getElementById('device').tBodies[0];
    body.replaceChildren();
    fact(body, 'State', dev.online ? 'online' : 'offline');
    fact(body, 'Last seen', ago(dev.last_seen_ms, now) + ' (' + utc(dev.last_seen_ms) + ' UTC)');
    fact(body, 'Agent', dev.agent_version || '—');
    fact(body, 'Samples today (UTC)', dev.samples_today === null ? '—' : String(dev.samples_today));
    fact(body, 'Samples stored', String(dev.samples_stored));
    fact(body, 'Backlog (batches)', dev.outbox_batches === null ? '—' : String(dev.outbox_batches));
    fact(body, 'Dropped samples', dev.dropped_samples === null ? '—' : String(dev.dropped_samples));
    fact(body, 'Clock', dev.clock_synced ? 'synchronised' : 'not synchronised');
    fact(body, 'Config (running / desired)', configText(dev.config));
    fact(body, 'Last config result', reportText(dev.config));
    fact(body, 'Certificate expires', dev.cert_not_after_ms === null ? '—' : utc(dev.cert_not_after_ms));
    fact(body, 'Problems', dev.problems.length ? problemBadges(dev.problems) : 'none');
  }

  function showMetrics(list) {
    const body = document.getElementById('metrics').tBodies[0];
    body.replaceChildren();
    const want = metricSel.value || params.get('metric');
    metricSel.replaceChildren();
    for (const m of list) {
      const opt = el('option', m.name + (m.unit ? ' (' + m.unit + ')' : ''));
      opt.value = m.name;
      metricSel.appendChild(opt);
      const tr = el('tr');
      tr.dataset.metric = m.name;
      tr.appendChild(el('td', m.name));
      tr.appendChild(el('td', m.unit));
      tr.appendChild(el('td', m.tags));
      tr.appendChild(el('td', utc(m.first_ts_ms)));
      tr.appendChild(el('td', utc(m.last_ts_ms)));
      body.appendChild(tr);
    }
    if (want && list.some((m) => m.name === want)) metricSel.value = want;
  }

  function range(now) {
    const m = metrics.find((x) => x.name === metricSel.value);
    if (rangeSel.value === 'fixed') return [fixedFrom, fixedTo];
    if (rangeSel.value === 'all') {
      const from = m && m.first_ts_ms !== null ? m.first_ts_ms : now - 86400000;
      const to = m && m.last_ts_ms !== null ? m.last_ts_ms + 1 : now;
      return [from, Math.max(to, from + 1)];
    }
    return [now - Number(rangeSel.value), now + 1];
  }

  // A mark at a bucket's mean when it holds samples of that time quality.
  function mark(r, col) {
    return r[col] > 0 && r[2] !== null ? [r[2], r[2], r[2]] : null;
  }

  // dygraphs 2.2 writes axis titles into the page as HTML (innerHTML), so
  // the metric's name and unit go to ylabel escaped: the one place this
  // page makes HTML of text. Series labels it escapes itself (the legend).
  function htmlEscape(t) {
    return t.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;',
      '"': '&quot;', "'": '&#39;' }[c]));
  }

  function plot(s) {
    const m = metrics.find((x) => x.name === s.metric);
    const label = s.metric + (m && m.unit ? ' (' + m.unit + ')' : '');
    const data = s.rows.map((r) => [new Date(r[0]),
      r[2] === null ? null : [r[1], r[2], r[3]], mark(r, 6), mark(r, 7), mark(r, 5)]);
    const markOpts = { strokeWidth: 0, drawPoints: true, pointSize: 4, showInRangeSelector: false };
    const opts = {
      labels: ['time', label, 'corrected time', 'uncorrectable time', 'unsynced'],
      customBars: true,
      connectSeparatedPoints: false,
      labelsUTC: true,
      legend: 'always',
      colors: ['#2a6fb0', '#e08a00', '#c0202a', '#888888'],
      series: { 'corrected time': markOpts, 'uncorrectable time': markOpts, unsynced: markOpts },
      dateWindow: [s.from_ms, s.to_ms],
      ylabel: htmlEscape(label),
    };
    if (graph) {
      graph.updateOptions(Object.assign({ file: data }, opts));
    } else if (data.length) {
      graph = new Dygraph(plotDiv, data, opts);
    }
    plotDiv.dataset.metric = s.metric;
    plotDiv.dataset.points = String(s.points);
    plotDiv.dataset.gaps = String(s.gaps);
    plotDiv.dataset.rows = String(s.rows.length);
    plotDiv.dataset.corrected = String(s.corrected);
    plotDiv.dataset.uncorrectable = String(s.uncorrectable);
    plotDiv.dataset.state = data.length ? 'plotted' : 'empty';
    // From navigation to the first plot, for bench/web_page.sh.
    if (!plotDiv.dataset.loadedMs) plotDiv.dataset.loadedMs = String(Math.round(performance.now()));
    document.getElementById('plot-note').textContent = s.points + ' points of ' +
      s.samples.toLocaleString('en') + ' samples, ' + (s.bucket_ms / 1000) + ' s a bucket, ' +
      s.gaps + ' gaps, ' + s.corrected + ' corrected and ' + s.uncorrectable +
      ' uncorrectable sample times' + (data.length ? '' : ' (nothing to plot in this range)');
  }

  async function loadSeries() {
    if (!metricSel.value) return;
    const [from, to] = range(Date.now());
    const q = new URLSearchParams({ device: id, metric: metricSel.value, from: String(from),
      to: String(to), points: String(Math.max(10, Math.min(5000, Number(pointsIn.value) || 1000))) });
    seriesURL = '/api/v1/series?' + q.toString();
    const s = await getJSON(seriesURL);
    plot(s);
  }

  async function refresh() {
    try {
      const d = await getJSON('/api/v1/device?id=' + encodeURIComponent(id));
      metrics = d.metrics;
      showDevice(d.device, d.now_ms);
      showMetrics(d.metrics);
      await loadSeries();
      status('updated ' + utc(d.now_ms) + ' UTC');
    } catch (e) {
      status('cannot load ' + id + ': ' + e.message, true);
    }
  }

  async function downloadCSV() {
    if (!seriesURL) return;
    const resp = await get(seriesURL + '&format=csv');
    if (!resp.ok) { status('CSV: ' + resp.status, true); return; }
    const a = el('a');
    a.href = URL.createObjectURL(await resp.blob());
    a.download = (id + '-' + metricSel.value).replace(/[^A-Za-z0-9._-]/g, '_') + '.csv';
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  for (const c of [metricSel, rangeSel, pointsIn]) {
    c.addEventListener('change', () => loadSeries().catch((e) => status(e.message, true)));
  }
  document.getElementById('controls').addEventListener('submit', (ev) => ev.preventDefault());
  document.getElementById('csv').addEventListener('click', downloadCSV);
  refresh();
  setInterval(() => {
    if (rangeSel.value !== 'all' && rangeSel.value !== 'fixed') refresh();
  }, REFRESH_MS);
})();
