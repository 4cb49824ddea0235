// Herald's dashboard: a dependency-free single-page app over Herald's public API. It signs in with an HttpOnly
// cookie (POST /auth/browser-session) that this script cannot read, and repeats the session's CSRF token on every
// change. Pages are built with DOM calls, never from HTML strings, so nothing a user typed can become markup.
"use strict";
(function () {
  var csrf = null;
  var me = null;
  var main = document.getElementById("main");

  // --- DOM ---------------------------------------------------------------------------------------------------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    });
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
    else el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  function show(title) {
    main.textContent = "";
    document.title = title + " · Herald";
    for (var i = 1; i < arguments.length; i++) append(main, arguments[i]);
    main.focus();
  }
  function flash(message, kind) {
    var box = document.getElementById("flash");
    box.className = kind || "error";
    box.textContent = message || "";
  }
  function field(label, name, type, extra) {
    var attrs = Object.assign({ name: name, id: "f-" + name, type: type || "text" }, extra || {});
    return h("label", { for: attrs.id }, label, h(type === "select" ? "select" : "input", type === "select" ? { name: name, id: attrs.id } : attrs,
      (extra && extra.options || []).map(function (o) { return h("option", { value: o[0] }, o[1]); })));
  }
  function values(form) {
    var out = {};
    new FormData(form).forEach(function (v, k) { out[k] = v; });
    return out;
  }
  function table(headers, rows) {
    return h("div", { class: "table" }, h("table", null,
      h("thead", null, h("tr", null, headers.map(function (t) { return h("th", { scope: "col" }, t); }))),
      h("tbody", null, rows.length ? rows.map(function (r) { return h("tr", null, r.map(function (c) { return h("td", null, c); })); })
        : h("tr", null, h("td", { colspan: String(headers.length), class: "muted" }, "Nothing yet.")))));
  }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  // --- API ---------------------------------------------------------------------------------------------------
  // Errors are RFC 9457 problem documents: their detail, and each field's message, are shown as written.
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        if (r.status === 204) return null;
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.ok) return data;
          var message = data.detail || data.title || ("The request failed (" + r.status + ").");
          if (data.errors && data.errors.length) message = data.errors.map(function (e) { return e.field + " " + e.message; }).join("; ");
          var error = new Error(message);
          error.status = r.status;
          throw error;
        });
      }, function () { throw new Error("Herald cannot be reached. Check your connection and try again."); });
  }
  function guarded(promise) {
    return promise.catch(function (e) {
      if (e.status === 401) { csrf = null; me = null; renderAccount(); location.hash = "#/login"; }
      flash(e.message, "error");
    });
  }
  function submit(form, action) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      flash("");
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      guarded(Promise.resolve().then(function () { return action(values(form)); }))
        .then(function () { if (button) button.disabled = false; });
    });
    return form;
  }

  // --- account -----------------------------------------------------------------------------------------------
  function setSession(s) { csrf = s.csrfToken; me = s.user; renderAccount(); }
  function renderAccount() {
    var nav = document.getElementById("account");
    nav.textContent = "";
    if (!me) return;
    append(nav, h("span", { class: "muted" }, me.email + " "));
    append(nav, h("button", { type: "button", class: "secondary", onclick: function () {
      guarded(api("DELETE", "/auth/browser-session").then(function () { csrf = null; me = null; renderAccount(); location.hash = "#/login"; flash("Signed out.", "info"); }));
    } }, "Sign out"));
  }

  function loginPage() {
    show("Sign in", h("h1", null, "Sign in"),
      submit(h("form", { "aria-label": "Sign in" },
        field("Email", "email", "email", { autocomplete: "email", required: true }),
        field("Password", "password", "password", { autocomplete: "current-password", required: true }),
        h("button", { type: "submit" }, "Sign in")), function (v) {
        return api("POST", "/auth/browser-session", { email: v.email, password: v.password }).then(function (s) { setSession(s); location.hash = "#/"; });
      }),
      h("p", null, "New to Herald? ", h("a", { href: "#/signup" }, "Create an account")));
  }

  function signupPage() {
    show("Create an account", h("h1", null, "Create an account"),
      submit(h("form", { "aria-label": "Create an account" },
        field("Your name", "name", "text", { autocomplete: "name", required: true, maxlength: "100" }),
        field("Email", "email", "email", { autocomplete: "email", required: true }),
        field("Password (at least 10 characters)", "password", "password", { autocomplete: "new-password", required: true, minlength: "10" }),
        h("button", { type: "submit" }, "Create account")), function (v) {
        // Sign-up answers with tokens; they are traded at once for the cookie session and forgotten.
        return api("POST", "/auth/signup", v).then(function (t) {
          return api("POST", "/auth/browser-session", { refreshToken: t.refreshToken });
        }).then(function (s) { setSession(s); location.hash = "#/"; flash("Welcome to Herald. Create your organization to begin.", "info"); });
      }),
      h("p", null, "Already have an account? ", h("a", { href: "#/login" }, "Sign in")));
  }

  // --- organizations -----------------------------------------------------------------------------------------
  function homePage() {
    return api("GET", "/organizations").then(function (page) {
      show("Organizations", h("h1", null, "Organizations"),
        table(["Organization", "Your role"], page.items.map(function (o) {
          return [h("a", { href: "#/orgs/" + o.id }, o.name), o.role];
        })),
        h("h2", null, "New organization"),
        submit(h("form", { "aria-label": "New organization" }, field("Name", "name", "text", { required: true, maxlength: "100" }),
          h("button", { type: "submit" }, "Create organization")), function (v) {
          return api("POST", "/organizations", { name: v.name }).then(function (o) { location.hash = "#/orgs/" + o.id; });
        }));
    });
  }

  function orgPage(orgId) {
    return Promise.all([api("GET", "/organizations/" + orgId), api("GET", "/organizations/" + orgId + "/sites"),
      api("GET", "/organizations/" + orgId + "/members")]).then(function (r) {
      var org = r[0], sites = r[1].items, members = r[2].items;
      var admin = org.role === "owner" || org.role === "admin";
      show(org.name, h("p", null, h("a", { href: "#/" }, "Organizations")), h("h1", null, org.name),
        h("h2", null, "Sites"),
        table(["Site", "Domain", "Time zone"], sites.map(function (s) { return [h("a", { href: "#/sites/" + s.id }, s.name), s.domain, s.timezone]; })),
        admin ? [h("h2", null, "New site"), submit(h("form", { "aria-label": "New site" },
          field("Name", "name", "text", { required: true, maxlength: "100" }),
          field("Domain", "domain", "text", { required: true, placeholder: "shop.example.com" }),
          h("button", { type: "submit" }, "Create site")), function (v) {
          return api("POST", "/organizations/" + orgId + "/sites", { name: v.name, domain: v.domain }).then(function (s) {
            sessionStorage.setItem("herald-secret-" + s.id, s.secretKey || "");
            location.hash = "#/sites/" + s.id;
          });
        })] : null,
        h("h2", null, "Members"),
        table(["Name", "Email", "Role"], members.map(function (m) { return [m.name || "", m.email || "", m.role]; })),
        admin ? [h("h2", null, "Invite someone"), submit(h("form", { "aria-label": "Invite someone" },
          field("Email", "email", "email", { required: true }),
          field("Role", "role", "select", { options: [["member", "Member"], ["viewer", "Viewer"], ["admin", "Admin"]] }),
          h("button", { type: "submit" }, "Send invitation")), function (v) {
          return api("POST", "/organizations/" + orgId + "/invitations", v).then(function () { flash("Invitation sent to " + v.email + ".", "info"); });
        })] : null,
        admin ? h("p", null, h("a", { href: "#/orgs/" + orgId + "/audit" }, "Audit log")) : null);
    });
  }

  function auditPage(orgId) {
    return api("GET", "/organizations/" + orgId + "/audit-logs?limit=100").then(function (page) {
      var result = h("p", { role: "status" });
      show("Audit log", h("p", null, h("a", { href: "#/orgs/" + orgId }, "Back to the organization")), h("h1", null, "Audit log"),
        h("div", { class: "row" }, h("button", { type: "button", class: "secondary", onclick: function () {
          guarded(api("GET", "/organizations/" + orgId + "/audit-logs/verify").then(function (v) {
            result.textContent = v.valid ? "The chains are intact: " + v.checkedRecords + " records checked." : "A chain is broken: " + JSON.stringify(v.chains.filter(function (c) { return !c.valid; }));
          }));
        } }, "Verify the chain"), result),
        table(["When", "Action", "Actor", "Address"], page.items.map(function (e) {
          return [when(e.occurredAt), e.action, e.actorUserId || "", e.ip || ""];
        })));
    });
  }

  // --- sites -------------------------------------------------------------------------------------------------
  function copyButton(text, label) {
    return h("button", { type: "button", class: "secondary", onclick: function (event) {
      var button = event.currentTarget;
      navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; }, function () { flash("Copy failed: select the text and copy it yourself."); });
    } }, label);
  }

  function sitePage(siteId) {
    return Promise.all([api("GET", "/sites/" + siteId), api("GET", "/sites/" + siteId + "/notifications")]).then(function (r) {
      var site = r[0], notifications = r[1].items;
      var secret = sessionStorage.getItem("herald-secret-" + siteId);
      sessionStorage.removeItem("herald-secret-" + siteId);
      var secretBox = h("div", { "aria-live": "polite" }, secret ? secretNotice(secret) : null);
      show(site.name, h("p", null, h("a", { href: "#/orgs/" + site.organizationId }, "Back to the organization")), h("h1", null, site.name),
        h("p", { class: "muted" }, site.domain + " · " + site.timezone),
        h("h2", null, "Embed snippet"),
        h("p", null, "Paste this into every page of " + site.domain + ", before </body>."),
        h("pre", { id: "snippet" }, site.embedSnippet), copyButton(site.embedSnippet, "Copy snippet"),
        h("h2", null, "Keys"),
        h("p", null, "Public key: ", h("code", null, site.publicKey)),
        secretBox,
        h("button", { type: "button", class: "danger", onclick: function () {
          if (!window.confirm("Rotate the keys? The current secret key stops working now, and the snippet changes.")) return;
          guarded(api("POST", "/sites/" + siteId + "/keys/rotate").then(function (s) {
            secretBox.textContent = "";
            append(secretBox, secretNotice(s.secretKey));
            document.getElementById("snippet").textContent = s.embedSnippet;
          }));
        } }, "Rotate keys"),
        h("h2", null, "Notifications"),
        table(["Notification", "Type", "Status", ""], notifications.map(function (n) {
          var next = n.status === "published" ? "pause" : "publish";
          return [n.name, n.type, h("span", { class: "status" }, n.status), h("button", { type: "button", class: "secondary", onclick: function () {
            guarded(api("POST", "/sites/" + siteId + "/notifications/" + n.id + "/" + next).then(function () { route(); }));
          } }, next === "pause" ? "Pause" : "Publish")];
        })),
        h("h2", null, "New notification"),
        submit(h("form", { "aria-label": "New notification" },
          field("Name", "name", "text", { required: true, maxlength: "100" }),
          field("Type", "type", "select", { options: [["recent_activity", "Recent activity"], ["counter", "Counter"], ["live_visitors", "Live visitors"], ["announcement", "Announcement"]] }),
          h("button", { type: "submit" }, "Create notification")), function (v) {
          return api("POST", "/sites/" + siteId + "/notifications", v).then(function () { flash("Created. Publish it to show it on your site.", "info"); route(); });
        }),
        h("h2", null, "Analytics (last 30 days)"), analyticsBox(siteId));
    });
  }

  function secretNotice(secret) {
    return h("div", { class: "secret" }, h("p", null, "Secret key (shown once: store it now; it lets servers record activities):"),
      h("pre", null, secret), copyButton(secret, "Copy secret key"));
  }

  function analyticsBox(siteId) {
    var box = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
    api("GET", "/sites/" + siteId + "/analytics?interval=day").then(function (a) {
      box.textContent = "";
      var t = a.totals || {};
      function pct(x) { return x === null || x === undefined ? "–" : (x * 100).toFixed(1) + " %"; }
      append(box, table(["Impressions", "Clicks", "Conversions", "Unique visitors", "Click-through", "Conversion"],
        [[String(t.impressions || 0), String(t.clicks || 0), String(t.conversions || 0), String(t.uniqueVisitors || 0),
          pct(t.clickThroughRate), pct(t.conversionRate)]]));
      append(box, chart(a.series || [], a.from + " to " + a.to));
      append(box, h("h3", null, "By notification"));
      append(box, table(["Notification", "Impressions", "Clicks", "Conversions", "Click-through"], (a.notifications || []).map(function (n) {
        var m = n.metrics || {};
        return [n.name, String(m.impressions || 0), String(m.clicks || 0), String(m.conversions || 0), pct(m.clickThroughRate)];
      })));
    }, function (e) { box.textContent = e.message; });
    return box;
  }

  // An SVG bar chart of impressions and clicks per day, drawn with DOM calls; the numbers are also in its
  // accessible description and in the tables around it.
  function chart(series, period) {
    var NS = "http://www.w3.org/2000/svg";
    function s(tag, attrs) {
      var el = document.createElementNS(NS, tag);
      Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
      for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
      return el;
    }
    var width = 640, height = 180, pad = 24;
    var max = Math.max(1, Math.max.apply(null, series.map(function (p) { return p.impressions; })));
    var step = series.length ? (width - pad * 2) / series.length : 0;
    var bars = [];
    series.forEach(function (p, i) {
      var x = pad + i * step;
      var hi = (height - pad * 2) * p.impressions / max, hc = (height - pad * 2) * p.clicks / max;
      bars.push(s("rect", { x: x.toFixed(1), y: (height - pad - hi).toFixed(1), width: Math.max(1, step * 0.45).toFixed(1), height: hi.toFixed(1), class: "bar-impressions" },
        s("title", null, p.start.slice(0, 10) + ": " + p.impressions + " impressions")));
      bars.push(s("rect", { x: (x + step * 0.5).toFixed(1), y: (height - pad - hc).toFixed(1), width: Math.max(1, step * 0.45).toFixed(1), height: hc.toFixed(1), class: "bar-clicks" },
        s("title", null, p.start.slice(0, 10) + ": " + p.clicks + " clicks")));
    });
    var total = series.reduce(function (a, p) { return [a[0] + p.impressions, a[1] + p.clicks]; }, [0, 0]);
    return h("figure", { class: "chart" },
      s("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "chart-title chart-desc", width: "100%" },
        s("title", { id: "chart-title" }, "Impressions and clicks per day, " + period),
        s("desc", { id: "chart-desc" }, total[0] + " impressions and " + total[1] + " clicks over " + series.length + " days; the busiest day had " + max + " impressions."),
        s("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }),
        s("text", { x: pad, y: 14, class: "label" }, max + " impressions"),
        bars),
      h("figcaption", null, h("span", { class: "key key-impressions" }, "Impressions"), " ", h("span", { class: "key key-clicks" }, "Clicks"), " per day, " + period));
  }

  // --- routing -----------------------------------------------------------------------------------------------
  function route() {
    var path = (location.hash || "#/").slice(1);
    var parts = path.split("/").filter(Boolean);
    if (!me && parts[0] !== "signup") { if (parts[0] !== "login") { location.hash = "#/login"; return; } }
    if (parts[0] === "login") return loginPage();
    if (parts[0] === "signup") return signupPage();
    var page;
    if (parts[0] === "orgs" && parts[2] === "audit") page = auditPage(parts[1]);
    else if (parts[0] === "orgs" && parts[1]) page = orgPage(parts[1]);
    else if (parts[0] === "sites" && parts[1]) page = sitePage(parts[1]);
    else page = homePage();
    guarded(page);
  }

  window.addEventListener("hashchange", function () { flash(""); route(); });
  // A reloaded page asks who is signed in (the cookie survives; the CSRF token is asked for again), and keeps the
  // session from idling out while the tab is open.
  function resume() {
    return api("GET", "/auth/browser-session").then(function (s) {
      if (s) setSession(s); else { csrf = null; me = null; renderAccount(); }
    }, function () { csrf = null; me = null; renderAccount(); });
  }
  resume().then(route);
  setInterval(function () { if (me) resume(); }, 10 * 60 * 1000);
})();
