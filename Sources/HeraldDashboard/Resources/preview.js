// The dashboard's notification preview: runs the real widget (/widget.js, unchanged) on a feed document the
// dashboard sends by postMessage. Before the widget loads, this script takes over what the widget talks to: its
// feed, presence and context requests are answered from that document, its beacons and live stream go nowhere
// (a preview never counts as an impression), and its storage lives in memory (no caps or visitor id left behind).
"use strict";
(function () {
  var status = document.getElementById("preview-status");
  if (window.parent === window) { status.textContent = "This page shows a notification preview inside the Herald dashboard."; return; }
  var origin = location.origin, feed = null, visitors = 14;

  function memoryStorage() {
    var data = {};
    return {
      getItem: function (k) { return Object.prototype.hasOwnProperty.call(data, k) ? data[k] : null; },
      setItem: function (k, v) { data[k] = String(v); },
      removeItem: function (k) { delete data[k]; },
      clear: function () { data = {}; }
    };
  }
  function json(body) { return Promise.resolve(new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } })); }

  function install() {
    // A browser that refuses one of these still previews: the widget tolerates storage errors, and a beacon that
    // escapes goes to the "preview" key, which names no site and is refused.
    [[window, "localStorage", memoryStorage()], [window, "sessionStorage", memoryStorage()],
      [navigator, "sendBeacon", function () { return true; }]].forEach(function (x) {
      try { Object.defineProperty(x[0], x[1], { value: x[2], configurable: true }); } catch (e) { /* kept as it is */ }
    });
    window.fetch = function (input) {
      var url = String(input && input.url || input);
      if (/\/feed$/.test(url)) return json(feed);
      if (/\/presence\?/.test(url)) return json({ visitors: visitors });
      if (/\/context$/.test(url)) return json({ country: null });
      if (/\/push$/.test(url)) return json({ enabled: false });
      if (/\/beacons$/.test(url)) return Promise.resolve(new Response(null, { status: 204 }));
      return Promise.reject(new TypeError("The preview makes no other request."));
    };
    // No live stream: the dashboard reloads this page with a new document when the notification changes.
    window.EventSource = function () { this.readyState = 0; };
    window.EventSource.prototype.addEventListener = function () {};
    window.EventSource.prototype.close = function () { this.readyState = 2; };
    // The widget styles its popup with a <style> element in its shadow root; this page's CSP allows no inline
    // style, so the same rules are adopted as a constructed style sheet instead.
    var append = ShadowRoot.prototype.appendChild;
    ShadowRoot.prototype.appendChild = function (child) {
      if (child instanceof HTMLStyleElement && "adoptedStyleSheets" in this) {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(child.textContent);
        this.adoptedStyleSheets = this.adoptedStyleSheets.concat([sheet]);
        return child;
      }
      return append.call(this, child);
    };
    // A click on the popup would follow the product's link: the preview stays where it is (the close button works).
    window.addEventListener("click", function (event) {
      var target = event.composedPath()[0];
      if (!(target instanceof HTMLButtonElement)) { event.preventDefault(); event.stopPropagation(); }
    }, true);
  }

  // The preview shows the notification here and now: targeting, devices, delays and caps are the site's business.
  function prepare(doc, variantIndex) {
    doc.notifications.forEach(function (n) {
      n.rules = undefined;
      n.settings = Object.assign({}, n.settings, { devices: ["desktop", "mobile", "tablet"], firstDelaySeconds: 0, maxPerPage: 50, maxPerSession: 500, loop: true });
      if (n.byPath) {
        var first = Object.keys(n.byPath)[0];
        if (first) { Object.assign(n, n.byPath[first]); }
        n.byPath = undefined;
      }
      if (n.variants && n.variants.length) {
        var chosen = n.variants[variantIndex] || n.variants[0];
        n.variants = [{ id: chosen.id, weight: 1 }];
      }
      if (n.type === "live_visitors") visitors = Math.max(n.minimum || 1, 14);
    });
    return doc;
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== window.parent) return;
    var data = event.data || {};
    if (data.type !== "herald-preview" || feed || !data.feed) return;
    feed = prepare(data.feed, data.variantIndex);
    install();
    status.textContent = feed.notifications.length ? "Preview of the notification as visitors will see it." : "Nothing to preview.";
    var script = document.createElement("script");
    script.src = "/widget.js";
    script.setAttribute("data-site", "preview");
    document.body.appendChild(script);
  });
  window.parent.postMessage({ type: "herald-preview-ready" }, origin);
})();
