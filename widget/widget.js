/* Herald widget: social-proof popups. No dependencies; everything shown is set as text, never as HTML. */
((w, d) => {
  'use strict';
  if (w.Herald && w.Herald.v) return;
  var me = d.currentScript || d.querySelector('script[data-site][src*="widget.js"]');
  if (!me) return;
  var pk = me.getAttribute('data-site'), base = new URL(me.src, location.href).origin + '/widget/v1/' + pk;
  var ls = store(w.localStorage), ss = store(w.sessionStorage);
  var vid = ls.get('hv');
  var returning = !!vid && !ss.get('hs');
  if (!vid) { vid = rid(); ls.set('hv', vid); }
  ss.set('hs', '1');
  var sid = ss.get('hi') || rid(); ss.set('hi', sid);
  var utm = {}, qs = new URLSearchParams(location.search);
  ['source', 'medium', 'campaign'].forEach(k => { var x = qs.get('utm_' + k); if (x) utm[k] = x; });
  var state = { on: false, feed: null, country: null, queue: [], shown: {}, timer: 0, es: null, poll: 0, fails: 0, beacons: [], current: null, hb: 0 };
  /* state.shown[notificationId]: the cards shown on this page, and _page, how many. */
  var host, root, box;

  function store(s) {
    return { get: k => { try { return s.getItem(k); } catch (e) { return null; } },
             set: (k, v) => { try { s.setItem(k, v); } catch (e) {} } };
  }
  function rid() {
    var a = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(a, b => ('0' + b.toString(16)).slice(-2)).join('');
  }
  function now() { return Date.now(); }

  /* ---------- targeting: the same semantics as Herald's Swift engine (shared test vectors) ---------- */
  var DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  function evaluate(node, ctx) {
    if (!node) return true;
    if (node.all) return node.all.every(n => evaluate(n, ctx));
    if (node.any) return node.any.some(n => evaluate(n, ctx));
    if (node.not) return !evaluate(node.not, ctx);
    return cond(node, ctx);
  }
  function text(field, ctx) {
    var u;
    try { u = new URL(ctx.url); } catch (e) { u = null; }
    if (field === 'url') return ctx.url;
    if (field === 'referrer') return ctx.referrer || null;
    if (field === 'path') return u ? u.pathname : '/';
    return u ? u.searchParams.get(field) : null;
  }
  function glob(s, p) {
    var si = 0, pi = 0, star = -1, mark = 0;
    s = Array.from(s); p = Array.from(p);
    while (si < s.length) {
      if (pi < p.length && (p[pi] === '?' || p[pi] === s[si])) { si++; pi++; }
      else if (pi < p.length && p[pi] === '*') { star = pi++; mark = si; }
      else if (star >= 0) { pi = star + 1; si = ++mark; }
      else return false;
    }
    while (pi < p.length && p[pi] === '*') pi++;
    return pi === p.length;
  }
  function cond(c, ctx) {
    var f = c.field, op = c.op, v = c.value;
    if (f === 'device' || f === 'country' || f === 'visitor') {
      var subject = f === 'device' ? ctx.device : f === 'visitor' ? ctx.visitor : (ctx.country || '').toUpperCase();
      if (!subject) return false;
      var list = op === 'is' ? [v] : (v || []);
      return list.some(x => typeof x === 'string' && x.toLowerCase() === subject.toLowerCase());
    }
    if (f === 'schedule') return schedule(v || {}, ctx);
    var s = text(f, ctx);
    if (op === 'exists') return (!!s) === (v === undefined || v === null ? true : v);
    if (s == null || typeof v !== 'string') return false;
    var cs = c.caseSensitive === true, a = cs ? s : s.toLowerCase(), b = cs ? v : v.toLowerCase();
    if (op === 'equals') return a === b;
    if (op === 'contains') return a.indexOf(b) >= 0;
    if (op === 'startsWith') return a.indexOf(b) === 0;
    if (op === 'glob') return glob(a, b);
    if (op === 'regex') { try { return new RegExp(v, cs ? '' : 'i').test(s.slice(0, 2048)); } catch (e) { return false; } }
    return false;
  }
  function schedule(sch, ctx) {
    var parts = {};
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: ctx.timezone || 'UTC', year: 'numeric', month: '2-digit', day: '2-digit',
        weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
        .formatToParts(new Date(ctx.now)).forEach(p => { parts[p.type] = p.value; });
    } catch (e) { return false; }
    var day = +(parts.year + parts.month + parts.day);
    if (sch.from && day < +sch.from.replace(/-/g, '')) return false;
    if (sch.to && day > +sch.to.replace(/-/g, '')) return false;
    if (sch.weekdays && sch.weekdays.indexOf(parts.weekday.toLowerCase().slice(0, 3)) < 0) return false;
    if (sch.hours) {
      var m = (+parts.hour % 24) * 60 + +parts.minute, f = mins(sch.hours.from), t = mins(sch.hours.to);
      if (f == null || t == null) return false;
      if (f < t ? !(m >= f && m < t) : !(m >= f || m < t)) return false;
    }
    return true;
  }
  function mins(s) { var p = /^(\d\d):(\d\d)$/.exec(s || ''); return p ? +p[1] * 60 + +p[2] : null; }

  /* ---------- A/B: deterministic, sticky assignment from the visitor id (FNV-1a, as in Swift) ---------- */
  function fnv(s) {
    var h = 0x811c9dc5;
    for (var i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return h >>> 0;
  }
  function pick(variants, nid, visitor) {
    if (!variants || !variants.length) return null;
    var total = variants.reduce((t, x) => t + x.weight, 0), r = fnv(visitor + ':' + nid) % total;
    for (var i = 0; i < variants.length; i++) { if (r < variants[i].weight) return variants[i].id; r -= variants[i].weight; }
    return variants[variants.length - 1].id;
  }

  /* ---------- text ---------- */
  function ago(ms) {
    var s = Math.max(0, Math.floor((now() - ms) / 1000));
    function u(n, x) { return n + ' ' + x + (n === 1 ? '' : 's') + ' ago'; }
    return s < 60 ? 'just now' : s < 3600 ? u(Math.floor(s / 60), 'minute') : s < 86400 ? u(Math.floor(s / 3600), 'hour') : u(Math.floor(s / 86400), 'day');
  }
  function group(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function join(runs, live) {
    return (runs || []).map(r => {
      if (r.text != null) return r.text;
      if (r.ago != null) return ago(r.ago);
      if (r.live) return r.one != null ? (live === 1 ? r.one : r.other) : group(live || 0);
      return '';
    }).join('');
  }
  function safeUrl(u) { try { var x = new URL(u); return /^https?:$/.test(x.protocol) ? x.href : null; } catch (e) { return null; } }

  /* ---------- context ---------- */
  function device() {
    var ua = navigator.userAgent;
    if (/iPad|Tablet/i.test(ua) || (/Android/i.test(ua) && !/Mobile/i.test(ua))) return 'tablet';
    return /Mobi|iPhone|iPod|Android/i.test(ua) ? 'mobile' : 'desktop';
  }
  function ctx() {
    return { url: location.href, referrer: d.referrer || null, device: device(), country: state.country,
      visitor: returning ? 'returning' : 'new', now: now(), timezone: state.feed && state.feed.timezone };
  }
  function usesCountry(node) { return !!node && JSON.stringify(node).indexOf('"country"') >= 0; }

  /* ---------- queue: per-page and per-session caps survive feed reloads ---------- */
  function count(nid) { return +(ss.get('hc:' + nid) || 0); }
  function eligible(n) {
    var c = ctx();
    return n.settings.devices.indexOf(c.device) >= 0 && evaluate(n.rules, c);
  }
  function build() {
    state.queue = [];
    if (!state.feed) return;
    state.feed.notifications.forEach(n => {
      if (!eligible(n)) return;
      var variant = pick(n.variants, n.id, vid), cards = [];
      if (n.type === 'recent_activity') {
        var items = (n.items || []).slice();
        if (n.settings.order === 'random') items.sort(() => Math.random() - 0.5);
        cards = items.map(it => card(n, variant, it));
      } else if (n.type === 'counter') {
        var pc = n.byPath ? n.byPath[location.pathname.replace(/(.)\/$/, '$1')] : n;
        if (pc && pc.count >= (n.minimum || 1)) cards = [card(n, variant, pc)];
      } else {
        cards = [card(n, variant, n)];
      }
      state.queue.push({ n: n, cards: cards });
    });
  }
  function card(n, variant, it) {
    var id = it.id && it.id !== n.id ? it.id : null;
    return { n: n, v: variant, id: id, key: id || n.id, at: it.at,
      runs: (variant && it.variantRuns && it.variantRuns[variant]) || it.runs, url: safeUrl(it.url || ''), image: safeUrl(it.image || '') };
  }
  function nextCard() {
    for (var k = 0; k < state.queue.length; k++) {
      var q = state.queue.shift(); state.queue.push(q);
      var s = q.n.settings, seen = state.shown[q.n.id] = state.shown[q.n.id] || {};
      if ((seen._page || 0) >= s.maxPerPage || count(q.n.id) >= s.maxPerSession) continue;
      var c = q.cards.filter(x => !seen[x.key])[0];
      if (!c && s.loop && q.cards.length) { state.shown[q.n.id] = seen = { _page: seen._page }; c = q.cards[0]; }
      if (!c) continue;
      seen[c.key] = 1; seen._page = (seen._page || 0) + 1;
      return c;
    }
    return null;
  }
  function later(ms) { clearTimeout(state.timer); state.timer = setTimeout(showNext, ms); }
  function showNext() {
    if (!state.on || state.current) return;
    /* An impression counts only when it can be seen: nothing is shown in a background tab. */
    if (d.hidden) return later(1000);
    var c = nextCard();
    if (!c) return;
    if (c.n.type === 'live_visitors') {
      get(base + '/presence?path=' + encodeURIComponent(location.pathname)).then(p => {
        if (state.on && p && p.visitors >= (c.n.minimum || 1)) show(c, p.visitors); else later(1000);
      }, () => { later(1000); });
    } else show(c);
  }

  /* ---------- DOM ---------- */
  var CSS = ':host{all:initial}' +
    '.b{position:fixed;z-index:2147483647;display:flex;flex-direction:column;gap:8px;max-width:min(360px,calc(100vw - 32px));font:14px/1.4 system-ui,sans-serif}' +
    '.c{box-sizing:border-box;display:flex;gap:10px;align-items:center;padding:12px 36px 12px 12px;border-radius:10px;position:relative;cursor:default;' +
    'background:var(--bg);color:var(--fg);box-shadow:0 6px 24px #0003;opacity:0;transform:translateY(8px);transition:opacity .3s,transform .3s}' +
    '.c.in{opacity:1;transform:none}.c.link{cursor:pointer}.c img{width:44px;height:44px;border-radius:6px;object-fit:cover;flex:none}' +
    '.m{margin:0;word-break:break-word}.t{font-size:12px;opacity:.7;margin-top:2px}' +
    '.x{position:absolute;top:6px;right:6px;width:24px;height:24px;border:0;border-radius:6px;background:transparent;color:inherit;font:18px/1 inherit;cursor:pointer;opacity:.6}' +
    '.x:focus-visible{opacity:1;outline:2px solid var(--ac)}.a{display:inline-block;margin-top:6px;color:var(--ac);font-weight:600;text-decoration:none}' +
    '@media (prefers-reduced-motion:reduce){.c{transition:none;transform:none}}';
  function mount() {
    if (host) return;
    host = d.createElement('herald-notifications');
    mark('loading');
    root = host.attachShadow({ mode: 'open' });
    var st = d.createElement('style'); st.textContent = CSS; root.appendChild(st);
    box = el('div', 'b'); root.appendChild(box);
    (d.body || d.documentElement).appendChild(host);
  }
  function mark(x) { host && host.setAttribute('data-state', x); }
  function el(tag, cls, txt) { var e = d.createElement(tag); if (cls) e.className = cls; if (txt != null) e.textContent = txt; return e; }
  function show(c, live) {
    var s = c.n.settings, dark = s.theme === 'dark', col = s.colors || {};
    var p = s.position.split('-'); box.style.cssText = p[0] + ':16px;' + p[1] + ':16px';
    var e = el('div', 'c' + (c.url ? ' link' : ''));
    e.setAttribute('role', 'status'); e.setAttribute('aria-live', 'polite');
    e.setAttribute('data-notification-id', c.n.id);
    if (c.v) e.setAttribute('data-variant-id', c.v);
    e.style.setProperty('--bg', col.background || (dark ? '#1f2937' : '#ffffff'));
    e.style.setProperty('--fg', col.text || (dark ? '#f9fafb' : '#1f2937'));
    e.style.setProperty('--ac', col.accent || '#2563eb');
    if (s.showImage && c.image) { var im = el('img'); im.alt = ''; im.src = c.image; im.onerror = () => { im.remove(); }; e.appendChild(im); }
    var body = el('div');
    body.appendChild(el('p', 'm', join(c.runs, live)));
    if (s.showTimeAgo && c.at && c.n.type === 'recent_activity') body.appendChild(el('div', 't', ago(c.at)));
    if (c.n.cta && safeUrl(c.n.cta.url)) {
      var a = el('a', 'a', c.n.cta.text); a.href = safeUrl(c.n.cta.url); a.rel = 'noopener';
      /* The card's own click handler counts the click when it has a link: count it once. */
      a.onclick = ev => { ev.stopPropagation(); beacon('click', c); };
      body.appendChild(a);
    }
    e.appendChild(body);
    var closed = false;
    function close(user) {
      if (closed) return; closed = true;
      if (user) beacon('close', c);
      e.classList.remove('in'); setTimeout(() => { e.remove(); }, 300);
      if (state.current === e) state.current = null;
      later((user ? 0 : s.gapSeconds * 1000) + 300);
    }
    if (s.closable) {
      var x = el('button', 'x', '\u00d7'); x.type = 'button'; x.setAttribute('aria-label', 'Dismiss');
      x.onclick = ev => { ev.stopPropagation(); close(true); };
      e.appendChild(x);
    }
    e.addEventListener('keydown', ev => { if (ev.key === 'Escape') close(true); });
    e.addEventListener('mouseenter', () => { if (!e._h) { e._h = 1; beacon('hover', c); } clearTimeout(e._t); });
    e.addEventListener('mouseleave', () => { e._t = setTimeout(() => { close(false); }, 1500); });
    if (c.url) e.addEventListener('click', () => { beacon('click', c); flush(); location.href = c.url; });
    box.appendChild(e); state.current = e;
    requestAnimationFrame(() => { e.classList.add('in'); });
    ss.set('hc:' + c.n.id, count(c.n.id) + 1);
    beacon('impression', c);
    e._t = setTimeout(() => { close(false); }, s.displaySeconds * 1000);
  }
  function clear() { if (box) while (box.firstChild) box.removeChild(box.firstChild); state.current = null; }

  /* ---------- beacons ---------- */
  /* What this visitor saw, hovered or clicked in the last 30 days: the server never links days, the widget does. */
  function touches() { try { return JSON.parse(ls.get('ht')).filter(x => now() - x.at < 2592e6); } catch (e) { return []; } }
  function beacon(type, c, goal, extra) {
    if (!state.on) return;
    var t = now(), b = { type: type, notificationId: c && c.n.id, variantId: (c && c.v) || undefined,
      activityId: (c && c.id) || undefined, goal: goal, path: location.pathname, at: t };
    if (type === 'impression') {
      if (!ls.get('hf')) ls.set('hf', t);
      if (c.v) { b.exposure = !ls.get('hx:' + c.n.id); ls.set('hx:' + c.n.id, 1); }
    }
    if ('impression hover click'.indexOf(type) >= 0) {
      var list = touches(); list.push({ notificationId: b.notificationId, variantId: b.variantId, type: type, at: t });
      ls.set('ht', JSON.stringify(list.slice(-20)));
    }
    b.firstSeenAt = +ls.get('hf') || undefined;
    state.beacons.push(Object.assign(b, extra));
    if (state.beacons.length >= 40) flush();
  }
  function flush() {
    if (!state.beacons.length) return;
    /* A string body goes as text/plain: a simple request, no CORS preflight. */
    var body = JSON.stringify({ visitorId: vid, sessionId: sid, referrer: d.referrer, utm: utm, events: state.beacons.splice(0, 50) });
    var url = base + '/beacons';
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, body))) fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'omit' }).catch(() => {});
  }
  setInterval(flush, 2000);
  d.addEventListener('visibilitychange', () => { if (d.visibilityState === 'hidden') flush(); });
  w.addEventListener('pagehide', flush);

  /* ---------- feed, live stream, polling ---------- */
  function get(url) { return fetch(url, { credentials: 'omit' }).then(r => { if (!r.ok) throw r.status; return r.json(); }); }
  function load(first) {
    return get(base + '/feed').then(f => {
      state.feed = f;
      var current = state.current && state.current.getAttribute('data-notification-id');
      if (current && !f.notifications.some(n => n.id === current)) clear();
      build();
      var live = f.notifications.some(n => n.type === 'live_visitors');
      if (live && !state.hb) { heartbeat(); state.hb = setInterval(heartbeat, 20000); }
      if (f.notifications.some(n => usesCountry(n.rules)) && state.country == null && !state.es) {
        get(base + '/context').then(c => { state.country = c.country; build(); }, () => {});
      }
      if (first) later(Math.min(...f.notifications.map(n => n.settings.firstDelaySeconds), 3600) * 1000);
      else later(0);
    });
  }
  function heartbeat() {
    if (!state.on || d.visibilityState === 'hidden') return;
    state.beacons.push({ type: 'heartbeat', path: location.pathname, at: now() }); flush();
  }
  function connect() {
    if (!w.EventSource) return poll();
    var es = state.es = new EventSource(base + '/stream');
    es.onopen = () => { state.fails = 0; mark('live'); stopPoll(); };
    es.addEventListener('hello', m => { try { state.country = JSON.parse(m.data).country; } catch (e) {} });
    es.addEventListener('feed', () => { load(false); });
    es.addEventListener('activity', m => {
      var p; try { p = JSON.parse(m.data); } catch (e) { return; }
      p.items.forEach(x => {
        state.queue.forEach(q => {
          if (q.n.id === x.notificationId && !q.cards.some(c => c.id === x.item.id)) {
            q.cards.unshift(card(q.n, pick(q.n.variants, q.n.id, vid), x.item));
          }
        });
      });
      later(0);
    });
    es.onerror = () => {
      if (es.readyState !== 2 && ++state.fails < 4) return;
      es.close(); state.es = null; poll();
      setTimeout(() => { if (state.on && !state.es) connect(); }, Math.min(6e4, 1e3 * 2 ** state.fails++));
    };
  }
  function poll() {
    if (state.poll) return;
    mark('polling');
    state.poll = setInterval(() => { load(false).catch(() => {}); }, 20000);
  }
  function stopPoll() { clearInterval(state.poll); state.poll = 0; }

  function start() {
    if (state.on) return;
    state.on = true; mount();
    /* One pageview per page, however often the widget restarts after a failed feed. */
    if (!state.pv) {
      state.pv = 1; beacon('pageview');
      /* Web push opt-in (docs/CHANNELS.md): only when the site serves Herald's service worker and push is on; the
         prompt lives in its own script, loaded on demand, and asks nothing before the visitor's click. */
      if (me.getAttribute('data-push-worker')) get(base + '/push').then(p => { if (p.enabled) d.head.appendChild(el('script')).src = base + '/../push-optin.js'; }, () => {});
    }
    load(true).then(connect, () => { mark('error'); setTimeout(() => { state.on = false; start(); }, 30000); });
  }
  function stop() {
    state.on = false; clearTimeout(state.timer); stopPoll(); clearInterval(state.hb); state.hb = 0;
    if (state.es) { state.es.close(); state.es = null; }
    state.beacons = []; clear();
    if (host) mark('stopped');
  }

  w.Herald = {
    v: 1,
    stop: stop,
    resume: start,
    /* Records a conversion (with an optional value), credited to what this visitor saw before (docs/ANALYTICS.md). */
    track: (goal, value) => {
      var t = touches(), l = t.filter(x => now() - x.at < 6048e5).pop(), c = l ? { n: { id: l.notificationId }, v: l.variantId } : null;
      var x = { value: typeof value == 'number' ? value : undefined, touches: t, previousConversionAt: +ls.get('hp') || undefined };
      if (c && c.v) { x.firstConversion = !ls.get('hy:' + c.n.id); ls.set('hy:' + c.n.id, 1); }
      ls.set('hp', now());
      beacon('conversion', c, String(goal || 'conversion').slice(0, 100), x); flush();
    },
    _evaluate: evaluate,
    _pick: pick
  };
  if (me.getAttribute('data-autostart') !== 'false') {
    if (d.readyState === 'loading') d.addEventListener('DOMContentLoaded', start); else start();
  }
})(window, document);
