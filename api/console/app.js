// hookstream console: plain ES2020, no build step, no external resources.
// It talks to the JSON API under /api/v1 with the token the user gives it,
// kept in sessionStorage (this tab only).
'use strict';

(() => {
  const API = '/api/v1';
  const TOKEN_KEY = 'hookstream.token';
  const LIVE_CAP = 200;
  const MAX_SERIES = 8;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const state = {
    token: '',
    info: null,
    skew: 0, // server clock minus browser clock, ms
    catalog: null,
    journeys: [],
    search: { query: null, cursor: null, page: 0 },
    live: null,
    metricsSeq: 0,
    alert: '', // the fingerprint of the alert whose detail is open
    alertsSeq: 0,
    alertSeq: 0,
  };

  // ---- helpers -----------------------------------------------------------

  // el builds an element: el('td', {class: 'x', dataset: {id}}, child, 'text').
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  const serverNow = () => new Date(Date.now() + state.skew);
  const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const pad = (n) => String(n).padStart(2, '0');

  function fmtTime(s) {
    if (!s) return '';
    const d = new Date(s);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }

  function fmtDateTime(s) {
    if (!s) return '';
    const d = new Date(s);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${fmtTime(s)}`;
  }

  function fmtDuration(sec) {
    if (sec === null || sec === undefined) return '';
    if (sec < 60) return `${Math.round(sec)}s`;
    if (sec < 3600) return `${Math.round(sec / 60)}m`;
    if (sec < 86400) return `${(sec / 3600).toFixed(1)}h`;
    return `${(sec / 86400).toFixed(1)}d`;
  }

  function fmtNum(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    if (unit === 'ratio') return `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`;
    const a = Math.abs(v);
    let s;
    if (a >= 1e6) s = `${(v / 1e6).toFixed(1)}M`;
    else if (a >= 1e4) s = `${(v / 1e3).toFixed(1)}k`;
    else if (Number.isInteger(v)) s = String(v);
    else s = v.toFixed(a < 10 ? 2 : 1);
    return unit === 'ms' ? `${s} ms` : s;
  }

  const pct = (r) => `${(r * 100).toFixed(1)}%`;
  const short = (id) => (id && id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id || '');

  // relTime reads a time field: "", "now", "-2h" (m, h, d; server clock),
  // a date or RFC 3339 (passed on unchanged).
  function relTime(s) {
    s = (s || '').trim();
    if (s === '') return '';
    if (s === 'now') return iso(serverNow());
    const m = /^-?(\d+(?:\.\d+)?)\s*([mhdw])$/.exec(s);
    if (m) {
      const unit = { m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2]];
      return iso(new Date(serverNow().getTime() - Number(m[1]) * unit));
    }
    return s;
  }

  function debounce(fn, ms) {
    let t = 0;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  }

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, title, detail, param) {
      super(detail || title);
      this.status = status;
      this.title = title;
      this.detail = detail;
      this.param = param;
    }
  }

  // problemOf reads an error answer: problem+json's title, detail and param.
  async function problemOf(res) {
    let p = {};
    const ct = res.headers.get('Content-Type') || '';
    try {
      if (ct.includes('json')) p = await res.json();
      else p = { detail: (await res.text()).trim().slice(0, 500) };
    } catch (_) {
      p = {};
    }
    return new ApiError(res.status, p.title || res.statusText || 'Error', p.detail || `HTTP ${res.status}`, p.param);
  }

  function url(path, params) {
    const u = new URL(API + path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
    }
    return u;
  }

  async function api(path, params, token) {
    let res;
    try {
      res = await fetch(url(path, params), {
        headers: { Authorization: `Bearer ${token || state.token}`, Accept: 'application/json' },
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'Network error', `cannot reach the API: ${e.message}`);
    }
    if (!res.ok) {
      const err = await problemOf(res);
      if (res.status === 401 && !token) signOut(err);
      throw err;
    }
    return res.json();
  }

  function showProblem(id, err) {
    const p = $(id);
    if (!err) {
      p.hidden = true;
      p.textContent = '';
      return;
    }
    p.textContent = '';
    const head = err.status ? `${err.status} ${err.title}` : err.title || 'Error';
    p.append(el('strong', null, head), ' ', err.detail || err.message || '');
    if (err.param) p.append(' ', el('span', { class: 'muted' }, `(${err.param})`));
    p.hidden = false;
  }

  // ---- sign-in -----------------------------------------------------------

  async function signIn(token) {
    showProblem('signin-error', null);
    const info = await api('/info', null, token);
    state.token = token;
    state.info = info;
    state.skew = Date.parse(info.time) - Date.now();
    sessionStorage.setItem(TOKEN_KEY, token);
    $('who-name').textContent = info.token;
    $('who-scope').textContent = info.scope;
    $('who-scope').className = `badge scope-${info.scope}`;
    $('who-version').textContent = `${info.version}${info.namespace ? ` · ${info.namespace}` : ''}`;
    $('signin').hidden = true;
    $('app').hidden = false;
    $('who').hidden = false;
    $('nav').hidden = false;
    document.body.classList.add('signed-in');
    startApp();
  }

  function signOut(err) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = '';
    state.info = null;
    if (state.live) state.live.destroy();
    state.live = null;
    $('app').hidden = true;
    $('who').hidden = true;
    $('nav').hidden = true;
    document.body.classList.remove('signed-in');
    $('signin').hidden = false;
    $('token').value = '';
    resetPanels();
    if (err) showProblem('signin-error', err);
    $('token').focus();
  }

  function resetPanels() {
    for (const id of ['live-rows', 'search-rows', 'chart', 'chart-legend', 'chart-readout', 'funnel', 'recent']) $(id).textContent = '';
    $('detail').replaceChildren(el('p', { class: 'empty' }, 'Click an event to see its body and the journeys it moved.'));
    $('instance').replaceChildren(el('p', { class: 'empty' }, 'Pick a subject, or a recent instance above, to see its timeline.'));
    for (const id of ['metrics-error', 'live-error', 'detail-error', 'search-error', 'funnel-error', 'instance-error']) showProblem(id, null);
    $('live-count').textContent = '0';
    $('live-empty').hidden = false;
    $('search-empty').hidden = false;
    $('search-next').hidden = true;
    $('search-first').hidden = true;
    $('search-page').textContent = '';
    resetAlerts();
  }

  async function startApp() {
    if (state.live) state.live.destroy();
    const live = new LiveTail();
    state.live = live;
    live.start($('live-topic').value.trim());
    await Promise.all([loadCatalog(), loadJourneys(), startAlerts()]);
  }

  // ---- live tail ---------------------------------------------------------

  // SSEReader reads a Server-Sent Events stream from a fetch body: fields
  // event, data, id and retry; comments start with ':'; a blank line ends a
  // message.
  class SSEReader {
    constructor(onMessage) {
      this.onMessage = onMessage;
      this.buf = '';
      this.type = '';
      this.data = [];
      this.lastId = '';
      this.retry = null;
    }

    push(chunk) {
      this.buf += chunk;
      for (;;) {
        const m = /\r\n|\r|\n/.exec(this.buf);
        if (!m) return;
        // A lone \r at the end may be the first half of \r\n.
        if (m[0] === '\r' && m.index === this.buf.length - 1) return;
        const line = this.buf.slice(0, m.index);
        this.buf = this.buf.slice(m.index + m[0].length);
        this.line(line);
      }
    }

    line(line) {
      if (line === '') {
        const data = this.data;
        const type = this.type || 'message';
        this.data = [];
        this.type = '';
        // A message without data dispatches nothing, but its id still
        // counts: it is where a reconnect resumes.
        this.onMessage({ type, data: data.length ? data.join('\n') : null, id: this.lastId });
        return;
      }
      if (line[0] === ':') return; // a comment (heartbeat)
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      switch (field) {
        case 'event':
          this.type = value;
          break;
        case 'data':
          this.data.push(value);
          break;
        case 'id':
          if (!value.includes('\0')) this.lastId = value;
          break;
        case 'retry':
          if (/^\d+$/.test(value)) this.retry = Number(value);
          break;
        default:
      }
    }
  }

  // LiveTail keeps GET /api/v1/live open with fetch (EventSource cannot send
  // Authorization), and reconnects after an error with Last-Event-ID, so
  // nothing the feed still holds is missed or shown twice.
  class LiveTail {
    constructor() {
      this.gen = 0;
      this.ctrl = null;
      this.lastId = '';
      this.retry = 2000;
      this.count = 0;
      this.connects = 0;
      this.reconnects = 0;
      this.paused = false;
      this.held = [];
      this.lastByte = 0;
      this.watchdog = setInterval(() => this.checkIdle(), 5000);
    }

    start(topics) {
      this.stop();
      this.topics = topics;
      this.lastId = '';
      this.held = [];
      const gen = ++this.gen;
      this.run(gen);
    }

    stop() {
      this.gen++;
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = null;
      this.status('off', '');
    }

    destroy() {
      this.stop();
      clearInterval(this.watchdog);
    }

    status(kind, note) {
      const s = $('live-status');
      s.textContent = kind;
      s.className = `pill ${kind.replace(/\W.*$/, '')}`;
      s.dataset.state = kind;
      $('live-note').textContent = note || '';
      alertsUpdates();
      const panel = $('live-panel');
      panel.dataset.connects = String(this.connects);
      panel.dataset.reconnects = String(this.reconnects);
      panel.dataset.lastEventId = this.lastId;
    }

    // checkIdle drops a connection that has been silent for three heartbeats.
    checkIdle() {
      if (this.ctrl && this.lastByte && Date.now() - this.lastByte > 45000) this.ctrl.abort(new Error('no heartbeat for 45s'));
    }

    async run(gen) {
      while (gen === this.gen && state.token) {
        const ctrl = new AbortController();
        this.ctrl = ctrl;
        try {
          const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
          if (this.lastId) headers['Last-Event-ID'] = this.lastId;
          this.status(this.connects ? 'reconnecting' : 'connecting', '');
          const res = await fetch(url('/live', { types: 'event,alert', topics: this.topics }), { headers, signal: ctrl.signal, cache: 'no-store' });
          if (!res.ok) {
            const err = await problemOf(res);
            if (res.status === 401) {
              signOut(err);
              return;
            }
            if (res.status === 400 && err.param === 'Last-Event-ID') this.lastId = '';
            throw err;
          }
          if (gen !== this.gen) return;
          this.connects++;
          if (this.connects > 1) this.reconnects++;
          this.status('live', this.reconnects ? `reconnected ${this.reconnects}×, resumed where it left off` : '');
          showProblem('live-error', null);
          await this.read(res.body, gen);
          throw new Error('the server ended the stream');
        } catch (e) {
          if (gen !== this.gen) return;
          this.status('reconnecting', `${e.detail || e.message}; retrying in ${Math.round(this.retry / 1000)}s`);
          if (e instanceof ApiError) showProblem('live-error', e);
          await new Promise((r) => setTimeout(r, this.retry));
        }
      }
    }

    async read(body, gen) {
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      const sse = new SSEReader((m) => this.message(m, gen));
      this.lastByte = Date.now();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || gen !== this.gen) return;
          this.lastByte = Date.now();
          sse.push(value);
          if (sse.retry !== null) this.retry = sse.retry;
        }
      } finally {
        this.lastByte = 0;
        reader.cancel().catch(() => {});
      }
    }

    message(m, gen) {
      if (gen !== this.gen) return;
      if (m.id) {
        this.lastId = m.id;
        $('live-panel').dataset.lastEventId = m.id;
      }
      if (m.data === null) return;
      let data;
      try {
        data = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      if (m.type === 'event') {
        this.count++;
        $('live-count').textContent = String(this.count);
        if (this.paused) {
          this.held.push(data);
          if (this.held.length > LIVE_CAP) this.held.shift();
          $('live-pause').textContent = `Resume (${this.held.length})`;
        } else {
          addLiveRow(data);
        }
      } else if (m.type === 'alert') {
        alertChanged(data);
      } else if (m.type === 'gap') {
        if (data.type === 'alert') alertChanged(data);
        else addGapRow(data);
      }
    }

    setPaused(p) {
      this.paused = p;
      $('live-pause').textContent = p ? 'Resume' : 'Pause';
      $('live-pause').classList.toggle('active', p);
      if (!p) {
        for (const d of this.held) addLiveRow(d);
        this.held = [];
      }
    }
  }

  function eventCells(e, timeField) {
    return [
      el('td', { class: 'time', title: e[timeField] }, fmtTime(e[timeField])),
      el('td', { class: 'topic' }, el('span', { class: `dot ${topicClass(e)}` }), e.topic),
      el('td', { class: 'mono', title: e.customer_id || '' }, short(e.customer_id)),
      el('td', { class: 'mono', title: e.resource_id || '' }, el('span', { class: 'muted' }, e.resource_type ? `${e.resource_type} ` : ''), short(e.resource_id)),
    ];
  }

  // topicClass colours a topic by how it ends: success, failure or neither.
  function topicClass(e) {
    if (e.outcome) return `o-${e.outcome}`;
    const t = e.topic || '';
    if (/(failed|cancelled|suspended|removed|deactivated|maxattempts|returned)$/.test(t)) return 'o-failure';
    if (/(completed|verified|passed|approved|activated)$/.test(t)) return 'o-success';
    return 'o-none';
  }

  function addLiveRow(e) {
    const tbody = $('live-rows');
    const tr = el('tr', { class: 'row new', tabindex: '0', 'data-testid': 'live-row', dataset: { id: e.id, topic: e.topic } }, eventCells(e, 'received'));
    tbody.prepend(tr);
    while (tbody.rows.length > LIVE_CAP) tbody.lastElementChild.remove();
    $('live-empty').hidden = true;
  }

  function addGapRow(g) {
    const tbody = $('live-rows');
    tbody.prepend(el('tr', { class: 'gap', 'data-testid': 'live-gap' }, el('td', { colspan: '4' }, `⚠ ${g.detail || 'some events were missed'}`)));
  }

  // ---- event detail ------------------------------------------------------

  async function openEvent(id) {
    showProblem('detail-error', null);
    const box = $('detail');
    box.replaceChildren(el('p', { class: 'empty' }, 'Loading…'));
    for (const r of document.querySelectorAll('tr.selected')) r.classList.remove('selected');
    for (const r of document.querySelectorAll(`tr[data-id="${CSS.escape(id)}"]`)) r.classList.add('selected');
    let d;
    try {
      d = await api(`/events/${encodeURIComponent(id)}`);
    } catch (e) {
      box.replaceChildren();
      showProblem('detail-error', e);
      return;
    }
    const kv = (k, v) => (v === '' || v === undefined || v === null ? null : [el('dt', null, k), el('dd', null, v)]);
    const searchLink = (field, value) =>
      value ? el('a', { href: '#search-panel', class: 'mono', onclick: () => searchFor(field, value) }, value) : null;
    const badges = el('div', { class: 'badges' },
      d.family ? el('span', { class: 'badge' }, d.family) : null,
      d.outcome ? el('span', { class: `badge o-${d.outcome}` }, d.outcome) : null,
      d.terminal ? el('span', { class: 'badge' }, 'terminal') : null,
      el('span', { class: 'badge ghost' }, d.source));
    const journeys = (d.journey_instances || []).map((j) =>
      el('li', { class: 'journey-item', 'data-testid': 'detail-journey' },
        el('div', null,
          el('strong', null, j.journey), ' ',
          el('span', { class: `badge st-${j.status}` }, j.status.replace('_', ' ')), ' ',
          el('span', { class: 'muted' }, `at ${j.current_step}`)),
        el('div', { class: 'small' },
          j.reached_steps && j.reached_steps.length
            ? ['this event reached ', el('strong', null, j.reached_steps.join(', '))]
            : el('span', { class: 'muted' }, 'this event reached no new step')),
        el('a', { href: '#journeys-panel', class: 'small', 'data-testid': 'open-instance', onclick: () => openInstance(j.journey, j.subject) },
          `Open timeline of ${short(j.subject)} →`)));
    box.replaceChildren(
      el('div', { class: 'detail-head' }, el('h3', { class: 'topic', 'data-testid': 'detail-topic' }, el('span', { class: `dot ${topicClass(d)}` }), d.topic), badges),
      el('dl', { class: 'kv' },
        kv('id', el('span', { class: 'mono', 'data-testid': 'detail-id' }, d.id)),
        kv('created', fmtDateTime(d.created)),
        kv('received', fmtDateTime(d.received)),
        kv('stored', fmtDateTime(d.stored_at)),
        kv('customer', searchLink('customer', d.customer_id)),
        kv('resource', d.resource_id ? [el('span', { class: 'muted' }, `${d.resource_type} `), searchLink('resource', d.resource_id)] : null),
        kv('correlation', d.correlation_id ? el('span', { class: 'mono' }, d.correlation_id) : null)),
      el('h4', null, `Journey instances (${journeys.length})`),
      journeys.length ? el('ul', { class: 'journey-list', 'data-testid': 'detail-journeys' }, journeys) : el('p', { class: 'muted small' }, 'This event moved no journey instance.'),
      el('h4', null, 'Body'),
      el('pre', { class: 'json', 'data-testid': 'detail-body' }, highlightJSON(d.body)));
    if (window.innerWidth < 1000) $('detail-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  // highlightJSON pretty-prints v as spans classed by token kind.
  function highlightJSON(v) {
    const text = JSON.stringify(v, null, 2) || '';
    const out = [];
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) out.push(text.slice(last, m.index));
      if (m[1]) {
        out.push(el('span', { class: m[2] ? 'j-key' : 'j-str' }, m[1]));
        if (m[2]) out.push(m[2]);
      } else if (m[3]) out.push(el('span', { class: 'j-lit' }, m[3]));
      else out.push(el('span', { class: 'j-num' }, m[4]));
      last = re.lastIndex;
    }
    out.push(text.slice(last));
    return out;
  }

  // ---- search ------------------------------------------------------------

  function searchFor(field, value) {
    for (const f of ['s-topic', 's-customer', 's-resource', 's-from', 's-to']) $(f).value = '';
    $(`s-${field}`).value = value;
    runSearch();
  }

  function runSearch() {
    state.search = {
      query: {
        topic: $('s-topic').value.trim(),
        customer: $('s-customer').value.trim(),
        resource: $('s-resource').value.trim(),
        from: relTime($('s-from').value),
        to: relTime($('s-to').value),
        limit: 25,
      },
      cursor: null,
      page: 0,
    };
    searchPage(null);
  }

  async function searchPage(cursor) {
    showProblem('search-error', null);
    const s = state.search;
    let res;
    try {
      res = await api('/events', { ...s.query, cursor });
    } catch (e) {
      showProblem('search-error', e);
      return;
    }
    s.page = cursor ? s.page + 1 : 1;
    s.cursor = res.next_cursor;
    const tbody = $('search-rows');
    tbody.replaceChildren(...res.events.map((e) => {
      const cells = eventCells(e, 'created');
      cells[0].textContent = fmtDateTime(e.created);
      cells.push(el('td', null, e.outcome ? el('span', { class: `badge o-${e.outcome}` }, e.outcome) : el('span', { class: 'muted' }, '–')));
      return el('tr', { class: 'row', tabindex: '0', 'data-testid': 'search-row', dataset: { id: e.id } }, cells);
    }));
    $('search-empty').hidden = res.events.length > 0;
    $('search-empty').textContent = 'No stored event matches.';
    const first = (s.page - 1) * s.query.limit + 1;
    $('search-page').textContent = res.events.length ? `page ${s.page} · events ${first}–${first + res.events.length - 1}${res.next_cursor ? '' : ' (last page)'}` : '';
    $('search-next').hidden = !res.next_cursor;
    $('search-first').hidden = s.page <= 1;
  }

  // ---- metrics -----------------------------------------------------------

  async function loadCatalog() {
    showProblem('metrics-error', null);
    let c;
    try {
      c = await api('/metrics/catalog');
    } catch (e) {
      showProblem('metrics-error', e);
      return;
    }
    state.catalog = c;
    const fill = (sel, items, def) => {
      const cur = $(sel).value;
      $(sel).replaceChildren(...items.map(([v, label]) => el('option', { value: v }, label)));
      $(sel).value = items.some(([v]) => v === cur) ? cur : def;
    };
    fill('metric', c.metrics.map((m) => [m.name, m.name.replace(/_/g, ' ')]), 'count');
    fill('window', c.windows.map((w) => [w, w]), c.windows.includes('5m') ? '5m' : c.windows[0]);
    fill('group-by', [['none', 'none'], ...c.dimensions.map((d) => [d.name, d.name.replace(/_/g, ' ')])], 'none');
    fill('basis', c.bases.map((b) => [b, b === 'event' ? 'event time' : `${b} time`]), 'event');
    const topics = (c.dimensions.find((d) => d.name === 'topic') || { values: [] }).values;
    $('topics').replaceChildren(...topics.map((t) => el('option', { value: t })));
    await drawMetrics();
  }

  async function drawMetrics() {
    const c = state.catalog;
    if (!c) return;
    showProblem('metrics-error', null);
    const metric = $('metric').value;
    const info = c.metrics.find((m) => m.name === metric) || { unit: '', description: '' };
    $('metric-desc').textContent = `${info.description} (${info.unit}), per ${$('window').value} window of ${$('basis').value} time; times in UTC`;
    const to = serverNow();
    const from = new Date(to.getTime() - Number($('hours').value) * 3600e3);
    const seq = ++state.metricsSeq;
    let res;
    let q;
    try {
      q = { metric, window: $('window').value, group_by: $('group-by').value, basis: $('basis').value, from: iso(from), to: iso(to) };
      res = await api('/metrics', q);
    } catch (e) {
      if (seq === state.metricsSeq) showProblem('metrics-error', e);
      return;
    }
    if (seq !== state.metricsSeq) return;
    renderChart(res, q, info.unit, from, to);
  }

  // renderChart draws one line per group (the MAX_SERIES with the most
  // events) as SVG, with axes, grid and legend.
  function renderChart(res, q, unit, from, to) {
    const box = $('chart');
    const byGroup = new Map();
    for (const p of res.points || []) {
      if (!byGroup.has(p.group)) byGroup.set(p.group, []);
      byGroup.get(p.group).push(p);
    }
    let groups = [...byGroup.entries()].map(([g, pts]) => ({ name: g || 'all', pts, total: pts.reduce((a, p) => a + p.count, 0) }));
    groups.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
    const hidden = Math.max(0, groups.length - MAX_SERIES);
    groups = groups.slice(0, MAX_SERIES);

    const W = Math.max(320, Math.round(box.clientWidth || 800));
    const H = 260;
    const m = { l: 56, r: 14, t: 12, b: 28 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    let max = 0;
    for (const g of groups) for (const p of g.pts) max = Math.max(max, p.value);
    const { ticks, top } = niceTicks(max, unit === 'events' || unit === 'customers');
    const t0 = from.getTime();
    const t1 = to.getTime();
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * iw;
    const y = (v) => m.t + ih - (v / top) * ih;

    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart-svg', role: 'img', 'aria-label': `${res.metric} per window`, 'data-testid': 'chart-svg', dataset: { metric: q.metric, window: q.window, groupBy: q.group_by } });
    const grid = svg('g', { class: 'grid' });
    for (const v of ticks) {
      grid.append(svg('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      grid.append(svg('text', { x: m.l - 8, y: y(v) + 4, class: 'tick y' }, fmtNum(v, unit)));
    }
    const span = t1 - t0;
    const step = [5, 10, 15, 30, 60, 120, 180, 360, 720].map((n) => n * 60e3).find((s) => span / s <= 8) || 1440 * 60e3;
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      grid.append(svg('line', { x1: x(t), x2: x(t), y1: m.t, y2: m.t + ih, class: 'v' }));
      const d = new Date(t);
      grid.append(svg('text', { x: x(t), y: H - 8, class: 'tick x' }, `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`));
    }
    root.append(grid);
    root.append(svg('line', { x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih, class: 'axis' }));
    root.append(svg('line', { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ih, class: 'axis' }));

    groups.forEach((g, i) => {
      const pts = g.pts.filter((p) => Date.parse(p.start) >= t0 - 1 && Date.parse(p.start) <= t1);
      if (!pts.length) return;
      const d = pts.map((p, j) => `${j ? 'L' : 'M'}${x(Date.parse(p.start)).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
      root.append(svg('path', { d, class: `series s${i}`, 'data-testid': 'chart-series', 'data-group': g.name, 'data-points': pts.length }));
      const open = pts.filter((p) => !p.closed);
      if (open.length && open.length < pts.length) {
        const p = open[0];
        root.append(svg('circle', { cx: x(Date.parse(p.start)).toFixed(1), cy: y(p.value).toFixed(1), r: 2.5, class: `open s${i}` }, svg('title', null, 'open windows from here')));
      }
    });
    const cursor = svg('line', { x1: -10, x2: -10, y1: m.t, y2: m.t + ih, class: 'cursor' });
    root.append(cursor);
    const hit = svg('rect', { x: m.l, y: m.t, width: iw, height: ih, class: 'hit' });
    root.append(hit);
    hit.addEventListener('mousemove', (ev) => {
      const r = root.getBoundingClientRect();
      const t = t0 + ((ev.clientX - r.left) * (W / r.width) - m.l) / iw * (t1 - t0);
      let best = null;
      for (const p of (groups[0] || { pts: [] }).pts) {
        if (best === null || Math.abs(Date.parse(p.start) - t) < Math.abs(Date.parse(best.start) - t)) best = p;
      }
      if (!best) return;
      const bx = x(Date.parse(best.start));
      cursor.setAttribute('x1', bx);
      cursor.setAttribute('x2', bx);
      const parts = groups.map((g, i) => {
        const p = g.pts.find((q) => q.start === best.start);
        return el('span', { class: 'ro' }, el('span', { class: `sw s${i}` }), `${g.name} ${fmtNum(p ? p.value : 0, unit)}`);
      });
      $('chart-readout').replaceChildren(el('strong', null, `${fmtDateTime(best.start)}${best.closed ? '' : ' (open)'}`), ...parts);
    });
    hit.addEventListener('mouseleave', () => {
      cursor.setAttribute('x1', -10);
      cursor.setAttribute('x2', -10);
      $('chart-readout').textContent = '';
    });
    if (!groups.length || max === 0) {
      root.append(svg('text', { x: m.l + iw / 2, y: m.t + ih / 2, class: 'nodata' }, 'no events in this range'));
    }
    box.replaceChildren(root);
    $('chart-readout').textContent = '';

    const legend = groups.map((g, i) => {
      const peak = g.pts.reduce((a, p) => Math.max(a, p.value), 0);
      return el('span', { class: 'item', 'data-testid': 'legend-item' }, el('span', { class: `sw s${i}` }), g.name.replace(/_/g, ' '), ' ',
        el('span', { class: 'muted' }, `${fmtNum(g.total)} events${unit === 'events' ? '' : ` · peak ${fmtNum(peak, unit)}`}`));
    });
    if (hidden) legend.push(el('span', { class: 'item muted' }, `+${hidden} smaller groups not drawn`));
    $('chart-legend').replaceChildren(...legend);
  }

  // niceTicks: about four round steps from 0 past max (whole ones for
  // counts).
  function niceTicks(max, whole) {
    if (!(max > 0)) max = 1;
    const raw = max / 4;
    const mag = 10 ** Math.floor(Math.log10(raw));
    let step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
    if (whole) step = Math.max(1, Math.ceil(step));
    const top = Math.ceil(max / step) * step || step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
    return { ticks, top };
  }

  // ---- journeys ----------------------------------------------------------

  async function loadJourneys() {
    let res;
    try {
      res = await api('/journeys');
    } catch (e) {
      showProblem('funnel-error', e);
      return;
    }
    state.journeys = res.journeys;
    const cur = $('journey').value;
    $('journey').replaceChildren(...res.journeys.map((j) => el('option', { value: j.name }, j.name.replace(/_/g, ' '))));
    if (!res.journeys.length) {
      $('funnel').replaceChildren(el('p', { class: 'empty' }, 'No journeys are configured.'));
      return;
    }
    if (res.journeys.some((j) => j.name === cur)) $('journey').value = cur;
    await journeyChanged();
  }

  function journeyChanged() {
    const j = state.journeys.find((d) => d.name === $('journey').value);
    $('journey-desc').textContent = j ? `${j.description || ''} · follows one ${j.subject} · succeeds at ${j.success.join(', ')}; fails at ${j.failure.join(', ') || 'none'}` : '';
    $('subject').placeholder = j ? `${j.subject} id` : 'subject';
    return Promise.all([drawFunnel(), loadRecent()]);
  }

  async function drawFunnel() {
    const name = $('journey').value;
    if (!name) return;
    showProblem('funnel-error', null);
    const from = new Date(serverNow().getTime() - Number($('funnel-days').value) * 86400e3);
    let f;
    try {
      f = await api(`/journeys/${encodeURIComponent(name)}/funnel`, { from: iso(from) });
    } catch (e) {
      showProblem('funnel-error', e);
      return;
    }
    if (name !== $('journey').value) return;
    const stat = (label, v, cls) => el('div', { class: `stat ${cls || ''}` }, el('div', { class: 'v' }, fmtNum(v)), el('div', { class: 'l' }, label));
    const rows = f.steps.map((s) => {
      const overall = f.entered ? s.reached / f.entered : 0;
      const bar = svg('svg', { class: 'bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
        svg('rect', { x: 0, y: 0, width: 100, height: 10, class: 'track' }),
        svg('rect', { x: 0, y: 0, width: (overall * 100).toFixed(2), height: 10, class: s.optional ? 'fill optional' : 'fill', 'data-testid': 'funnel-bar' }));
      const drop = [];
      if (s.in_flight) drop.push(`${s.in_flight} here now`);
      if (s.abandoned) drop.push(`${s.abandoned} abandoned`);
      if (s.failed) drop.push(`${s.failed} failed`);
      if (s.completed) drop.push(`${s.completed} completed`);
      const conv = s.previous
        ? el('span', { title: `95% interval ${pct(s.from_previous.low)}–${pct(s.from_previous.high)}` }, `${pct(s.from_previous.rate)} of ${s.previous}`)
        : el('span', { class: 'muted' }, 'entry');
      return el('div', { class: `frow${s.reached ? '' : ' none'}`, 'data-testid': 'funnel-step', dataset: { step: s.step, reached: s.reached } },
        el('div', { class: 'fname', title: s.step }, s.step.replace(/_/g, ' '), s.optional ? el('span', { class: 'tag' }, 'optional') : null),
        el('div', { class: 'fbar' }, bar),
        el('div', { class: 'fnum' }, el('strong', null, fmtNum(s.reached)), el('span', { class: 'muted' }, ` ${pct(overall)}`)),
        el('div', { class: 'fmeta small' }, conv,
          s.median_seconds_from_previous !== null && s.median_seconds_from_previous !== undefined ? el('span', { class: 'muted' }, ` · median ${fmtDuration(s.median_seconds_from_previous)}`) : null,
          drop.length ? el('span', { class: 'muted' }, ` · ${drop.join(', ')}`) : null));
    });
    $('funnel').replaceChildren(
      el('div', { class: 'stats' },
        stat('entered', f.entered), stat('in progress', f.in_progress, 'st-in_progress'), stat('completed', f.completed, 'st-completed'),
        stat('failed', f.failed, 'st-failed'), stat('abandoned', f.abandoned, 'st-abandoned')),
      el('p', { class: 'muted small' }, `cohort: entered ${fmtDateTime(f.from)} – ${fmtDateTime(f.to)} UTC`),
      f.entered ? el('div', { class: 'funnel-rows' }, rows) : el('p', { class: 'empty' }, 'No instance entered in this period.'));
  }

  async function loadRecent() {
    const name = $('journey').value;
    if (!name) return;
    let res;
    try {
      res = await api(`/journeys/${encodeURIComponent(name)}/instances`, { limit: 8 });
    } catch (e) {
      showProblem('instance-error', e);
      return;
    }
    if (name !== $('journey').value) return;
    $('subjects').replaceChildren(...res.instances.map((i) => el('option', { value: i.subject })));
    $('recent').replaceChildren(
      res.instances.length ? el('span', { class: 'muted' }, 'Recent: ') : el('span', { class: 'muted' }, 'No instance entered in the last 30 days.'),
      ...res.instances.map((i) =>
        el('button', { type: 'button', class: `chip st-${i.status}`, title: `${i.subject}: ${i.status} at ${i.current_step}`, 'data-testid': 'recent-instance', dataset: { subject: i.subject },
          onclick: () => openInstance(name, i.subject) }, short(i.subject))));
  }

  async function openInstance(journey, subject) {
    if ($('journey').value !== journey) {
      $('journey').value = journey;
      journeyChanged();
    }
    $('subject').value = subject;
    await drawInstance();
    $('journeys-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  async function drawInstance() {
    const journey = $('journey').value;
    const subject = $('subject').value.trim();
    showProblem('instance-error', null);
    if (!journey || !subject) return;
    const box = $('instance');
    let r;
    try {
      r = await api(`/journeys/${encodeURIComponent(journey)}/instances/${encodeURIComponent(subject)}`);
    } catch (e) {
      box.replaceChildren();
      showProblem('instance-error', e);
      return;
    }
    const def = state.journeys.find((d) => d.name === journey) || { steps: [] };
    const evById = new Map((r.events || []).map((e) => [e.id, e]));
    const steps = r.steps.map((s) => {
      const sd = def.steps.find((d) => d.name === s.step) || {};
      const reached = Boolean(s.reached_at);
      const outcome = (def.success || []).includes(s.step) ? 'o-success' : (def.failure || []).includes(s.step) ? 'o-failure' : '';
      const ev = s.event_id ? evById.get(s.event_id) : null;
      return el('li', { class: `tl-step ${reached ? 'reached' : 'unreached'} ${outcome} ${s.step === r.current_step ? 'current' : ''}`, 'data-testid': 'timeline-step', dataset: { step: s.step, reached: String(reached) } },
        el('span', { class: 'tl-dot' }),
        el('div', { class: 'tl-body' },
          el('div', null, el('strong', null, s.step.replace(/_/g, ' ')), sd.optional ? el('span', { class: 'tag' }, 'optional') : null,
            s.step === r.current_step ? el('span', { class: 'tag cur' }, 'current') : null),
          el('div', { class: 'small muted' },
            reached ? fmtDateTime(s.reached_at) : (sd.abandon_after ? `not reached · abandons after ${sd.abandon_after}` : 'not reached'),
            s.event_id ? [' · ', el('a', { href: '#detail-panel', class: 'mono', onclick: () => openEvent(s.event_id) }, ev ? ev.topic : short(s.event_id))] : null)));
    });
    const kv = (k, v) => (v ? [el('dt', null, k), el('dd', null, v)] : null);
    box.replaceChildren(
      el('div', { class: 'detail-head' },
        el('h3', { class: 'mono', 'data-testid': 'instance-subject' }, r.subject),
        el('span', { class: `badge st-${r.status}`, 'data-testid': 'instance-status' }, r.status.replace('_', ' '))),
      el('dl', { class: 'kv' },
        kv('journey', r.journey), kv('current step', r.current_step), kv('entered', fmtDateTime(r.entered_at)),
        kv('last progress', fmtDateTime(r.last_progress_at)), kv('deadline', r.deadline ? fmtDateTime(r.deadline) : ''),
        kv('abandoned', r.abandoned_at ? fmtDateTime(r.abandoned_at) : ''), kv('conflict', r.conflict)),
      el('ol', { class: 'timeline', 'data-testid': 'timeline' }, steps),
      el('h4', null, `Events (${(r.events || []).length})`),
      el('table', { class: 'events compact', 'data-testid': 'instance-events' },
        el('tbody', null, (r.events || []).map((e) =>
          el('tr', { class: 'row', tabindex: '0', dataset: { id: e.id } },
            el('td', { class: 'time' }, fmtDateTime(e.created)),
            el('td', { class: 'topic' }, el('span', { class: `dot ${topicClass(e)}` }), e.topic))))),
      el('h4', null, `Records (${(r.records || []).length})`),
      (r.records || []).length
        ? el('ul', { class: 'records', 'data-testid': 'instance-records' }, r.records.map((x) =>
          el('li', null, el('span', { class: `badge rk-${x.kind}` }, x.kind), ' ', x.step ? el('strong', null, x.step) : null, ' ',
            el('span', { class: 'muted' }, fmtDateTime(x.at)), x.detail ? el('div', { class: 'small' }, x.detail) : null)))
        : el('p', { class: 'muted small', 'data-testid': 'instance-records' }, 'No records (abandonments, conflicts) for this instance.'));
  }

  // ---- alerts ------------------------------------------------------------

  const isAdmin = () => Boolean(state.info && state.info.scope === 'admin');

  // send is api() for the routes that change something: method, JSON body.
  async function send(method, path, body) {
    let res;
    const headers = { Authorization: `Bearer ${state.token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      res = await fetch(url(path), { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, 'Network error', `cannot reach the API: ${e.message}`);
    }
    if (!res.ok) {
      const err = await problemOf(res);
      if (res.status === 401) signOut(err);
      throw err;
    }
    return res.json();
  }

  const ALERT_EMPTY = 'Click an alert to see its history and notifications.';
  const OPS = { '>': '>', '>=': '≥', '<': '<', '<=': '≤', '==': '=', '!=': '≠' };

  function fmtAgo(s) {
    if (!s) return '';
    const sec = (serverNow().getTime() - Date.parse(s)) / 1000;
    if (sec < 0) return `in ${fmtDuration(-sec)}`;
    if (sec < 5) return 'just now';
    return `${fmtDuration(sec)} ago`;
  }

  // alertSince is when the alert entered its state.
  function alertSince(a) {
    if (a.state === 'resolved') return a.resolved_at;
    if (a.state === 'firing') return a.firing_since || a.active_since;
    return a.active_since || a.last_evaluated;
  }

  function condition(a) {
    if (a.expected) return `expected ${fmtNum(a.expected.low)}–${fmtNum(a.expected.high)}`;
    if (a.op) return `${OPS[a.op] || a.op} ${fmtNum(a.threshold || 0)}`;
    return '';
  }

  function labelChips(labels) {
    const ks = Object.keys(labels || {}).sort();
    return ks.map((k) => el('span', { class: 'chip label', title: `${k}=${labels[k]}` }, `${k}=${labels[k]}`));
  }

  const sevBadge = (s) => el('span', { class: `badge sev-${s}`, 'data-testid': 'alert-severity' }, s);
  const stateBadge = (s) => el('span', { class: `badge state-${s}`, 'data-testid': 'alert-state' }, s);

  function alertsUpdates() {
    const live = state.live;
    const on = live && $('live-status').dataset.state === 'live';
    const filtered = $('live-topic').value.trim() !== '';
    let note;
    if (on && !filtered) note = 'updated live as alerts change';
    else if (on) note = 'no live updates while the live tail filters by topic: use Refresh';
    else note = 'live feed off: use Refresh';
    $('alerts-updates').textContent = note;
    $('alerts-panel').dataset.live = String(Boolean(on && !filtered));
  }

  async function loadAlerts() {
    const want = $('alerts-state').value;
    const seq = ++state.alertsSeq;
    let res;
    try {
      res = await api('/alerts', { state: want });
    } catch (e) {
      if (seq === state.alertsSeq) showProblem('alerts-error', e);
      return;
    }
    if (seq !== state.alertsSeq) return;
    showProblem('alerts-error', null);
    drawAlerts(res.alerts);
  }

  function drawAlerts(alerts) {
    const open = state.alert;
    const rows = alerts.map((a) => {
      const since = alertSince(a);
      const acked = Boolean(a.acked_by);
      const silenced = (a.silenced_by || []).length > 0;
      return el('tr', {
        class: `row${open === a.fingerprint ? ' selected' : ''}`, tabindex: '0', 'aria-label': `${a.rule}, ${a.state}: show details`,
        'data-testid': 'alert-row', dataset: { fingerprint: a.fingerprint, rule: a.rule, state: a.state, acked: String(acked), silenced: String(silenced) },
      },
      el('td', { class: 'rule', title: a.summary || a.rule }, el('strong', null, a.rule)),
      el('td', null, sevBadge(a.severity)),
      el('td', null, stateBadge(a.state)),
      el('td', { class: 'time', title: since ? `${fmtDateTime(since)} UTC` : '' }, fmtAgo(since)),
      el('td', { class: 'num' }, fmtNum(a.value), ' ', el('span', { class: 'muted' }, condition(a))),
      el('td', { class: 'labels' }, labelChips(a.labels)),
      el('td', { 'data-testid': 'alert-flags' },
        acked ? el('span', { class: 'badge acked', title: `acknowledged by ${a.acked_by} at ${fmtDateTime(a.acked_at)} UTC` }, `acked · ${a.acked_by}`) : null,
        silenced ? el('span', { class: 'badge silenced', title: `silenced by ${a.silenced_by.join(', ')}` }, 'silenced') : null,
        !acked && !silenced ? el('span', { class: 'muted' }, '–') : null));
    });
    $('alerts-rows').replaceChildren(...rows);
    $('alerts-empty').hidden = rows.length > 0;
    $('alerts-empty').textContent = { firing: 'Nothing firing or pending.', resolved: 'No resolved alerts.', all: 'No alerts.' }[$('alerts-state').value] || 'No alerts.';
    const firing = alerts.filter((a) => a.state === 'firing').length;
    $('alerts-count').textContent = String(firing);
    $('alerts-count').className = `pill${firing ? ' firing' : ''}`;
    $('alerts-count').title = `${firing} firing`;
    $('alerts-loaded').textContent = `${alerts.length} shown · read ${fmtTime(iso(serverNow()))} UTC`;
  }

  async function loadSilences() {
    let res;
    try {
      res = await api('/silences');
    } catch (e) {
      showProblem('silences-error', e);
      return;
    }
    showProblem('silences-error', null);
    const admin = isAdmin();
    const rows = res.silences.map((s) =>
      el('tr', { 'data-testid': 'silence-row', dataset: { id: s.id, status: s.status } },
        el('td', { class: 'matchers' }, (s.matchers || []).map((m) => el('span', { class: 'chip label' }, `${m.name}${m.type}${m.value}`))),
        el('td', null, el('span', { class: `badge sil-${s.status}` }, s.status)),
        el('td', { class: 'time', title: `${fmtDateTime(s.starts_at)} – ${fmtDateTime(s.ends_at)} UTC` }, fmtAgo(s.ends_at)),
        el('td', null, s.created_by),
        el('td', { class: 'comment', title: s.comment }, s.comment),
        el('td', { class: 'actions' }, admin
          ? el('button', { type: 'button', class: 'btn ghost small-btn', 'data-testid': 'silence-expire', 'aria-label': `Expire silence ${s.id}`, onclick: (ev) => expireSilence(s.id, ev.currentTarget) }, 'Expire')
          : null)));
    $('silences-rows').replaceChildren(...rows);
    $('silences-empty').hidden = rows.length > 0;
  }

  async function expireSilence(id, btn) {
    btn.disabled = true;
    try {
      await send('DELETE', `/silences/${encodeURIComponent(id)}`);
    } catch (e) {
      btn.disabled = false;
      showProblem('silences-error', e);
      return;
    }
    await refreshAlerts();
  }

  // refreshAlerts reads the alerts, the silences and the open alert again.
  function refreshAlerts() {
    return Promise.all([loadAlerts(), loadSilences(), state.alert ? openAlert(state.alert, { quiet: true }) : null]);
  }

  // alertChanged takes a live alert message: a burst of them (one
  // evaluation) reads the lists once.
  const alertChanged = debounce(() => {
    if (state.token) refreshAlerts();
  }, 250);

  async function openAlert(fp, opts) {
    const o = opts || {};
    const box = $('alert-detail');
    if (!o.quiet) {
      state.alert = fp;
      showProblem('alert-detail-error', null);
      box.replaceChildren(el('p', { class: 'empty' }, 'Loading…'));
    }
    for (const r of document.querySelectorAll('#alerts-rows tr.selected')) r.classList.remove('selected');
    for (const r of document.querySelectorAll(`#alerts-rows tr[data-fingerprint="${CSS.escape(fp)}"]`)) r.classList.add('selected');
    const seq = ++state.alertSeq;
    let d;
    try {
      d = await api(`/alerts/${encodeURIComponent(fp)}`);
    } catch (e) {
      if (seq !== state.alertSeq) return;
      box.replaceChildren();
      showProblem('alert-detail-error', e);
      return;
    }
    if (seq !== state.alertSeq || state.alert !== fp) return;
    // A refresh does not redraw under someone filling in the silence form.
    if (o.quiet && box.dataset.fingerprint === fp && box.querySelector('form.silence-form') && box.contains(document.activeElement)) return;
    showProblem('alert-detail-error', null);
    // Keep what the user typed into the silence form across a refresh.
    const keep = box.querySelector('form.silence-form') ? {
      matchers: box.querySelector('[data-testid="silence-matchers"]').value,
      dur: box.querySelector('[data-testid="silence-for"]').value,
      comment: box.querySelector('[data-testid="silence-comment"]').value,
      fp: box.dataset.fingerprint,
    } : null;
    box.dataset.fingerprint = fp;
    box.replaceChildren(...alertDetail(d, keep && keep.fp === fp ? keep : null));
    if (o.scroll) $('alert-detail-box').scrollIntoView({ behavior: 'auto', block: 'start' });
  }

  function alertDetail(d, keep) {
    const kv = (k, v) => (v === '' || v === undefined || v === null || (Array.isArray(v) && !v.length) ? null : [el('dt', null, k), el('dd', null, v)]);
    const when = (s) => (s ? el('span', { title: `${fmtAgo(s)}` }, `${fmtDateTime(s)} UTC`) : null);
    const runbook = /^https?:\/\//i.test(d.runbook_url || '')
      ? el('a', { href: d.runbook_url, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'alert-runbook' }, d.runbook_url)
      : d.runbook_url || null;
    const cond = d.expected
      ? `value ${fmtNum(d.value)}, expected ${fmtNum(d.expected.low)}–${fmtNum(d.expected.high)}`
      : d.op ? `value ${fmtNum(d.value)} ${OPS[d.op] || d.op} ${fmtNum(d.threshold || 0)}` : `value ${fmtNum(d.value)}`;
    const out = [
      el('div', { class: 'detail-head' },
        el('h3', { 'data-testid': 'alert-detail-rule' }, d.rule),
        el('div', { class: 'badges' }, sevBadge(d.severity), stateBadge(d.state),
          d.acked_by ? el('span', { class: 'badge acked', 'data-testid': 'alert-detail-acked' }, `acked · ${d.acked_by}`) : null,
          (d.silenced_by || []).length ? el('span', { class: 'badge silenced' }, 'silenced') : null)),
      d.summary ? el('p', { class: 'alert-summary', 'data-testid': 'alert-summary' }, d.summary) : null,
      d.description ? el('p', { class: 'muted alert-desc', 'data-testid': 'alert-description' }, d.description) : null,
      el('dl', { class: 'kv', 'data-testid': 'alert-condition' },
        kv('condition', `${cond}${d.window ? ` over ${d.window} windows` : ''}`),
        kv('labels', labelChips(d.labels)),
        kv('fingerprint', el('span', { class: 'mono', 'data-testid': 'alert-fingerprint' }, d.fingerprint)),
        kv('active since', when(d.active_since)),
        kv('firing since', when(d.firing_since)),
        kv('resolved', when(d.resolved_at)),
        kv('evaluated', when(d.last_evaluated)),
        kv('acknowledged', d.acked_by ? `by ${d.acked_by} at ${fmtDateTime(d.acked_at)} UTC` : ''),
        kv('silenced by', (d.silenced_by || []).join(', ')),
        kv('runbook', runbook)),
      alertActions(d, keep),
      el('h4', null, `History (${(d.history || []).length})`),
      (d.history || []).length
        ? el('table', { class: 'events compact', 'data-testid': 'alert-history' },
          el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'At'), el('th', { scope: 'col' }, 'Change'), el('th', { scope: 'col' }, 'Value'), el('th', { scope: 'col' }, 'Note'))),
          el('tbody', null, d.history.slice().reverse().map((h) =>
            el('tr', { 'data-testid': 'alert-history-row' },
              el('td', { class: 'time' }, fmtDateTime(h.at)),
              el('td', null, h.from === h.to ? stateBadge(h.to) : [el('span', { class: 'muted' }, h.from), ' → ', stateBadge(h.to)]),
              el('td', { class: 'num' }, fmtNum(h.value)),
              el('td', { class: 'wrap' }, h.note || '')))))
        : el('p', { class: 'muted small' }, 'No history.'),
      el('h4', null, `Notifications (${(d.notifications || []).length})`),
      (d.notifications || []).length
        ? el('ul', { class: 'records notifications', 'data-testid': 'alert-notifications' }, d.notifications.map(notification))
        : el('p', { class: 'muted small', 'data-testid': 'alert-notifications' }, 'No notification carried this alert yet.'),
    ];
    return out.filter(Boolean);
  }

  function notification(n) {
    let outcome;
    if (n.delivered_at) outcome = el('span', { class: 'badge o-success' }, 'delivered');
    else if (n.gave_up_at) outcome = el('span', { class: 'badge o-failure' }, 'gave up');
    else outcome = el('span', { class: 'badge st-abandoned' }, n.attempts ? 'retrying' : 'queued');
    const when = n.delivered_at ? `delivered ${fmtDateTime(n.delivered_at)}` : n.gave_up_at ? `gave up ${fmtDateTime(n.gave_up_at)}`
      : n.next_attempt_at ? `next attempt ${fmtDateTime(n.next_attempt_at)}` : '';
    return el('li', { 'data-testid': 'alert-notification', dataset: { id: n.id, target: n.target } },
      el('div', null, el('strong', null, n.target), ' ', el('span', { class: 'muted' }, n.kind), ' ', stateBadge(n.status), ' ', outcome),
      el('div', { class: 'small muted' }, `${n.id} · created ${fmtDateTime(n.created_at)} · ${n.attempts} attempt${n.attempts === 1 ? '' : 's'}${when ? ` · ${when}` : ''}`),
      n.last_error ? el('div', { class: 'small err' }, n.last_error) : null,
      (n.log || []).length
        ? el('table', { class: 'events compact attempts', 'data-testid': 'notification-attempts' },
          el('thead', null, el('tr', null, ['#', 'At', 'Took', 'HTTP', 'Error'].map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody', null, n.log.map((a) =>
            el('tr', { 'data-testid': 'notification-attempt', dataset: { status: String(a.status) } },
              el('td', null, String(a.attempt)),
              el('td', { class: 'time' }, fmtDateTime(a.at)),
              el('td', { class: 'num' }, `${Math.round(a.duration_ms)} ms`),
              el('td', null, el('span', { class: `badge ${a.status >= 200 && a.status < 300 ? 'o-success' : 'o-failure'}` }, a.status ? String(a.status) : 'no answer')),
              el('td', { class: 'wrap' }, a.error || '')))))
        : null);
  }

  function alertActions(d, keep) {
    if (!isAdmin()) {
      return el('p', { class: 'note small', 'data-testid': 'alert-actions-readonly' },
        `Acknowledging and silencing need an admin token; “${state.info ? state.info.token : ''}” is a read token.`);
    }
    const firing = d.state === 'firing';
    const ackReason = d.acked_by ? `Acknowledged by ${d.acked_by}.` : firing ? 'No more repeat notifications until it resolves.' : 'Only a firing alert can be acknowledged.';
    const ack = el('button', { type: 'button', class: 'btn primary', 'data-testid': 'alert-ack', disabled: !firing || Boolean(d.acked_by), 'aria-describedby': 'alert-ack-why' }, 'Acknowledge');
    ack.addEventListener('click', async () => {
      ack.disabled = true;
      try {
        await send('POST', `/alerts/${encodeURIComponent(d.fingerprint)}/ack`);
      } catch (e) {
        ack.disabled = false;
        showProblem('alert-detail-error', e);
        return;
      }
      await refreshAlerts();
    });
    const matchers = [`alertname=${d.rule}`, ...Object.keys(d.labels || {}).sort().map((k) => `${k}=${d.labels[k]}`)].join('\n');
    const mInput = el('textarea', { id: 'silence-matchers', rows: 3, spellcheck: 'false', 'data-testid': 'silence-matchers', required: true });
    mInput.value = keep ? keep.matchers : matchers;
    const fInput = el('input', { id: 'silence-for', list: 'silence-durations', spellcheck: 'false', 'data-testid': 'silence-for', required: true, size: 6 });
    fInput.value = keep ? keep.dur : '2h';
    const cInput = el('input', { id: 'silence-comment', spellcheck: 'true', placeholder: 'why (required)', 'data-testid': 'silence-comment', required: true });
    cInput.value = keep ? keep.comment : '';
    const submit = el('button', { type: 'submit', class: 'btn', 'data-testid': 'silence-submit' }, 'Silence');
    const form = el('form', { class: 'silence-form', autocomplete: 'off', 'data-testid': 'silence-form', 'aria-label': 'Silence this alert' },
      el('label', { for: 'silence-matchers', class: 'grow' }, 'Matchers (one a line)', mInput),
      el('div', { class: 'controls' },
        el('label', { for: 'silence-for' }, 'For', fInput),
        el('label', { for: 'silence-comment', class: 'grow' }, 'Comment', cInput),
        submit),
      el('datalist', { id: 'silence-durations' }, ['30m', '1h', '2h', '4h', '12h', '24h', '168h'].map((v) => el('option', { value: v }))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      try {
        await send('POST', '/silences', {
          matchers: mInput.value.split('\n').map((s) => s.trim()).filter(Boolean),
          for: fInput.value.trim(),
          comment: cInput.value.trim(),
        });
      } catch (e) {
        showProblem('alert-detail-error', e);
        return;
      } finally {
        submit.disabled = false;
      }
      cInput.value = '';
      showProblem('alert-detail-error', null);
      await refreshAlerts();
    });
    return el('div', { class: 'alert-actions', 'data-testid': 'alert-actions' },
      el('h4', null, 'Actions'),
      el('div', { class: 'ack-row' }, ack, el('span', { id: 'alert-ack-why', class: 'muted small' }, ackReason)),
      form);
  }

  // alertFromHash is the fingerprint of a #alert=<fingerprint> link.
  function alertFromHash() {
    const m = /^#alert=(.+)$/.exec(location.hash);
    if (!m) return '';
    try {
      return decodeURIComponent(m[1].replace(/\+/g, ' '));
    } catch (_) {
      return '';
    }
  }

  function openAlertFromHash() {
    const fp = alertFromHash();
    if (fp && state.token) return openAlert(fp, { scroll: true });
    return null;
  }

  function startAlerts() {
    $('alerts-readonly').hidden = isAdmin();
    $('alerts-readonly').textContent = isAdmin() ? '' : 'This is a read token: alerts and silences are shown, but acknowledging, silencing and expiring need an admin token.';
    alertsUpdates();
    return Promise.all([loadAlerts(), loadSilences(), openAlertFromHash()]);
  }

  function resetAlerts() {
    state.alert = '';
    $('alerts-rows').textContent = '';
    $('silences-rows').textContent = '';
    $('alerts-empty').hidden = false;
    $('silences-empty').hidden = false;
    $('alerts-count').textContent = '0';
    $('alerts-count').className = 'pill';
    $('alerts-loaded').textContent = '';
    delete $('alert-detail').dataset.fingerprint;
    $('alert-detail').replaceChildren(el('p', { class: 'empty' }, ALERT_EMPTY));
    for (const id of ['alerts-error', 'silences-error', 'alert-detail-error']) showProblem(id, null);
  }

  // ---- wiring ------------------------------------------------------------

  function rowClick(ev) {
    const tr = ev.target.closest('tr.row');
    if (tr && !ev.target.closest('a')) openEvent(tr.dataset.id);
  }

  function rowKey(ev) {
    if (ev.key === 'Enter') rowClick(ev);
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const token = $('token').value.trim();
      $('signin-submit').disabled = true;
      try {
        await signIn(token);
      } catch (e) {
        showProblem('signin-error', e);
      } finally {
        $('signin-submit').disabled = false;
      }
    });
    $('signout').addEventListener('click', () => signOut(null));
    for (const id of ['live-rows', 'search-rows', 'instance']) {
      $(id).addEventListener('click', rowClick);
      $(id).addEventListener('keydown', rowKey);
    }
    $('live-pause').addEventListener('click', () => state.live && state.live.setPaused(!state.live.paused));
    $('live-clear').addEventListener('click', () => {
      $('live-rows').textContent = '';
      $('live-empty').hidden = false;
    });
    const retopic = debounce(() => {
      if (!state.live) return;
      $('live-rows').textContent = '';
      $('live-empty').hidden = false;
      state.live.start($('live-topic').value.trim());
    }, 400);
    $('live-topic').addEventListener('input', retopic);
    $('live-topic').addEventListener('input', alertsUpdates);
    $('alerts-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      refreshAlerts();
    });
    $('alerts-state').addEventListener('change', loadAlerts);
    const alertRow = (ev) => {
      const tr = ev.target.closest('tr.row');
      if (!tr || (ev.type === 'keydown' && ev.key !== 'Enter' && ev.key !== ' ')) return;
      if (ev.type === 'keydown') ev.preventDefault();
      const fp = tr.dataset.fingerprint;
      history.replaceState(null, '', `#alert=${encodeURIComponent(fp)}`);
      openAlert(fp);
    };
    $('alerts-rows').addEventListener('click', alertRow);
    $('alerts-rows').addEventListener('keydown', alertRow);
    window.addEventListener('hashchange', openAlertFromHash);
    $('search-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      runSearch();
    });
    $('search-next').addEventListener('click', () => state.search.cursor && searchPage(state.search.cursor));
    $('search-first').addEventListener('click', () => searchPage(null));
    $('metric-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      drawMetrics();
    });
    for (const id of ['metric', 'window', 'group-by', 'basis', 'hours']) $(id).addEventListener('change', drawMetrics);
    window.addEventListener('resize', debounce(drawMetrics, 300));
    $('journey').addEventListener('change', journeyChanged);
    $('funnel-days').addEventListener('change', drawFunnel);
    $('instance-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      drawInstance();
    });

    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      signIn(saved).catch((e) => signOut(e));
    } else {
      $('signin').hidden = false;
      $('token').focus();
    }
  });
})();
