/* Herald web push opt-in (docs/CHANNELS.md). The widget loads this only when the snippet names the site's service
   worker (data-push-worker) and the site sends pushes. It shows a small prompt and asks the browser for nothing
   until the visitor clicks "Get updates"; "No thanks" (or Escape) is remembered. Everything is set as text. */
((w, d) => {
  'use strict';
  var nav = navigator, N = w.Notification;
  var me = d.querySelector('script[data-site][data-push-worker]');
  if (!me || w.HeraldPush || !nav.serviceWorker || !w.PushManager || !N || N.permission === 'denied') return;
  w.HeraldPush = { v: 1 };
  var pk = me.getAttribute('data-site'), api = new URL(me.src, location.href).origin + '/widget/v1/' + pk;
  var worker = me.getAttribute('data-push-worker');
  /* localStorage: "no:<time>" after a dismissal, or the endpoint Herald was last given. */
  var KEY = 'herald-push:' + pk, WAIT = 90 * 864e5;

  function saved(v) {
    try { if (v == null) return localStorage.getItem(KEY) || ''; localStorage.setItem(KEY, v); } catch (e) {}
    return '';
  }
  var was = saved();
  if (/^no:/.test(was) && Date.now() - was.slice(3) < WAIT) return;

  function json(r) { if (!r.ok) throw r.status; return r.status === 204 ? null : r.json(); }
  function post(sub) {
    return fetch(api + '/push-subscriptions', { method: 'POST', credentials: 'omit', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(sub) }).then(json).then(() => { saved(sub.endpoint); });
  }
  /* The VAPID public key: base64url to bytes. */
  function bytes(s) { return Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0)); }
  /* A registration whose worker is active: push subscriptions need one. */
  function active(reg) {
    var sw = reg.installing || reg.waiting;
    return reg.active || !sw ? reg : new Promise((ok, no) => {
      sw.addEventListener('statechange', () => { if (sw.state === 'activated') ok(reg); else if (sw.state === 'redundant') no(0); });
    });
  }

  Promise.all([fetch(api + '/push', { credentials: 'omit' }).then(json), nav.serviceWorker.getRegistration(worker)]).then(r => {
    var info = r[0], reg = r[1];
    if (!info.enabled || !info.publicKey) return;
    return (reg ? reg.pushManager.getSubscription() : Promise.resolve(null)).then(sub => {
      /* Already subscribed (an earlier click): no prompt; tell Herald again only if the browser's endpoint changed. */
      if (sub) { if (was !== sub.endpoint && N.permission === 'granted') return post(sub); return; }
      show(info.publicKey);
    });
  }).catch(() => {});

  var CSS = ':host{all:initial}' +
    '.p{position:fixed;z-index:2147483646;box-sizing:border-box;max-width:min(340px,calc(100vw - 32px));padding:12px 14px;border-radius:10px;' +
    'background:#fff;color:#1f2937;box-shadow:0 6px 24px #0003;font:14px/1.4 system-ui,sans-serif}' +
    '.m{margin:0 0 10px}button{font:inherit;padding:6px 12px;border-radius:6px;border:1px solid #2563eb;cursor:pointer}' +
    '.y{background:#2563eb;color:#fff;margin-right:8px}.n{background:#fff;color:#1f2937;border-color:#9ca3af}' +
    'button:focus-visible{outline:2px solid #2563eb;outline-offset:2px}';

  function el(tag, cls, txt) { var e = d.createElement(tag); e.className = cls; e.textContent = txt; return e; }
  function show(key) {
    var host = d.createElement('herald-push'), root = host.attachShadow({ mode: 'open' }), st = d.createElement('style');
    st.textContent = CSS; root.appendChild(st);
    var box = el('div', 'p', ''), pos = me.getAttribute('data-push-position') || '';
    pos = (/^(top|bottom)-(left|right)$/.test(pos) ? pos : 'bottom-right').split('-');
    box.style.cssText = pos[0] + ':16px;' + pos[1] + ':16px';
    box.setAttribute('role', 'region');
    box.setAttribute('aria-label', 'Updates from this site');
    var msg = el('p', 'm', me.getAttribute('data-push-text') || 'Get a notification when something new happens here?');
    msg.setAttribute('aria-live', 'polite');
    var yes = el('button', 'y', me.getAttribute('data-push-button') || 'Get updates'), no = el('button', 'n', 'No thanks'), busy = 0, done = 0;
    yes.type = no.type = 'button';
    box.append(msg, yes, no);
    root.appendChild(box);
    (d.body || d.documentElement).appendChild(host);

    function close() { host.remove(); }
    function finish(text, ok) {
      done = 1; busy = 0; msg.textContent = text;
      var focused = root.activeElement;
      yes.remove(); no.textContent = 'Close';
      if (focused) no.focus();
      if (ok) setTimeout(close, 6000);
    }
    no.onclick = () => { if (!done) saved('no:' + Date.now()); close(); };
    box.addEventListener('keydown', ev => { if (ev.key === 'Escape') no.onclick(); });
    yes.onclick = () => {
      if (busy) return;
      busy = 1; yes.setAttribute('aria-disabled', 'true');
      /* Asked here, in the click: the browser's prompt follows the visitor's gesture, never the page load. */
      N.requestPermission().then(p => {
        if (p !== 'granted') { saved('no:' + Date.now()); throw 'denied'; }
        return nav.serviceWorker.register(worker);
      }).then(active).then(reg => reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) }))
        .then(post)
        .then(() => { finish('Done: you will get updates from this site.', 1); },
          x => { finish(x === 'denied' ? 'Notifications are blocked for this site in your browser.' : 'That did not work; please try again later.'); });
    };
  }
})(window, document);
