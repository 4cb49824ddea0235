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
  var flashedAt = 0;
  function flash(message, kind) {
    var box = document.getElementById("flash");
    flashedAt = message ? Date.now() : 0;
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
  // A page's reads that answer after the person went to another page are dropped, so a slow page never draws
  // over the one they went to (`anyPage` reads, such as the session's, are kept).
  var STALE = { stale: true, message: "" };
  function api(method, path, body, anyPage) {
    var at = location.hash;
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        if (method === "GET" && !anyPage && location.hash !== at) throw STALE;
        if (r.status === 204) return null;
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (r.ok) return data;
          var message = data.detail || data.title || ("The request failed (" + r.status + ").");
          if (data.errors && data.errors.length) message = data.errors.map(function (e) { return e.field + " " + e.message; }).join("; ");
          var error = new Error(message);
          error.status = r.status;
          error.errors = data.errors || [];
          throw error;
        });
      }, function () { throw new Error("Herald cannot be reached. Check your connection and try again."); });
  }
  function guarded(promise) {
    return promise.catch(function (e) {
      if (e === STALE) return;
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

  // An invitation opened before signing in waits in this tab until the person has signed in or signed up.
  function afterSignIn() {
    var token = sessionStorage.getItem("herald-invitation");
    sessionStorage.removeItem("herald-invitation");
    return token ? "#/invitations/" + encodeURIComponent(token) : "#/";
  }

  function invitationPage(token) {
    var tokenField = field("Invitation token (inv_…)", "token", "text", { required: true, autocomplete: "off", spellcheck: "false", maxlength: "200" });
    if (token) tokenField.querySelector("input").value = token;
    show("Accept an invitation", h("h1", null, "Accept an invitation"),
      h("p", null, "You join the organization as " + me.email + ". The invitation must have been sent to this address."),
      submit(h("form", { "aria-label": "Accept an invitation" }, tokenField, h("button", { type: "submit" }, "Accept invitation")), function (v) {
        return api("POST", "/invitations/accept", { token: v.token.trim() }).then(function (a) {
          location.hash = "#/orgs/" + a.organization.id;
          flash("Welcome to " + a.organization.name + ".", "info");
        });
      }));
  }

  function invitationNote() {
    return sessionStorage.getItem("herald-invitation")
      ? h("p", { class: "secret" }, "You have an invitation: sign in, or create an account, with the address it was sent to, then accept it.") : null;
  }

  function loginPage() {
    show("Sign in", h("h1", null, "Sign in"), invitationNote(),
      submit(h("form", { "aria-label": "Sign in" },
        field("Email", "email", "email", { autocomplete: "email", required: true }),
        field("Password", "password", "password", { autocomplete: "current-password", required: true }),
        h("button", { type: "submit" }, "Sign in")), function (v) {
        return api("POST", "/auth/browser-session", { email: v.email, password: v.password }).then(function (s) { setSession(s); location.hash = afterSignIn(); });
      }),
      h("p", null, "New to Herald? ", h("a", { href: "#/signup" }, "Create an account")));
  }

  function signupPage() {
    show("Create an account", h("h1", null, "Create an account"), invitationNote(),
      submit(h("form", { "aria-label": "Create an account" },
        field("Your name", "name", "text", { autocomplete: "name", required: true, maxlength: "100" }),
        field("Email", "email", "email", { autocomplete: "email", required: true }),
        field("Password (at least 10 characters)", "password", "password", { autocomplete: "new-password", required: true, minlength: "10" }),
        h("button", { type: "submit" }, "Create account")), function (v) {
        // Sign-up answers with tokens; they are traded at once for the cookie session and forgotten.
        return api("POST", "/auth/signup", v).then(function (t) {
          return api("POST", "/auth/browser-session", { refreshToken: t.refreshToken });
        }).then(function (s) {
          setSession(s);
          var next = afterSignIn();
          location.hash = next;
          if (next === "#/") flash("Welcome to Herald. Create your organization to begin.", "info");
        });
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
        }),
        h("p", null, "Invited to an organization? ", h("a", { href: "#/invitations" }, "Accept an invitation")));
    });
  }

  function orgPage(orgId) {
    return Promise.all([api("GET", "/organizations/" + orgId), api("GET", "/organizations/" + orgId + "/sites"),
      api("GET", "/organizations/" + orgId + "/members")]).then(function (r) {
      var admin = r[0].role === "owner" || r[0].role === "admin";
      return (admin ? api("GET", "/organizations/" + orgId + "/invitations") : Promise.resolve({ items: [] })).then(function (i) { return r.concat([i.items]); });
    }).then(function (r) {
      var org = r[0], sites = r[1].items, members = r[2].items;
      var pending = r[3].filter(function (i) { return i.status === "pending"; });
      var admin = org.role === "owner" || org.role === "admin";
      var linkBox = h("div", { "aria-live": "polite" });
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
          return api("POST", "/organizations/" + orgId + "/invitations", v).then(function (inv) {
            sessionStorage.setItem("herald-invite-link-" + orgId, JSON.stringify({ email: inv.email, link: location.origin + "/app#/invitations/" + inv.token }));
            route();
          });
        }), linkBox,
        h("h2", null, "Pending invitations"),
        table(["Email", "Role", "Expires", ""], pending.map(function (i) {
          return [i.email, i.role, when(i.expiresAt), h("button", { type: "button", class: "secondary", "aria-label": "Revoke the invitation of " + i.email, onclick: function () {
            if (!window.confirm("Revoke the invitation of " + i.email + "?")) return;
            guarded(api("DELETE", "/organizations/" + orgId + "/invitations/" + i.id).then(function () { flash("Invitation revoked.", "info"); route(); }));
          } }, "Revoke")];
        }))] : null,
        admin ? h("nav", { "aria-label": "Administration", class: "row" }, h("a", { href: "#/orgs/" + orgId + "/audit" }, "Audit log"),
          h("a", { href: "#/orgs/" + orgId + "/billing" }, "Billing"), h("a", { href: "#/orgs/" + orgId + "/sso" }, "Single sign-on")) : null);
      // The invitation's link holds its secret token: shown once, right after it was made, for the admin to send.
      var made = sessionStorage.getItem("herald-invite-link-" + orgId);
      sessionStorage.removeItem("herald-invite-link-" + orgId);
      if (made) {
        made = JSON.parse(made);
        append(linkBox, h("div", { class: "secret" }, h("p", null, "Invitation for " + made.email + " created. Send them this link (shown once); they accept it after signing in with that address:"),
          h("pre", { id: "invite-link" }, made.link), copyButton(made.link, "Copy invitation link")));
      }
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
        h("p", null, h("a", { href: "#/sites/" + siteId + "/integrations" }, "Integrations and webhooks")),
        h("h2", null, "Notifications"),
        table(["Notification", "Type", "Status", ""], notifications.map(function (n) {
          var next = n.status === "published" ? "pause" : "publish";
          return [h("a", { href: "#/sites/" + siteId + "/notifications/" + n.id }, n.name), n.type, h("span", { class: "status" }, n.status), h("button", { type: "button", class: "secondary", onclick: function () {
            guarded(api("POST", "/sites/" + siteId + "/notifications/" + n.id + "/" + next).then(function () { route(); }));
          } }, next === "pause" ? "Pause" : "Publish")];
        })),
        h("h2", null, "New notification"),
        submit(h("form", { "aria-label": "New notification" },
          field("Name", "name", "text", { required: true, maxlength: "100" }),
          field("Type", "type", "select", { options: [["recent_activity", "Recent activity"], ["counter", "Counter"], ["live_visitors", "Live visitors"], ["announcement", "Announcement"]] }),
          h("button", { type: "submit" }, "Create notification")), function (v) {
          return api("POST", "/sites/" + siteId + "/notifications", v).then(function (n) {
            location.hash = "#/sites/" + siteId + "/notifications/" + n.id;
            flash("Created. Edit it, then publish it to show it on your site.", "info");
          });
        }),
        h("h2", null, "Analytics (last 30 days)"), analyticsBox(siteId),
        h("p", null, h("a", { href: "#/sites/" + siteId + "/analytics" }, "All analytics: A/B tests, funnel, exports, any period")));
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
  function s(tag, attrs) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function chart(series, period) {
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


  // --- the analytics page: a period, the summary with each variant, A/B verdicts, the funnel, exports ----------
  function pct(x, digits) { return x === null || x === undefined ? "–" : (x * 100).toFixed(digits === undefined ? 1 : digits) + " %"; }
  function signedPct(x) { return x === null || x === undefined ? "–" : (x > 0 ? "+" : x < 0 ? "−" : "") + Math.abs(x * 100).toFixed(1) + " %"; }
  function pValue(p) { return p === null || p === undefined ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3); }
  function query(params) {
    var q = Object.keys(params).filter(function (k) { return params[k]; }).map(function (k) { return k + "=" + encodeURIComponent(params[k]); });
    return q.length ? "?" + q.join("&") : "";
  }

  function analyticsPage(siteId) {
    return api("GET", "/sites/" + siteId).then(function (site) {
      return siteRole(site).then(function (role) { return [site, role]; });
    }).then(function (r) {
      var site = r[0], canEdit = r[1] !== "viewer";
      var base = "/sites/" + siteId + "/analytics";
      // The period, and the funnel's steps and window (empty: the API's defaults), as the reports were last read.
      var period = { from: "", to: "", steps: "", window: "" };
      var reports = h("div", { class: "reports" });
      var exportsBox = h("div", { "aria-live": "polite" });
      var jobBox = h("div", { "aria-live": "polite" });
      var rangeForm = h("form", { "aria-label": "Period", class: "row range", novalidate: true },
        field("From", "from", "date"), field("To", "to", "date"),
        field("Funnel steps", "steps", "text", { placeholder: "impression, hover, click, conversion" }),
        field("Funnel window (minutes)", "window", "number", { min: "1", max: "1440", placeholder: "1440" }),
        h("button", { type: "submit" }, "Show"));
      function dates() { return { from: period.from, to: period.to }; }
      append(reports, h("p", { class: "muted" }, "Loading…"));
      // The reports of a period replace the shown ones only once all five have answered; a refused period (the
      // API's words, such as a day too far back) leaves the shown ones in place.
      function load() {
        return Promise.all([api("GET", base + query({ from: period.from, to: period.to, interval: "day" })), api("GET", base + "/ab-tests" + query(dates())), api("GET", base + "/funnels" + query(period)),
          api("GET", base + "/cohorts" + query(dates())), api("GET", base + "/attribution" + query(dates()))])
          .then(function (r) {
            reports.textContent = "";
            append(reports, [summarySection(r[0]), abSection(r[1], r[0]), funnelSection(r[2]), cohortSection(r[3]), attributionSection(r[4])]);
          });
      }
      submit(rangeForm, function (v) {
        if (v.from && v.to && v.from > v.to) throw new Error("The first day (From) must not be after the last day (To).");
        var before = period;
        period = { from: v.from, to: v.to, steps: v.steps.split(",").map(function (x) { return x.trim(); }).filter(Boolean).join(","), window: v.window };
        return load().catch(function (e) { period = before; throw e; });
      });

      var exportForm = submit(h("form", { "aria-label": "New export" },
        field("Report", "report", "select", { options: [["summary", "Summary"], ["ab-tests", "A/B tests"], ["funnels", "Funnel"], ["cohorts", "Cohorts"], ["attribution", "Attribution"], ["events", "Raw events (CSV, at most 31 days)"]] }),
        field("Format", "format", "select", { options: [["csv", "CSV"], ["pdf", "PDF"]] }),
        h("p", { class: "hint" }, "The export covers the period shown above (a funnel, also its steps and window)."),
        h("button", { type: "submit" }, "Export")), function (v) {
        var parameters = {};
        if (period.from) parameters.from = period.from;
        if (period.to) parameters.to = period.to;
        if (v.report === "funnels" && period.steps) parameters.steps = period.steps;
        if (v.report === "funnels" && period.window) parameters.window = period.window;
        return api("POST", base + "/export", { report: v.report, format: v.format, parameters: parameters }).then(function (job) {
          follow(job);
          listExports();
        });
      });
      function exportLine(job) {
        if (job.status === "succeeded" && job.links.download) return h("a", { href: job.links.download, class: "download" }, "Download " + (job.fileName || job.report + "." + job.format));
        if (job.status === "failed") return "Failed: " + (job.error || "the export could not be written.");
        if (job.status === "expired") return "Expired (files are kept 7 days).";
        return job.status === "queued" ? "Waiting…" : "Writing… " + Math.round(job.progress * 100) + " %";
      }
      // An export is a job: its progress is polled until it is written (or failed), then its file is a link.
      function follow(job) {
        jobBox.textContent = "";
        var label = job.report + " (" + job.format.toUpperCase() + ")";
        append(jobBox, h("div", { class: "job" },
          h("label", { for: "export-progress" }, "Export of " + label),
          h("progress", { id: "export-progress", max: "1", value: String(job.progress || 0) }),
          h("p", { class: "job-status" }, exportLine(job))));
        if (job.status === "queued" || job.status === "running") {
          var at = location.hash;
          setTimeout(function () {
            if (location.hash !== at) return;
            api("GET", job.links.self).then(follow, function (e) { if (e !== STALE) flash(e.message, "error"); });
          }, 1000);
        } else listExports();
      }
      function listExports() {
        return api("GET", base + "/exports?limit=10").then(function (page) {
          exportsBox.textContent = "";
          append(exportsBox, table(["Asked for", "Report", "Period", "Format", "File"], page.items.map(function (x) {
            return [when(x.createdAt), x.report, (x.parameters.from || "") + " to " + (x.parameters.to || ""), x.format.toUpperCase(), exportLine(x)];
          })));
        }, function (e) { if (e !== STALE) flash(e.message, "error"); });
      }

      // Scheduled reports: emailed on their schedule in the site's time zone; the list says when each goes next and
      // how the last sending went, and "Send now" sends the last complete period at once (a test of the addresses).
      var scheduled = base + "/scheduled-reports";
      var schedulesBox = h("div", { "aria-live": "polite" });
      var historyBox = h("div", { "aria-live": "polite" });
      // A report's sendings, newest first: each period, its status and attempts, and why a failed one failed.
      function showHistory(r) {
        return api("GET", scheduled + "/" + r.id + "/deliveries?limit=20").then(function (page) {
          historyBox.textContent = "";
          append(historyBox, h("section", { "aria-labelledby": "history-title" }, h("h3", { id: "history-title" }, "Sendings of “" + r.name + "”"),
            table(["Asked for", "How", "Period", "Status", "Attempts", "Recipients", "Details"], page.items.map(function (x) {
              var details = x.error || "";
              if (x.status === "retrying" && x.nextAttemptAt) details += (details ? "; " : "") + "next attempt " + when(x.nextAttemptAt);
              if (x.status === "sent" && x.sentAt) details = "sent " + when(x.sentAt);
              return [when(x.scheduledFor), x.trigger === "manual" ? "Send now" : "on schedule", x.periodFrom + " to " + x.periodTo, x.status,
                String(x.attempts), String(x.recipients), details];
            }))));
          return page.items;
        });
      }
      // After "Send now": the history is read again every second until the sending has an outcome (sent, failed, or
      // retrying at a given time), then the list, whose "Last sent" it changed.
      function followSending(r, tries) {
        return showHistory(r).then(function (items) {
          var pending = items.length && (items[0].status === "queued" || items[0].status === "sending");
          if (!pending || tries === 0) return listSchedules();
          var at = location.hash;
          setTimeout(function () { if (location.hash === at) guarded(followSending(r, tries - 1)); }, 1000);
        });
      }
      var scheduleForm = submit(h("form", { "aria-label": "New scheduled report" },
        field("Title", "schedule-name", "text", { maxlength: "100" }),
        field("Send", "schedule-report", "select", { options: [["summary", "Summary"], ["ab-tests", "A/B tests"], ["funnels", "Funnel"], ["cohorts", "Cohorts"], ["attribution", "Attribution"]] }),
        field("As", "schedule-format", "select", { options: [["pdf", "PDF"], ["csv", "CSV"]] }),
        field("Every", "schedule-frequency", "select", { options: [["weekly", "week, on Mondays"], ["daily", "day"], ["monthly", "month, on the 1st"]] }),
        field("At hour (0–23, " + site.timezone + ")", "schedule-hour", "number", { min: "0", max: "23", value: "8" }),
        field("Recipients (email addresses, separated by commas)", "schedule-recipients", "text"),
        h("button", { type: "submit" }, "Schedule")), function (v) {
        var body = {
          name: v["schedule-name"], report: v["schedule-report"], format: v["schedule-format"], frequency: v["schedule-frequency"],
          recipients: v["schedule-recipients"].split(/[,;\s]+/).filter(Boolean)
        };
        if (v["schedule-hour"] !== "") body.hour = Number(v["schedule-hour"]);
        return api("POST", scheduled, body).then(function (r) {
          scheduleForm.reset();
          flash("Scheduled: “" + r.name + "” goes out next on " + when(r.nextRunAt) + ".", "info");
          return listSchedules();
        });
      });
      var WEEKDAYS = ["", "Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"];
      function scheduleText(r) {
        var at = (r.hour < 10 ? "0" : "") + r.hour + ":00";
        if (r.frequency === "daily") return "Daily at " + at;
        if (r.frequency === "weekly") return "Weekly, " + WEEKDAYS[r.weekday] + " at " + at;
        return "Monthly, on day " + r.monthDay + " at " + at;
      }
      function listSchedules() {
        return api("GET", scheduled).then(function (page) {
          schedulesBox.textContent = "";
          var headers = ["Title", "Report", "Schedule", "Recipients", "Next", "Last sent", "Actions"];
          append(schedulesBox, table(headers, page.items.map(function (r) {
            var cells = [r.name, r.report + " (" + r.format.toUpperCase() + ")", scheduleText(r), r.recipients.join(", "),
              r.enabled ? when(r.nextRunAt) : "paused", r.lastRunAt ? when(r.lastRunAt) + " · " + (r.lastStatus || "") : "not yet"];
            var history = h("button", { type: "button", class: "secondary", "aria-label": "History of “" + r.name + "”", onclick: function () {
              guarded(showHistory(r));
            } }, "History");
            return cells.concat([!canEdit ? history : h("div", { class: "row" }, history,
                h("button", { type: "button", class: "secondary", "aria-label": "Send “" + r.name + "” now", onclick: function () {
                  guarded(api("POST", scheduled + "/" + r.id + "/send").then(function () {
                    flash("Sending “" + r.name + "” for its last complete period.", "info");
                    return followSending(r, 30);
                  }));
                } }, "Send now"),
                h("button", { type: "button", class: "secondary", "aria-label": (r.enabled ? "Pause “" : "Resume “") + r.name + "”", onclick: function () {
                  guarded(api("PATCH", scheduled + "/" + r.id, { enabled: !r.enabled }).then(function (x) {
                    flash(x.enabled ? "Resumed: “" + x.name + "” goes out next on " + when(x.nextRunAt) + "." : "Paused: “" + x.name + "” is not sent until resumed.", "info");
                    return listSchedules();
                  }));
                } }, r.enabled ? "Pause" : "Resume"),
                h("button", { type: "button", class: "danger", "aria-label": "Delete “" + r.name + "”", onclick: function () {
                  if (!window.confirm("Stop sending “" + r.name + "”?")) return;
                  guarded(api("DELETE", scheduled + "/" + r.id).then(function () { historyBox.textContent = ""; flash("Deleted.", "info"); return listSchedules(); }));
                } }, "Delete"))]);
          })));
        }, function (e) { if (e !== STALE) flash(e.message, "error"); });
      }

      show("Analytics · " + site.name, h("p", null, h("a", { href: "#/sites/" + siteId }, "Back to " + site.name)), h("h1", null, "Analytics"),
        h("p", { class: "muted" }, site.name + " · days in " + site.timezone + "; without dates, the last 30 days."),
        rangeForm, reports,
        h("h2", null, "Exports"), exportForm, jobBox, h("h3", null, "Recent exports"), exportsBox,
        h("h2", null, "Scheduled reports"),
        h("p", { class: "hint" }, "Emailed on their schedule, each with the period just ended: the day before, the seven days before, or the month before."),
        canEdit ? scheduleForm : null, h("h3", null, "Scheduled"), schedulesBox, historyBox);
      listExports();
      listSchedules();
      return load();
    });
  }

  function summarySection(a) {
    var t = a.totals || {};
    var rows = [];
    (a.notifications || []).forEach(function (n) {
      function row(name, variant, m) {
        return [name, variant, String(m.impressions), String(m.clicks), String(m.conversions), pct(m.clickThroughRate), pct(m.conversionRate)];
      }
      rows.push(row(n.name || "(deleted notification)", n.variants.length ? "all" : "–", n.metrics));
      n.variants.forEach(function (v) { rows.push(row("", v.name || "(removed variant)", v.metrics)); });
    });
    return h("section", { "aria-labelledby": "summary-title" }, h("h2", { id: "summary-title" }, "Summary, " + a.from + " to " + a.to),
      table(["Impressions", "Clicks", "Conversions", "Unique visitors", "Click-through", "Conversion"],
        [[String(t.impressions), String(t.clicks), String(t.conversions), String(t.uniqueVisitors), pct(t.clickThroughRate), pct(t.conversionRate)]]),
      chart(a.series || [], a.from + " to " + a.to),
      h("h3", null, "By notification and variant"),
      table(["Notification", "Variant", "Impressions", "Clicks", "Conversions", "Click-through", "Conversion"], rows));
  }

  // A/B tests: each variant against the control (the first), with the verdict as the API words it. A winner is
  // named only when one is declared; a sample-ratio mismatch is a warning that no result can be trusted.
  function abSection(report, summary) {
    var level = Math.round((report.confidenceLevel || 0.95) * 100) + " %";
    var names = {};
    (summary.notifications || []).forEach(function (n) { n.variants.forEach(function (v) { names[v.variantId] = v.name; }); });
    return h("section", { "aria-labelledby": "ab-title" }, h("h2", { id: "ab-title" }, "A/B tests"),
      h("p", { class: "hint" }, "Each variant against the control (the first); a verdict needs at least " + report.minimumExposuresPerVariant + " exposures and " +
        report.minimumConversionsPerVariant + " conversions per variant. Intervals at " + level + " confidence."),
      report.tests.length ? report.tests.map(function (test) {
        var winner = test.verdict === "winner" ? test.variants.filter(function (v) { return v.variantId === test.winner; })[0] : null;
        var srm = test.sampleRatioMismatch;
        return h("div", { class: "ab-test" },
          h("h3", null, test.name || "(deleted notification)"),
          h("p", { class: "verdict verdict-" + test.verdict }, h("strong", null, {
            not_enough_data: "Not enough data yet. ", sample_ratio_mismatch: "Sample ratio mismatch. ", no_significant_difference: "No significant difference. ", winner: "Winner: " + (winner ? (winner.name || "a variant") + ". " : "")
          }[test.verdict] || ""), test.message),
          srm && srm.flagged ? h("p", { class: "secret", role: "note" }, "The exposures do not match the variants' weights (χ² = " + srm.chiSquared.toFixed(1) + ", p " + (srm.pValue < 0.001 ? "< 0.001" : "= " + srm.pValue.toFixed(3)) + "): visitors are not being split as set, so no result can be trusted.") : null,
          table(["Variant", "Weight", "Exposures", "Conversions", "Rate", "Lift (" + level + " interval)", "p-value"], test.variants.map(function (v) {
            var lift = v.control ? "control" : v.lift === null ? "–" : signedPct(v.lift) + (v.liftInterval ? " (" + signedPct(v.liftInterval[0]) + " to " + signedPct(v.liftInterval[1]) + ")" : "");
            return [(v.name || names[v.variantId] || "(removed variant)") + (v.control ? " (control)" : "") + (test.verdict === "winner" && v.variantId === test.winner ? " ★ winner" : ""),
              v.weight === null ? "–" : String(v.weight), String(v.exposures), String(v.conversions), pct(v.conversionRate, 2), lift, v.control ? "–" : pValue(v.pValue) + (v.significant ? " (significant)" : "")];
          })));
      }) : h("p", { class: "muted" }, "No A/B test in this period: add variants to a notification to start one."));
  }

  // The funnel: each step's visitors, drop-off and conversion, as a table and as bars.
  function funnelSection(f) {
    var width = 640, row = 34, left = 130, height = f.steps.length * row + 10;
    var first = Math.max(1, f.steps.length ? f.steps[0].visitors : 1);
    var bars = f.steps.map(function (st, i) {
      var w = Math.max(f.steps[i].visitors ? 2 : 0, (width - left - 80) * st.visitors / first);
      return s("g", null,
        s("text", { x: 4, y: i * row + 26, class: "label step-label" }, st.name),
        s("rect", { x: left, y: i * row + 10, width: w.toFixed(1), height: 22, class: "bar-funnel" }, s("title", null, st.name + ": " + st.visitors + " visitors")),
        s("text", { x: (left + w + 6).toFixed(1), y: i * row + 26, class: "label" }, st.visitors + " (" + pct(st.conversionFromFirst, 0) + ")"));
    });
    var desc = f.steps.map(function (st) { return st.name + " " + st.visitors; }).join(", ");
    return h("section", { "aria-labelledby": "funnel-title" }, h("h2", { id: "funnel-title" }, "Funnel"),
      h("p", { class: "hint" }, "Visitors who went through each step in order, within " + f.windowMinutes + " minutes of the first, " + f.from + " to " + f.to + "."),
      h("figure", { class: "chart" },
        s("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "funnel-svg-title funnel-svg-desc", width: "100%" },
          s("title", { id: "funnel-svg-title" }, "Funnel: visitors at each step"),
          s("desc", { id: "funnel-svg-desc" }, "Visitors per step: " + desc + "."),
          bars),
        h("figcaption", null, "Visitors at each step, and their share of the first step")),
      table(["Step", "Visitors", "Drop-off", "From the previous step", "From the first step"], f.steps.map(function (st) {
        return [st.name, String(st.visitors), String(st.dropOff), pct(st.conversionFromPrevious), pct(st.conversionFromFirst)];
      })));
  }

  function credited(x) { return Number.isInteger(x) ? String(x) : x.toFixed(2); }
  function amount(x) { return x.toFixed(2); }

  // Cohorts: visitors by the week they first saw a notification, and their conversions in each week after.
  function cohortSection(c) {
    var width = c.cohorts.reduce(function (m, k) { return Math.max(m, k.weeks.reduce(function (n, w) { return Math.max(n, w.index + 1); }, 1)); }, 1);
    var weeks = [];
    for (var i = 0; i < width; i++) weeks.push(i === 0 ? "Week 0 (first)" : "Week " + i);
    return h("section", { "aria-labelledby": "cohorts-title" }, h("h2", { id: "cohorts-title" }, "Cohorts"),
      h("p", { class: "hint" }, "Visitors grouped by the week (from Monday) they first saw a notification, with their conversions in that week and each week after, " + c.from + " to " + c.to + "."),
      table(["First seen, week of", "New visitors"].concat(weeks), c.cohorts.map(function (k) {
        var byIndex = {};
        k.weeks.forEach(function (w) { byIndex[w.index] = w; });
        return [k.week, String(k.newVisitors)].concat(weeks.map(function (_, i) {
          var w = byIndex[i];
          return w ? w.conversions + " (" + pct(w.conversionsPerVisitor) + ")" : "–";
        }));
      })));
  }

  // Attribution: the period's conversions, and each notification's credit under the four models.
  var MODELS = [["first_touch", "First touch"], ["last_touch", "Last touch"], ["linear", "Linear"], ["time_decay", "Time decay"]];
  function attributionSection(a) {
    var byNotification = {}, order = [];
    a.models.forEach(function (m) {
      m.notifications.forEach(function (n) {
        if (!byNotification[n.notificationId]) { byNotification[n.notificationId] = { name: n.name || "(deleted notification)", credit: {} }; order.push(n.notificationId); }
        byNotification[n.notificationId].credit[m.model] = n;
      });
    });
    var t = a.conversions;
    return h("section", { "aria-labelledby": "attribution-title" }, h("h2", { id: "attribution-title" }, "Attribution"),
      h("p", { class: "hint" }, "Conversions credited to the notifications a visitor saw, hovered or clicked within " + a.windowDays + " days before converting (once per visitor per window; time decay halves every " + a.halfLifeDays + " days), " + a.from + " to " + a.to + "."),
      table(["Conversions", "Attributed", "Unattributed", "Repeat within the window", "Attributed value"],
        [[String(t.total), String(t.attributed), String(t.unattributed), String(t.repeatWithinWindow), amount(t.attributedValue)]]),
      table(["Notification"].concat(MODELS.map(function (m) { return m[1] + ": conversions (value)"; })), order.map(function (id) {
        var n = byNotification[id];
        return [n.name].concat(MODELS.map(function (m) {
          var c = n.credit[m[0]];
          return c ? credited(c.conversions) + " (" + amount(c.value) + ")" : "–";
        }));
      })));
  }

  // --- integrations and outbound webhooks ----------------------------------------------------------------------
  function siteRole(site) { return api("GET", "/organizations/" + site.organizationId).then(function (o) { return o.role; }); }
  function errorsInWords(e) { flash(e.message, "error"); }

  function integrationsPage(siteId) {
    return api("GET", "/sites/" + siteId).then(function (site) {
      return Promise.all([siteRole(site), api("GET", "/sites/" + siteId + "/integrations"), api("GET", "/sites/" + siteId + "/webhooks")])
        .then(function (r) { return [site, r[0], r[1].items, r[2].items]; });
    }).then(function (r) {
      var site = r[0], canEdit = r[1] !== "viewer", integrations = r[2], endpoints = r[3];
      var secretBox = h("div", { "aria-live": "polite" });
      var once = sessionStorage.getItem("herald-once-" + siteId);
      sessionStorage.removeItem("herald-once-" + siteId);
      if (once) { once = JSON.parse(once); append(secretBox, h("div", { class: "secret" }, h("p", null, once.label), h("pre", null, once.value), copyButton(once.value, "Copy"))); }
      function keepOnce(label, value) { if (value) sessionStorage.setItem("herald-once-" + siteId, JSON.stringify({ label: label, value: value })); }

      function deliveries(path, render, headers) {
        var box = h("div", { "aria-live": "polite" });
        var button = h("button", { type: "button", class: "secondary", "aria-expanded": "false", onclick: function () {
          if (button.getAttribute("aria-expanded") === "true") { box.textContent = ""; button.setAttribute("aria-expanded", "false"); return; }
          button.setAttribute("aria-expanded", "true");
          api("GET", path + "?limit=20").then(function (page) { box.textContent = ""; append(box, table(headers, page.items.map(render))); }, errorsInWords);
        } }, "Deliveries");
        return [button, box];
      }
      var typeSelect = field("Source", "type", "select", { options: [["shopify", "Shopify"], ["woocommerce", "WooCommerce"], ["zapier", "Zapier"], ["webhook", "Signed webhook (any system)"]] });
      var extra = h("div", { class: "stack" });
      function typeFields() {
        extra.textContent = "";
        var t = typeSelect.querySelector("select").value;
        if (t === "shopify") append(extra, [field("Store domain", "shopDomain", "text", { placeholder: "acme.myshopify.com", required: true }),
          field("Webhook signing secret (the app's API secret key)", "webhookSecret", "password", { required: true, minlength: "8", autocomplete: "new-password" })]);
        if (t === "woocommerce") append(extra, [field("Store address", "storeUrl", "url", { placeholder: "https://shop.example.com", required: true }),
          field("Webhook secret (as set on the WooCommerce webhook)", "webhookSecret", "password", { required: true, minlength: "8", autocomplete: "new-password" })]);
        if (t === "zapier") append(extra, h("p", { class: "hint" }, "Zaps use the site's secret key with Herald's Zapier app; nothing else to set."));
        if (t === "webhook") append(extra, [field("Activity type", "activityType", "text", { value: "purchase", required: true }),
          h("label", { for: "f-mapping" }, "Mapping (JSON: activity field → JSON Pointer)",
            h("textarea", { id: "f-mapping", name: "mapping", rows: "3", spellcheck: "false", required: true }, '{"firstName": "/customer/first_name", "productName": "/product/name"}'))]);
      }
      typeSelect.querySelector("select").addEventListener("change", typeFields);
      typeFields();

      show("Integrations · " + site.name, h("p", null, h("a", { href: "#/sites/" + siteId }, "Back to " + site.name)), h("h1", null, "Integrations and webhooks"),
        secretBox,
        h("h2", null, "Sources of activity"),
        table(["Name", "Type", "Status", "Receives at", ""], integrations.map(function (i) {
          var d = deliveries("/sites/" + siteId + "/integrations/" + i.id + "/deliveries", function (x) {
            return [when(x.receivedAt), x.topic || "", x.status + (x.reason ? ": " + x.reason : ""), x.signatureVerified ? "signed" : "unsigned"];
          }, ["Received", "Topic", "Status", "Signature"]);
          return [i.name, i.type + (i.config.shopDomain ? " · " + i.config.shopDomain : i.config.storeUrl ? " · " + i.config.storeUrl : ""), i.status + (i.health && i.health.circuit === "open" ? " (store failing: " + (i.health.lastError || "") + ")" : ""),
            i.webhookUrl ? h("code", null, i.webhookUrl) : "Zapier",
            h("div", { class: "row" }, d[0],
              canEdit && i.type === "shopify" ? h("button", { type: "button", class: "secondary", onclick: function () {
                guarded(api("POST", "/sites/" + siteId + "/integrations/" + i.id + "/shopify/authorize").then(function (a) { location.href = a.authorizeUrl; }));
              } }, i.credentials && i.credentials.accessToken ? "Reconnect Shopify" : "Connect Shopify") : null,
              canEdit ? h("button", { type: "button", class: "secondary", onclick: function () {
                guarded(api("PATCH", "/sites/" + siteId + "/integrations/" + i.id, { status: i.status === "active" ? "disabled" : "active" }).then(route));
              } }, i.status === "active" ? "Disable" : "Enable") : null,
              canEdit ? h("button", { type: "button", class: "danger", onclick: function () {
                if (window.confirm("Delete the integration " + i.name + "? Its webhook address stops working.")) guarded(api("DELETE", "/sites/" + siteId + "/integrations/" + i.id).then(route));
              } }, "Delete") : null), d[1]];
        })),
        canEdit ? [h("h2", null, "Connect a source"), submit(h("form", { "aria-label": "Connect a source" }, field("Name (optional)", "name", "text", { maxlength: "100" }), typeSelect, extra,
          h("button", { type: "submit" }, "Connect")), function (v) {
          var body = { type: v.type, name: v.name || null };
          if (v.type === "shopify") body.config = { shopDomain: v.shopDomain, webhookSecret: v.webhookSecret };
          if (v.type === "woocommerce") body.config = { storeUrl: v.storeUrl, webhookSecret: v.webhookSecret };
          if (v.type === "webhook") {
            var mapping;
            try { mapping = JSON.parse(v.mapping); } catch (e) { throw new Error("The mapping is not valid JSON: " + e.message); }
            body.config = { mapping: mapping, activityType: v.activityType || null };
          }
          return api("POST", "/sites/" + siteId + "/integrations", body).then(function (i) {
            keepOnce("Signing secret of " + i.name + " (shown once: give it to the sender):", i.webhookSecret);
            route(); flash("Connected " + i.name + (i.webhookUrl ? ": point the source's webhooks at " + i.webhookUrl : "") + ".", "info");
          });
        })] : null,
        h("h2", null, "Outbound webhooks"),
        h("p", { class: "hint" }, "Herald POSTs the site's events to these addresses, signed per Standard Webhooks."),
        table(["Address", "Events", "Status", ""], endpoints.map(function (ep) {
          var base = "/sites/" + siteId + "/webhooks/" + ep.id;
          var d = deliveries(base + "/deliveries", function (m) {
            return [when(m.createdAt), m.eventType, m.status + (m.lastStatus ? " (HTTP " + m.lastStatus + ")" : "") + (m.lastError ? ": " + m.lastError : ""), String(m.attempts),
              canEdit && m.status !== "pending" ? h("button", { type: "button", class: "secondary", onclick: function () {
                guarded(api("POST", base + "/deliveries/" + m.id + "/resend").then(function () { flash("Sent again.", "info"); }));
              } }, "Resend") : ""];
          }, ["Created", "Event", "Status", "Attempts", ""]);
          return [h("code", null, ep.url), ep.eventTypes.join(", "), ep.status + (ep.disabledReason ? ": " + ep.disabledReason : ""),
            h("div", { class: "row" }, d[0],
              canEdit ? h("button", { type: "button", class: "secondary", onclick: function () {
                guarded(api("POST", base + "/rotate-secret").then(function (x) { keepOnce("New signing secret for " + ep.url + " (shown once):", x.secret); route(); }));
              } }, "Rotate secret") : null,
              canEdit ? h("button", { type: "button", class: "danger", onclick: function () {
                if (window.confirm("Delete the endpoint " + ep.url + "?")) guarded(api("DELETE", base).then(route));
              } }, "Delete") : null), d[1]];
        })),
        canEdit ? [h("h2", null, "Add an endpoint"), submit(h("form", { "aria-label": "Add an endpoint" },
          field("Address", "url", "url", { required: true, placeholder: "https://hooks.example.com/herald" }),
          h("fieldset", null, h("legend", null, "Events"), ["activity.captured", "notification.published", "notification.paused", "webhook_endpoint.disabled", "usage.threshold", "subscription.changed"].map(function (t) {
            return h("label", { class: "check", for: "ev-" + t }, h("input", { type: "checkbox", id: "ev-" + t, class: "event-type", value: t, checked: t === "activity.captured" }), " " + t);
          })),
          field("Description (optional)", "description", "text", { maxlength: "200" }),
          h("button", { type: "submit" }, "Add endpoint")), function (v) {
          var types = Array.prototype.filter.call(document.querySelectorAll("input.event-type"), function (x) { return x.checked; }).map(function (x) { return x.value; });
          return api("POST", "/sites/" + siteId + "/webhooks", { url: v.url, eventTypes: types, description: v.description || null }).then(function (ep) {
            keepOnce("Signing secret for " + ep.url + " (shown once):", ep.secret); route();
          });
        })] : null);
    });
  }


  // --- billing and single sign-on (admins) ---------------------------------------------------------------------
  function money(minor, currency) {
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(minor / 100); }
    catch (e) { return (minor / 100).toFixed(2) + " " + currency.toUpperCase(); }
  }
  var METRICS = { impressions: "Impressions this period", activeCampaigns: "Published notifications", sites: "Sites", storageBytes: "Storage (bytes)" };

  // Billing is the organization's, read through any of its sites (the API is per site).
  function billingPage(orgId) {
    return Promise.all([api("GET", "/organizations/" + orgId), api("GET", "/organizations/" + orgId + "/sites"), api("GET", "/billing/plans")]).then(function (r) {
      var org = r[0], sites = r[1].items, plans = r[2].items || [];
      var back = h("p", null, h("a", { href: "#/orgs/" + orgId }, "Back to " + org.name));
      if (!sites.length) { show("Billing", back, h("h1", null, "Billing"), h("p", null, "Billing starts with the first site: create one first.")); return; }
      var via = "/sites/" + sites[0].id;
      return Promise.all([api("GET", via + "/subscription"), api("GET", via + "/usage"), api("GET", via + "/invoices")]).then(function (b) {
        var sub = b[0], usage = b[1], invoices = b[2].items;
        show("Billing", back, h("h1", null, "Billing · " + org.name),
          h("h2", null, "Plan"),
          h("p", null, sub.plan.name + " (" + (sub.interval === "year" ? "yearly" : "monthly") + ") · " + sub.status.replace("_", " ") +
            (sub.trialEndsAt ? " · the trial ends " + when(sub.trialEndsAt) : "") + " · this period ends " + when(sub.currentPeriodEnd)),
          sub.pendingPlan ? h("p", null, "Changes to " + sub.pendingPlan.name + " at the end of the period.") : null,
          usage.delivery && usage.delivery.paused ? h("p", { class: "secret" }, usage.delivery.reason === "quota"
            ? "Popups are paused: impressions reached the plan's hard limit. Upgrade, or wait for the next period."
            : "Popups are paused: an invoice is unpaid past its grace period. Pay it to resume.") : null,
          h("h2", null, "Usage"),
          table(["Metric", "Used", "Quota", "Share"], usage.metrics.map(function (m) {
            var pct = m.percent === null ? null : m.percent;
            return [METRICS[m.metric] || m.metric, String(m.usage), m.quota === null ? "unlimited" : String(m.quota),
              pct === null ? "–" : h("span", null, h("meter", { min: "0", max: "100", value: String(Math.min(pct, 100)), "aria-label": (METRICS[m.metric] || m.metric) + " used" }), " " + pct + " %")];
          })),
          h("h2", null, "Change plan"),
          submit(h("form", { "aria-label": "Change plan" },
            field("Plan", "plan", "select", { options: plans.map(function (p) { return [p.id, p.name + " · " + money(p.monthlyPrice, p.currency) + "/month"]; }) }),
            field("Billed", "interval", "select", { options: [["month", "monthly"], ["year", "yearly"]] }),
            h("button", { type: "submit" }, "Change plan")), function (v) {
            return api("POST", via + "/subscription", { plan: v.plan, interval: v.interval }).then(function (x) {
              flash(x.effective === "period_end" ? "The change applies at the end of the period." : "Plan changed.", "info"); route();
            });
          }),
          h("h2", null, "Invoices"),
          table(["Date", "Number", "Status", "Amount", ""], invoices.map(function (i) {
            return [when(i.createdAt), i.number || "", i.status, money(i.amountDue, i.currency), i.hostedUrl ? h("a", { href: i.hostedUrl, rel: "noopener" }, "View") : ""];
          })));
        var planSelect = main.querySelector("select[name=plan]");
        if (planSelect) planSelect.value = sub.plan.id;
        var intervalSelect = main.querySelector("select[name=interval]");
        if (intervalSelect) intervalSelect.value = sub.interval;
      });
    });
  }

  function ssoPage(orgId) {
    return Promise.all([api("GET", "/organizations/" + orgId),
      api("GET", "/organizations/" + orgId + "/sso").catch(function (e) { if (e.status === 404) return null; throw e; })]).then(function (r) {
      var org = r[0], sso = r[1];
      var form = submit(h("form", { "aria-label": "Single sign-on" },
        field("Issuer (the provider's address)", "issuer", "url", { required: true, placeholder: "https://login.example.com", value: sso ? sso.issuer : null }),
        field("Client id", "clientId", "text", { required: true, value: sso ? sso.clientId : null }),
        field(sso && sso.clientSecretSet ? "Client secret (stored; leave empty to keep it)" : "Client secret (empty for a public client)", "clientSecret", "password", { autocomplete: "new-password" }),
        field("Role of a new member", "defaultRole", "select", { options: [["member", "Member"], ["viewer", "Viewer"], ["admin", "Admin"]] }),
        h("label", { class: "check", for: "f-enabled" }, h("input", { type: "checkbox", id: "f-enabled", name: "enabled", value: "yes", checked: !sso || sso.enabled }), " Enabled"),
        h("button", { type: "submit" }, sso ? "Save" : "Set up single sign-on")), function (v) {
        var body = { issuer: v.issuer, clientId: v.clientId, defaultRole: v.defaultRole, enabled: v.enabled === "yes" };
        if (v.clientSecret) body.clientSecret = v.clientSecret;
        return api("PUT", "/organizations/" + orgId + "/sso", body).then(function () { flash("Saved. Register the redirect address at the provider.", "info"); route(); });
      });
      show("Single sign-on", h("p", null, h("a", { href: "#/orgs/" + orgId }, "Back to " + org.name)), h("h1", null, "Single sign-on · " + org.name),
        h("p", null, "Members sign in through your OpenID Connect provider (docs/SSO-SCIM.md)."),
        sso ? table(["Redirect address to register", "Sign-in address", "Linked identities"], [[h("code", null, sso.redirectUri), h("code", null, sso.signInUrl), String(sso.linkedIdentities)]]) : null,
        form,
        sso ? h("button", { type: "button", class: "danger", onclick: function () {
          if (!window.confirm("Turn single sign-on off? Linked identities are forgotten; members keep their accounts.")) return;
          guarded(api("DELETE", "/organizations/" + orgId + "/sso").then(function () { flash("Single sign-on is off.", "info"); route(); }));
        } }, "Turn off single sign-on") : null);
      if (sso) form.querySelector("select[name=defaultRole]").value = sso.defaultRole;
    });
  }

  // --- notification editor -----------------------------------------------------------------------------------
  // Every input carries the API's name for it (data-field), so a problem's `errors[].field` lands next to it.
  var TYPES = { recent_activity: "Recent activity", counter: "Counter", live_visitors: "Live visitors", announcement: "Announcement" };
  var uid = 0, previewListener = null;
  function input(label, fieldName, attrs, hint) {
    var id = "e" + (++uid);
    var tag = attrs && attrs.tag || "input";
    var a = Object.assign({ id: id, "data-field": fieldName }, attrs || {});
    delete a.tag; delete a.options;
    if (hint) a["aria-describedby"] = id + "-hint";
    var control = h(tag, a, (attrs && attrs.options || []).map(function (o) {
      return h("option", { value: o[0], selected: String(attrs.value) === o[0] }, o[1]);
    }));
    if (tag === "textarea") control.value = attrs.value || "";
    if (attrs && attrs.type === "checkbox") {
      control.checked = !!attrs.checked;
      return h("label", { for: id, class: "check" }, control, " " + label);
    }
    return h("label", { for: id }, label, control, hint ? h("span", { id: id + "-hint", class: "hint" }, hint) : null);
  }
  function numberOrNull(v) { return v === "" || v === null || v === undefined ? null : Number(v); }

  // Simple rules: all (or any) of url/path/referrer conditions; anything else is edited as JSON.
  var RULE_FIELDS = [["path", "Page path"], ["url", "Full URL"], ["referrer", "Referrer"]];
  var RULE_OPS = [["contains", "contains"], ["equals", "equals"], ["startsWith", "starts with"], ["glob", "matches (glob)"]];
  function simpleRules(rules) {
    if (!rules) return { mode: "all", list: [] };
    var mode = rules.all ? "all" : rules.any ? "any" : null;
    var list = mode ? rules[mode] : [rules];
    var ok = list.every(function (c) {
      return c && typeof c.value === "string" && RULE_FIELDS.some(function (f) { return f[0] === c.field; }) && RULE_OPS.some(function (o) { return o[0] === c.op; }) && !c.caseSensitive;
    });
    return ok ? { mode: mode || "all", list: list } : null;
  }

  function editorPage(siteId, id) {
    var base = "/sites/" + siteId + "/notifications/" + id;
    return Promise.all([api("GET", "/sites/" + siteId), api("GET", base), api("GET", "/sites/" + siteId + "/templates")]).then(function (r) {
      return api("GET", "/organizations/" + r[0].organizationId).then(function (org) { return [r[0], r[1], org, r[2].items]; });
    }).then(function (r) {
      var site = r[0], n = r[1], org = r[2];
      var saved = r[3].filter(function (t) { return !t.builtIn && t.type === n.type; });
      var canEdit = org.role !== "viewer";
      var st = n.settings, c = n.content || {}, colors = st.colors || {};
      var simple = simpleRules(n.rules);
      var ruleRows = h("div", { class: "rules" });
      var variantRows = h("div", { class: "variants" });
      var jsonBox = input("Rules as JSON (advanced: all, any and not over conditions on the path, URL, referrer, query parameters, device, country, new or returning visitor and schedule; empty for every page view)", "rules",
        { tag: "textarea", rows: "6", value: n.rules && !simple ? JSON.stringify(n.rules, null, 2) : "", spellcheck: "false" });
      var advanced = input("Edit the rules as JSON", "", { type: "checkbox", checked: !simple });
      var modeSelect = input("Show when", "rules.mode", { tag: "select", value: simple ? simple.mode : "all",
        options: [["all", "all of these conditions hold"], ["any", "any of these conditions holds"]] });

      function ruleRow(cond) {
        var row = h("div", { class: "rule row" },
          input("Field", "", { tag: "select", class: "rule-field", value: cond.field || "path", options: RULE_FIELDS }),
          input("Condition", "", { tag: "select", class: "rule-op", value: cond.op || "contains", options: RULE_OPS }),
          input("Value", "", { class: "rule-value", value: cond.value || "", maxlength: "2000" }),
          canEdit ? h("button", { type: "button", class: "secondary", onclick: function () { row.remove(); changed(); } }, "Remove condition") : null);
        ruleRows.appendChild(row);
      }
      function variantRow(v) {
        var i = variantRows.children.length;
        var row = h("fieldset", { class: "variant" }, h("legend", null, "Variant"),
          input("Name", "variants[" + i + "].name", { class: "variant-name", value: v.name || "", maxlength: "50" }),
          input("Weight (share of visitors, 1 to 100)", "variants[" + i + "].weight", { class: "variant-weight", type: "number", min: "1", max: "100", value: String(v.weight || 50) }),
          input("Message (empty: the notification's)", "variants[" + i + "].message", { tag: "textarea", class: "variant-message", rows: "2", value: v.message || "", maxlength: "500" }),
          canEdit ? h("button", { type: "button", class: "secondary", onclick: function () { row.remove(); changed(); } }, "Remove variant") : null);
        row.dataset.id = v.id || "";
        variantRows.appendChild(row);
      }
      (simple ? simple.list : []).forEach(ruleRow);
      (n.variants || []).forEach(variantRow);

      var typeFields;
      if (n.type === "recent_activity") typeFields = [
        input("Activity types (comma-separated; empty for all)", "content.activityTypes", { value: (c.activityTypes || []).join(", "), placeholder: "purchase, signup" })];
      else if (n.type === "counter") typeFields = [
        input("Activity type counted", "content.counterActivityType", { value: c.counterActivityType || "purchase" }),
        input("Window (hours)", "content.windowHours", { type: "number", min: "1", max: "720", value: String(c.windowHours || 24) }),
        input("Show from this count", "content.minimumCount", { type: "number", min: "1", max: "1000", value: String(c.minimumCount || 3) }),
        input("Count", "content.scope", { tag: "select", value: c.scope || "site", options: [["site", "every activity of the site"], ["page", "the product on the page"]] })];
      else if (n.type === "live_visitors") typeFields = [
        input("Show from this many visitors", "content.minimumCount", { type: "number", min: "1", max: "1000", value: String(c.minimumCount || 2) })];
      else typeFields = [
        input("Button label (optional)", "content.cta.text", { value: c.cta ? c.cta.text : "", maxlength: "40" }),
        input("Button link", "content.cta.url", { type: "url", value: c.cta ? c.cta.url : "", placeholder: "https://" + site.domain + "/sale" })];

      var devices = ["desktop", "mobile", "tablet"].map(function (d) {
        return input(d.charAt(0).toUpperCase() + d.slice(1), "settings.devices", { type: "checkbox", class: "device", value: d, checked: st.devices.indexOf(d) >= 0 });
      });
      // Saved templates: the message may come from one of the site's templates of this type (its own message, when
      // written, overrides it); the message written here can be saved as a new template.
      var templatePick = input("Saved template", "templateId", { tag: "select", value: n.templateId || "",
        options: [["", "None (the message above, or the default)"]].concat(saved.map(function (t) { return [t.id, t.name]; })) },
        "A template of this site; the message above, when written, is used instead.");
      var templateName = h("input", { id: "template-name", maxlength: "100", autocomplete: "off" });
      var templateSaver = h("div", { class: "row template-saver" },
        h("label", { for: "template-name" }, "Name of a new template", templateName),
        h("button", { type: "button", class: "secondary", onclick: function () {
          var body = form.querySelector('[data-field="message"]').value;
          if (!templateName.value.trim()) { flash("Name the template first."); templateName.focus(); return; }
          if (!body.trim()) { flash("Write the message to save as a template first."); return; }
          guarded(api("POST", "/sites/" + siteId + "/templates", { name: templateName.value.trim(), type: n.type, body: body }).then(function (t) {
            append(templatePick.querySelector("select"), h("option", { value: t.id }, t.name));
            templateName.value = "";
            flash("Template “" + t.name + "” saved: choose it under Saved template in any " + n.type.replace("_", " ") + " notification.", "info");
          }));
        } }, "Save the message as a template"));
      var form = h("form", { class: "editor-form", "aria-label": "Edit notification", novalidate: true },
        h("fieldset", null, h("legend", null, "Message"),
          input("Name", "name", { value: n.name, required: true, maxlength: "100" }),
          input("Message template", "message", { tag: "textarea", rows: "3", value: n.message || "", maxlength: "500", placeholder: n.effectiveTemplate },
            "Empty uses the default shown. Placeholders such as {{firstName}}, {{city}}, {{productName}}, {{count}}, filters such as {{firstName | fallback: \"Someone\"}}; the full list is in /openapi.json (MessageTemplate)."),
          templatePick, canEdit ? templateSaver : null,
          typeFields),
        h("fieldset", null, h("legend", null, "Display"),
          input("Position", "settings.position", { tag: "select", value: st.position, options: [["bottom-left", "Bottom left"], ["bottom-right", "Bottom right"], ["top-left", "Top left"], ["top-right", "Top right"]] }),
          input("Theme", "settings.theme", { tag: "select", value: st.theme, options: [["light", "Light"], ["dark", "Dark"]] }),
          h("div", { class: "grid3" },
            input("First popup after (s)", "settings.firstDelaySeconds", { type: "number", min: "0", max: "600", step: "any", value: String(st.firstDelaySeconds) }),
            input("Each popup stays (s)", "settings.displaySeconds", { type: "number", min: "1", max: "120", step: "any", value: String(st.displaySeconds) }),
            input("Between popups (s)", "settings.gapSeconds", { type: "number", min: "0", max: "600", step: "any", value: String(st.gapSeconds) }),
            input("Most per page view", "settings.maxPerPage", { type: "number", min: "1", max: "50", value: String(st.maxPerPage) }),
            input("Most per session", "settings.maxPerSession", { type: "number", min: "1", max: "500", value: String(st.maxPerSession) }),
            n.type === "recent_activity" ? input("Hide activities older than (days)", "settings.hideOlderThanDays", { type: "number", min: "1", max: "365", value: String(st.hideOlderThanDays) }) : null),
          n.type === "recent_activity" ? input("Order", "settings.order", { tag: "select", value: st.order, options: [["newest", "Newest first"], ["random", "Random"]] }) : null,
          input("Start again after the last one", "settings.loop", { type: "checkbox", checked: st.loop }),
          input("Show when it happened", "settings.showTimeAgo", { type: "checkbox", checked: st.showTimeAgo }),
          input("Show the product image", "settings.showImage", { type: "checkbox", checked: st.showImage }),
          input("Visitors may close it", "settings.closable", { type: "checkbox", checked: st.closable }),
          h("div", { class: "grid3" },
            input("Background colour", "settings.colors.background", { value: colors.background || "", placeholder: "theme (#ffffff)", pattern: "#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?" }),
            input("Text colour", "settings.colors.text", { value: colors.text || "", placeholder: "theme (#1f2937)", pattern: "#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?" }),
            input("Accent colour", "settings.colors.accent", { value: colors.accent || "", placeholder: "theme (#2563eb)", pattern: "#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?" }))),
        h("fieldset", { "data-field": "settings.devices" }, h("legend", null, "Devices"), h("div", { class: "row" }, devices)),
        h("fieldset", null, h("legend", null, "Targeting"),
          h("p", { class: "hint" }, "Without conditions it shows on every page. The preview ignores targeting."),
          h("div", { class: "simple-rules" }, modeSelect, ruleRows,
            canEdit ? h("button", { type: "button", class: "secondary", onclick: function () { ruleRow({}); changed(); } }, "Add a condition") : null),
          advanced, jsonBox),
        h("fieldset", { "data-field": "variants" }, h("legend", null, "A/B test"),
          h("p", { class: "hint" }, "None, or 2 to 5 variants; each visitor always sees the same one."), variantRows,
          canEdit ? h("button", { type: "button", class: "secondary", onclick: function () { variantRow({ weight: 50 }); changed(); } }, "Add a variant") : null),
        canEdit ? h("div", { class: "row" }, h("button", { type: "submit" }, "Save")) : h("p", { class: "muted" }, "Viewers can look but not change."));

      var advancedBox = advanced.querySelector("input");
      function syncMode() {
        form.querySelector(".simple-rules").hidden = advancedBox.checked;
        jsonBox.hidden = !advancedBox.checked;
      }
      advancedBox.addEventListener("change", function () {
        if (advancedBox.checked) { var rules = collectRules(true); jsonBox.querySelector("textarea").value = rules ? JSON.stringify(rules, null, 2) : ""; }
        else if (!simpleRules(collectRules())) { advancedBox.checked = true; flash("These rules are too rich for the simple editor: keep editing them as JSON."); }
        else { ruleRows.textContent = ""; var s2 = simpleRules(collectRules()); modeSelect.querySelector("select").value = s2.mode; s2.list.forEach(ruleRow); }
        syncMode();
      });
      syncMode();
      if (!canEdit) Array.prototype.forEach.call(form.querySelectorAll("input, select, textarea"), function (el) { el.disabled = true; });

      function val(name) { var el = form.querySelector('[data-field="' + name + '"]'); return el ? el.value : undefined; }
      function checked(name) { var el = form.querySelector('[data-field="' + name + '"]'); return el ? el.checked : undefined; }
      function collectRules(fromSimple) {
        if (advancedBox.checked && !fromSimple) {
          var text = jsonBox.querySelector("textarea").value.trim();
          if (!text) return null;
          try { return JSON.parse(text); } catch (e) { var err = new Error("rules is not valid JSON: " + e.message); err.errors = [{ field: "rules", message: "is not valid JSON" }]; throw err; }
        }
        var list = Array.prototype.map.call(ruleRows.children, function (row) {
          return { field: row.querySelector("select.rule-field").value, op: row.querySelector("select.rule-op").value, value: row.querySelector("input.rule-value").value };
        }).filter(function (x) { return x.value !== ""; });
        if (!list.length) return null;
        var out = {}; out[modeSelect.querySelector("select").value] = list; return out;
      }
      function collect() {
        var body = { name: val("name"), message: val("message") === "" ? null : val("message"), templateId: val("templateId") || null, rules: collectRules() };
        var settings = { position: val("settings.position"), theme: val("settings.theme"),
          firstDelaySeconds: numberOrNull(val("settings.firstDelaySeconds")), displaySeconds: numberOrNull(val("settings.displaySeconds")),
          gapSeconds: numberOrNull(val("settings.gapSeconds")), maxPerPage: numberOrNull(val("settings.maxPerPage")),
          maxPerSession: numberOrNull(val("settings.maxPerSession")), loop: checked("settings.loop"), showTimeAgo: checked("settings.showTimeAgo"),
          showImage: checked("settings.showImage"), closable: checked("settings.closable"),
          devices: Array.prototype.filter.call(form.querySelectorAll("input.device"), function (el) { return el.checked; }).map(function (el) { return el.value; }) };
        if (n.type === "recent_activity") { settings.hideOlderThanDays = numberOrNull(val("settings.hideOlderThanDays")); settings.order = val("settings.order"); }
        var col = { background: val("settings.colors.background") || null, text: val("settings.colors.text") || null, accent: val("settings.colors.accent") || null };
        settings.colors = col.background || col.text || col.accent ? col : null;
        body.settings = settings;
        if (n.type === "recent_activity") {
          var types = val("content.activityTypes").split(",").map(function (t) { return t.trim(); }).filter(Boolean);
          body.content = { activityTypes: types.length ? types : null };
        } else if (n.type === "counter") {
          body.content = { counterActivityType: val("content.counterActivityType") || null, windowHours: numberOrNull(val("content.windowHours")),
            minimumCount: numberOrNull(val("content.minimumCount")), scope: val("content.scope") };
        } else if (n.type === "live_visitors") {
          body.content = { minimumCount: numberOrNull(val("content.minimumCount")) };
        } else {
          var text = val("content.cta.text"), url = val("content.cta.url");
          body.content = { cta: text || url ? { text: text, url: url } : null };
        }
        body.variants = Array.prototype.map.call(variantRows.children, function (row) {
          var v = { name: row.querySelector("input.variant-name").value || null, weight: numberOrNull(row.querySelector("input.variant-weight").value),
            message: row.querySelector("textarea.variant-message").value || null };
          if (row.dataset.id) v.id = row.dataset.id;
          return v;
        });
        return body;
      }

      // Field errors: next to the input the API names (or its nearest named parent), else in the alert region.
      function showErrors(errors, message) {
        Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (el) { el.remove(); });
        Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (el) {
          el.removeAttribute("aria-invalid");
          if (el.dataset.hint) el.setAttribute("aria-describedby", el.dataset.hint); else el.removeAttribute("aria-describedby");
        });
        var unplaced = [];
        (errors || []).forEach(function (e) {
          var target = null, best = -1;
          Array.prototype.forEach.call(form.querySelectorAll("[data-field]"), function (el) {
            var f = el.getAttribute("data-field");
            if (f && (e.field === f || e.field.indexOf(f + ".") === 0 || e.field.indexOf(f + "[") === 0) && f.length > best) { target = el; best = f.length; }
          });
          if (!target) { unplaced.push(e.field + " " + e.message); return; }
          var note = h("p", { class: "field-error", id: "err" + (++uid) }, e.field + " " + e.message);
          if (target.tagName === "FIELDSET") target.appendChild(note);
          else {
            if (!target.hasAttribute("aria-invalid")) target.dataset.hint = target.getAttribute("aria-describedby") || "";
            target.setAttribute("aria-invalid", "true");
            target.setAttribute("aria-describedby", ((target.dataset.hint || "") + " " + note.id).trim());
            target.closest("label").appendChild(note);
          }
        });
        if (unplaced.length || message) flash(unplaced.length ? unplaced.join("; ") : message, "error");
      }

      // The live preview: the real widget in a same-origin frame, given the feed the server renders for the
      // form's current values (POST …/preview validates and renders without saving).
      var frame = h("iframe", { title: "Preview of the notification", src: "about:blank", sandbox: "allow-scripts allow-same-origin", class: "preview-frame" });
      var previewStatus = h("p", { role: "status", class: "hint" }, "Loading the preview…");
      var variantPick = h("select", { id: "preview-variant" });
      var variantLabel = h("label", { for: "preview-variant" }, "Variant shown", variantPick);
      var doc = null, timer = 0, seq = 0, frameSeq = 0;
      function refreshVariants() {
        var ids = doc && doc.notifications[0] && doc.notifications[0].variants || [];
        var current = variantPick.value;
        variantPick.textContent = "";
        ids.forEach(function (v, i) { variantPick.appendChild(h("option", { value: String(i), selected: String(i) === current }, "Variant " + String.fromCharCode(65 + i))); });
        variantLabel.hidden = !ids.length;
      }
      function loadFrame() { if (doc) frame.src = "/app/preview?v=" + (++frameSeq); }
      if (previewListener) window.removeEventListener("message", previewListener);
      previewListener = function (event) {
        if (event.origin !== location.origin || event.source !== frame.contentWindow || !event.data || event.data.type !== "herald-preview-ready") return;
        frame.contentWindow.postMessage({ type: "herald-preview", feed: doc, variantIndex: Number(variantPick.value || 0) }, location.origin);
      };
      window.addEventListener("message", previewListener);
      variantPick.addEventListener("change", loadFrame);
      function preview() {
        var body;
        try { body = collect(); } catch (e) { showErrors(e.errors, e.message); previewStatus.textContent = "The preview waits for valid values."; return; }
        var mine = ++seq;
        api("POST", base + "/preview", body).then(function (d) {
          if (mine !== seq) return;
          doc = d; showErrors([]);
          // A problem the last preview reported is gone; a message such as “Saved.” stays.
          if (document.getElementById("flash").className === "error") flash("");
          previewStatus.textContent = "Preview with your unsaved changes. Sample data stands in where the site has none yet; the preview counts no impression.";
          refreshVariants(); loadFrame();
        }, function (e) {
          if (e.status === 401) return guarded(Promise.reject(e));
          showErrors(e.errors, e.message);
          previewStatus.textContent = "The preview waits for valid values.";
        });
      }
      function changed() { clearTimeout(timer); timer = setTimeout(preview, 500); }
      form.addEventListener("input", changed);
      form.addEventListener("change", changed);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        clearTimeout(timer);
        flash("");
        var body;
        try { body = collect(); } catch (e) { showErrors(e.errors, e.message); return; }
        api("PATCH", base, body).then(function (saved) {
          showErrors([]);
          flash("Saved." + (saved.status === "published" ? " Visitors see the change on their next page." : ""), "info");
          n = saved;
          variantRows.textContent = "";
          (saved.variants || []).forEach(variantRow);
          preview();
        }, function (e) { if (e.status === 401) guarded(Promise.reject(e)); else showErrors(e.errors, e.message); });
      });

      var statusText = h("span", { class: "status" }, n.status);
      var actions = canEdit ? h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", id: "toggle-status", onclick: function (event) {
          var next = n.status === "published" ? "pause" : "publish";
          var button = event.currentTarget;
          guarded(api("POST", base + "/" + next).then(function (x) {
            n.status = x.status; statusText.textContent = x.status;
            button.textContent = x.status === "published" ? "Pause" : "Publish";
            flash(x.status === "published" ? "Published: visitors see it on their next page." : "Paused.", "info");
          }));
        } }, n.status === "published" ? "Pause" : "Publish"),
        h("button", { type: "button", class: "danger", onclick: function () {
          if (!window.confirm("Delete “" + n.name + "”? Its statistics stay in the analytics.")) return;
          guarded(api("DELETE", base).then(function () { location.hash = "#/sites/" + siteId; flash("Deleted.", "info"); }));
        } }, "Delete")) : null;

      show(n.name, h("p", null, h("a", { href: "#/sites/" + siteId }, "Back to " + site.name)),
        h("h1", null, n.name), h("p", null, TYPES[n.type] + " · ", statusText), actions,
        h("div", { class: "editor" }, form,
          h("section", { class: "preview", "aria-label": "Preview" }, h("h2", null, "Preview"), variantLabel, frame, previewStatus)));
      refreshVariants();
      preview();
    });
  }

  // --- routing -----------------------------------------------------------------------------------------------
  function route() {
    var path = (location.hash || "#/").slice(1);
    var parts = path.split("/").filter(Boolean);
    if (!me && parts[0] === "invitations" && parts[1]) {
      sessionStorage.setItem("herald-invitation", decodeURIComponent(parts[1]));
      location.hash = "#/login";
      return;
    }
    if (!me && parts[0] !== "signup") { if (parts[0] !== "login") { location.hash = "#/login"; return; } }
    if (parts[0] === "login") return loginPage();
    if (parts[0] === "signup") return signupPage();
    var page;
    if (parts[0] === "invitations") return invitationPage(parts[1] ? decodeURIComponent(parts[1]) : "");
    if (parts[0] === "orgs" && parts[2] === "audit") page = auditPage(parts[1]);
    else if (parts[0] === "orgs" && parts[2] === "billing") page = billingPage(parts[1]);
    else if (parts[0] === "orgs" && parts[2] === "sso") page = ssoPage(parts[1]);
    else if (parts[0] === "orgs" && parts[1]) page = orgPage(parts[1]);
    else if (parts[0] === "sites" && parts[2] === "notifications" && parts[3]) page = editorPage(parts[1], parts[3]);
    else if (parts[0] === "sites" && parts[2] === "integrations") page = integrationsPage(parts[1]);
    else if (parts[0] === "sites" && parts[2] === "analytics") page = analyticsPage(parts[1]);
    else if (parts[0] === "sites" && parts[1]) page = sitePage(parts[1]);
    else page = homePage();
    guarded(page);
  }

  // A message written just before a navigation (“Deleted.”) survives it; older ones go.
  window.addEventListener("hashchange", function () { if (Date.now() - flashedAt > 1000) flash(""); route(); });
  // A reloaded page asks who is signed in (the cookie survives; the CSRF token is asked for again), and keeps the
  // session from idling out while the tab is open.
  function resume() {
    return api("GET", "/auth/browser-session", undefined, true).then(function (s) {
      if (s) setSession(s); else { csrf = null; me = null; renderAccount(); }
    }, function () { csrf = null; me = null; renderAccount(); });
  }
  resume().then(route);
  setInterval(function () { if (me) resume(); }, 10 * 60 * 1000);
})();
