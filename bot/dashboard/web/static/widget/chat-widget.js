/*! chat-widget.js: a website chat widget for a Rasa assistant (plain JS, no build step).
 *
 * <script src="/static/widget/chat-widget.js" defer
 *   data-server-url="https://bot.example.org"  Rasa server (default: this page's origin)
 *   data-socket-path="/socket.io/"             Rasa socketio channel path
 *   data-clinic-name="Example Physio"          shown in the panel title
 *   data-color="#0b6e69" data-color-text="#fff" brand colour and the text drawn on it;
 *                                              the clinic must keep that pair at WCAG AA
 *                                              contrast (4.5:1); the defaults have 6.1:1
 *   data-lang="en"                             loads i18n/<lang>.js (English fills gaps)
 *   data-initial-payload="/greet"              sent once when a new session's panel first
 *                                              opens; "" sends nothing
 *   data-storage="session"                     "local" keeps the chat after the browser
 *                                              closes (avoid on shared computers)
 *   data-css="…/chat-widget.css"               stylesheet to load; "none" if the page links it
 *   data-max-chars="2000"></script>
 * Any element with a data-chat-open attribute opens the panel when clicked, and
 * window.ChatWidget.open() / .close() / .restart() let the page drive it.
 *
 * Transport: rather than the ~15 KB (gzipped) socket.io-client bundle, this file speaks
 * the small subset of Engine.IO v4 / Socket.IO v5 it needs over a plain WebSocket
 * (python-socketio 5.9 / python-engineio 4.x in Rasa 3.6 speak exactly this):
 *   server "0{pingInterval,pingTimeout}" open   -> client "40" connect to namespace "/"
 *   server "40{sid}" connect ack                -> client 42["session_request",{session_id}]
 *   server 42["session_confirm",id]             -> client 42["user_uttered",{message,session_id}]
 *   server 42["bot_uttered",{text,quick_replies,buttons,attachment,custom}]
 *   (a message from clinic staff who took the chat over also has metadata.staff =
 *   {name, event: "joined"|"message"|"left"}: shown with the person's name, apart
 *   from the assistant's, and the header says who is in the chat until they leave)
 *   server "2" ping -> client "3" pong; "41"/"44"/"1" or silence = disconnected, reconnect.
 * The events are Rasa's standard ones, so any socket.io client keeps working.
 *
 * Short answers first on phones: the parts of a curated answer that has a one-text version
 * carry an extra key, the first {short: {text, parts}}, each later one {short: {part: i}}.
 * On a narrow screen (NARROW) the widget shows the short text with a "Read the full answer"
 * button (aria-expanded) that reveals the full parts in place; wider screens show the
 * full answer as before. Either way the whole answer is kept, so a resize redraws it.
 *
 * Sources: the last part of a curated answer also carries {kb: {title, version, reviewed,
 * sources: [{name, url}]}}. A small line under the answer names each source (a link, in a
 * new tab, only for an https URL), the answer's version and review date; on a phone it
 * stands under the short version as well as under the full answer, since both are the
 * curated answer.
 *
 * Security: every string is inserted as a text node; links are rebuilt with DOM APIs
 * and only http(s) URLs become links. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src || window.ChatWidget) return;
  var api = (window.ChatWidget = {});
  var data = script.dataset;
  var base = new URL(".", script.src).href;
  var lang = /^[a-z]{2,3}(-[a-z0-9]{2,8})?$/i.test(data.lang || "") ? data.lang.toLowerCase() : "en";
  var server = (data.serverUrl || location.origin).replace(/\/+$/, "");
  var payload = data.initialPayload == null ? "/greet" : data.initialPayload;
  var maxChars = +data.maxChars || 2000;
  var KEY = "chat-widget:" + server;
  var NARROW = "(max-width: 600px)"; /* where an answer's short version is shown first */
  var NS = "http://www.w3.org/2000/svg";
  var store = null;
  try {
    store = data.storage === "local" ? window.localStorage : window.sessionStorage;
  } catch (e) { /* storage blocked: the chat simply lasts as long as the page */ }

  var S = {}, fmt, st, nodes = {}, groups = {}, grp = null;
  var narrow = window.matchMedia ? window.matchMedia(NARROW) : { matches: false };
  var root, launcher, panel, log, input, statusText, banner, typingEl, typingTimer;
  var ws = null, ready = false, tries = 0, retryTimer, beatTimer, beatMs = 45000;

  /* ---------- helpers ---------- */
  function t(k, name) {
    return (S[k] || k).replace("{clinic}", function () { return data.clinicName || ""; })
      .replace("{name}", function () { return name || ""; });
  }

  function el(tag, cls, text, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function icon(d) {
    var s = document.createElementNS(NS, "svg"), p = document.createElementNS(NS, "path");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    p.setAttribute("d", d);
    s.appendChild(p);
    return s;
  }

  /* Source links are https only (stricter than message links). */
  function httpsUrl(u) {
    try {
      var x = new URL(u);
      return x.protocol === "https:" && x.hostname ? x.href : "";
    } catch (e) { return ""; }
  }

  function safeUrl(u) {
    try {
      var x = new URL(u);
      return /^https?:$/.test(x.protocol) ? x.href : "";
    } catch (e) { return ""; }
  }

  function load(src, done) {
    var s = el("script", null, null, { src: src });
    s.onload = s.onerror = done;
    document.head.appendChild(s);
  }

  function fresh() { return { sid: null, greeted: false, open: false, n: 0, msgs: [], queue: [], staff: null }; }

  function save() {
    try { if (store) store.setItem(KEY, JSON.stringify(st)); } catch (e) { /* quota: keep going */ }
  }

  function restore() {
    try {
      var s = store && JSON.parse(store.getItem(KEY));
      if (s && s.msgs && s.queue) return s;
    } catch (e) { /* unreadable: start fresh */ }
    return fresh();
  }

  /* ---------- rendering ---------- */
  var LINK = /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]]/g;

  function linkify(node, text) {
    var last = 0, m, href, a;
    LINK.lastIndex = 0;
    while ((m = LINK.exec(text))) {
      href = safeUrl(m[2] || m[0]);
      if (!href) continue;
      node.appendChild(document.createTextNode(text.slice(last, m.index)));
      a = el("a", null, m[1] || m[0], { href: href, target: "_blank", rel: "noopener noreferrer" });
      a.appendChild(el("span", "cw-sr", " " + t("newTab")));
      node.appendChild(a);
      last = m.index + m[0].length;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
  }

  /* "Sources: A; B · answer v2, reviewed 7 Dec 2026" under a curated answer, put in
   * ``box`` before ``next`` (at the end without). Checked again here: a stored message is
   * read back from storage. */
  function sources(stored, box, next) {
    var p = el("p", "cw-sources"), tail = [], a, when, around;
    var kb = citation({ version: stored.v, reviewed: stored.r, sources: (Array.isArray(stored.src) ? stored.src : [])
      .map(function (s) { return s && { name: s.n, url: s.u }; }) });
    if (!kb) return;
    function text(s) { return document.createTextNode(s); }
    p.appendChild(text(t("sources") + " "));
    kb.src.forEach(function (s, i) {
      var href = httpsUrl(s.u);
      if (i) p.appendChild(text("; "));
      if (!href) return p.appendChild(text(s.n));
      a = p.appendChild(el("a", null, s.n, { href: href, target: "_blank", rel: "noopener noreferrer" }));
      a.appendChild(el("span", "cw-sr", " " + t("newTab")));
    });
    if (kb.v) tail.push([text(t("kbVersion").replace("{n}", String(kb.v)))]);
    if (kb.r) {
      when = el("time", null, new Intl.DateTimeFormat(S.locale || "en-GB",
        { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" }).format(new Date(kb.r + "T00:00:00Z")),
        { datetime: kb.r });
      around = t("kbReviewed").split("{date}");
      tail.push([text(around[0]), when, text(around.slice(1).join(""))]);
    }
    tail.forEach(function (nodes, i) {
      p.appendChild(text(i ? t("kbJoin") : " · "));
      nodes.forEach(function (n) { p.appendChild(n); });
    });
    box.insertBefore(p, next || null);
  }

  /* The kb key of a bot_uttered, checked: null unless it names at least one source. */
  function citation(k) {
    var src = [];
    if (!k || typeof k !== "object" || !Array.isArray(k.sources)) return null;
    k.sources.slice(0, 12).forEach(function (s) {
      if (s && typeof s.name === "string" && s.name.trim()) {
        src.push({ n: s.name.trim().slice(0, 160), u: httpsUrl(s.url) });
      }
    });
    if (!src.length) return null;
    return {
      v: typeof k.version === "number" && k.version >= 1 && k.version % 1 === 0 ? k.version : 0,
      r: typeof k.reviewed === "string" && /^\d{4}-\d{2}-\d{2}$/.test(k.reviewed)
        && !isNaN(new Date(k.reviewed + "T00:00:00Z")) ? k.reviewed : "",
      src: src
    };
  }

  function stamp(m) {
    var d = new Date(m.ts);
    return m.q ? document.createTextNode(t("queued")) : el("time", null, fmt.format(d), { datetime: d.toISOString() });
  }

  function meta(m) {
    var box = nodes[m.id] && nodes[m.id].lastChild;
    if (!box) return;
    box.textContent = "";
    box.appendChild(stamp(m));
  }

  function render(m) {
    var row = el("div", "cw-msg " + (m.u ? "cw-user" : m.s ? (m.s.e === "message" ? "cw-staff" : "cw-note") : "cw-bot"));
    var bubble, group;
    if (m.s && m.s.e === "message") {
      row.appendChild(el("span", "cw-who", t("staffLabel", m.s.n), { "aria-hidden": "true" }));
      row.appendChild(el("span", "cw-sr", t("staffSaid", m.s.n)));
    } else if (!m.s) row.appendChild(el("span", "cw-sr", t(m.u ? "you" : "bot")));
    if (m.text) {
      bubble = row.appendChild(el("div", "cw-bubble"));
      if (m.u) bubble.textContent = m.text;
      else linkify(bubble, m.text);
    }
    if (m.kb) sources(m.kb, row);
    if (m.img) {
      row.appendChild(el("img", "cw-img", null, { src: m.img, alt: t("image") })).onload = scroll;
    }
    if (m.qr && m.qr.length) {
      group = row.appendChild(el("div", "cw-replies", null, { role: "group", "aria-label": t("replies") }));
      m.qr.forEach(function (r, i) {
        var b;
        if (r.url) {
          b = el("a", "cw-reply", r.title, { href: r.url, target: "_blank", rel: "noopener noreferrer" });
        } else {
          b = el("button", "cw-reply", r.title, { type: "button", value: i });
          b.onclick = function () { answer(m, i); };
        }
        group.appendChild(b);
      });
    }
    row.appendChild(el("div", "cw-meta"));
    nodes[m.id] = row;
    meta(m);
    markReplies(m);
    return row;
  }

  function markReplies(m) {
    var row = nodes[m.id], btns = row ? row.querySelectorAll("button.cw-reply") : [];
    if (!m.done) return;
    for (var i = 0; i < btns.length; i++) {
      btns[i].disabled = true;
      if (+btns[i].value === m.pick) {
        btns[i].classList.add("cw-picked");
        btns[i].setAttribute("aria-pressed", "true");
      }
    }
  }

  /* An answer with a short version, on a narrow screen: the short text, the button, and the
   * full answer's parts (``row`` is the first) in a region the button shows and hides. */
  function brief(m, row) {
    var box = el("div", "cw-answer"), id = "cw-full-" + m.id, g = { box: box };
    g.short = box.appendChild(el("div", "cw-msg cw-bot cw-short"));
    g.short.appendChild(el("span", "cw-sr", t("bot")));
    linkify(g.short.appendChild(el("div", "cw-bubble")), m.sh);
    if (m.kb) sources(m.kb, g.short);
    g.short.appendChild(el("div", "cw-meta")).appendChild(stamp(m));
    g.btn = box.appendChild(el("button", "cw-more", null, { type: "button", "aria-controls": id }));
    g.label = g.btn.appendChild(el("span"));
    g.btn.appendChild(icon("M6 9l6 6 6-6"));
    g.full = box.appendChild(el("div", "cw-full", null, { id: id }));
    g.full.appendChild(row);
    g.btn.onclick = function () {
      m.x = !m.x;
      reveal(m);
      save();
    };
    groups[m.id] = g;
    reveal(m);
    return box;
  }

  function reveal(m) {
    var g = groups[m.id];
    g.short.hidden = !!m.x;
    g.full.hidden = !m.x;
    g.btn.setAttribute("aria-expanded", m.x ? "true" : "false");
    g.label.textContent = t(m.x ? "shortAnswer" : "fullAnswer");
  }

  /* Put a message's row in the transcript; returns what to scroll to. */
  function place(m) {
    var row = render(m), g = narrow.matches && groups[m.of];
    if (m.sh && narrow.matches) return log.appendChild(brief(m, row));
    if (g) {
      g.full.appendChild(row);
      if (m.kb) sources(m.kb, g.short, g.short.lastChild); /* the kb of the answer's last part */
      return g.box;
    }
    return log.appendChild(row);
  }

  /* The screen crossed NARROW: draw the transcript again for the new width. */
  function redraw() {
    var had = log.contains(document.activeElement);
    log.textContent = "";
    nodes = {};
    groups = {};
    st.msgs.forEach(place);
    if (had) log.focus();
    scroll();
  }

  /* Scroll to the end, but never past the start of a long new reply (``row``). */
  function scroll(row) {
    if (!log) return;
    log.scrollTop = row && row.nodeType
      ? Math.min(log.scrollHeight, row.offsetTop - log.offsetTop - 48) : log.scrollHeight;
  }

  function add(m) {
    var row;
    m.id = ++st.n;
    m.ts = Date.now();
    st.msgs.push(m);
    row = place(m);
    scroll(!m.u && row);
    save();
    return m;
  }

  function typing(on) {
    if (st.staff) on = false; /* a person has the chat: nobody types automatically */
    clearTimeout(typingTimer);
    typingEl.hidden = !on;
    if (on) typingTimer = setTimeout(typing, 20000, false);
    scroll();
  }

  function setState(s) {
    root.setAttribute("data-state", s);
    statusText.textContent = (st.staff ? t("staffSubtitle", st.staff) : t("subtitle")) + " · " + t(s);
    banner.textContent = s === "offline" ? t("offlineNotice") : "";
    scroll();
  }

  /* ---------- conversation ---------- */
  function answer(m, i) {
    if (m.done) return;
    send(m.qr[i].title, m.qr[i].payload);
    m.pick = i;
    markReplies(m);
    save();
    input.focus();
  }

  function send(text, pl, hidden) {
    st.msgs.forEach(function (m) {
      if (m.qr && m.qr.length && !m.done) { m.done = true; markReplies(m); }
    });
    var m = hidden ? null : add({ u: 1, text: text, q: 1 });
    st.queue.push({ m: pl || text, id: m && m.id });
    save();
    flush();
  }

  function flush() {
    if (!ready) return connect();
    while (st.queue.length) {
      var q = st.queue.shift(), m = null;
      emit("user_uttered", { message: q.m, session_id: st.sid });
      st.msgs.forEach(function (x) { if (x.id === q.id) m = x; });
      if (m) { m.q = 0; m.ts = Date.now(); meta(m); }
      typing(true);
    }
    save();
  }

  function greet() {
    if (st.greeted || !payload || st.msgs.length) return;
    st.greeted = true;
    send(null, payload, true);
  }

  function botMessage(d) {
    var c = d.custom && typeof d.custom === "object" ? d.custom : {};
    var text = typeof d.text === "string" ? d.text : typeof c.text === "string" ? c.text : "";
    var att = d.attachment || {}, img = "";
    var qr = [], offered = d.quick_replies || d.buttons || c.buttons;
    (Array.isArray(offered) ? offered : []).forEach(function (b) {
      var url = b && b.url ? safeUrl(b.url) : "";
      if (b && b.title && (url || !b.url)) qr.push({ title: String(b.title), payload: String(b.payload || b.title), url: url });
    });
    if (att.type === "image" && att.payload) img = safeUrl(att.payload.src || att.payload.url);
    var who = d.metadata && d.metadata.staff, staff = null;
    if (who && typeof who === "object" && /^(joined|message|left)$/.test(who.event)) {
      staff = { n: String(who.name || t("staffFallback")).slice(0, 100), e: who.event };
      st.staff = who.event === "left" ? null : staff.n;
      setState(root.getAttribute("data-state"));
    }
    var mark = d.short && typeof d.short === "object" ? d.short : {}, m = { text: text, qr: qr, img: img, s: staff };
    if (!staff && text && typeof mark.text === "string" && mark.text.trim() && mark.parts >= 1) m.sh = mark.text;
    else if (!staff && grp && mark.part === grp.next) m.of = grp.id;
    if (!staff && text) m.kb = citation(d.kb) || undefined;
    if (!(text || qr.length || img)) return;
    add(m);
    grp = m.sh ? { id: m.id, next: 2, parts: mark.parts } : m.of ? grp : null;
    if (grp && m.of) grp.next++;
    if (grp && grp.next > grp.parts) grp = null;
  }

  /* ---------- Engine.IO v4 / Socket.IO v5 over WebSocket ---------- */
  function emit(name, body) { ws.send("42" + JSON.stringify([name, body])); }

  function beat() {
    clearTimeout(beatTimer);
    beatTimer = setTimeout(drop, beatMs);
  }

  function connect() {
    if (ws) return;
    clearTimeout(retryTimer);
    if (!tries) setState("connecting");
    try {
      ws = new WebSocket(server.replace(/^http/, "ws") + (data.socketPath || "/socket.io/") +
        "?EIO=4&transport=websocket");
    } catch (e) { return drop(); }
    ws.onmessage = function (e) {
      try { packet(String(e.data)); } catch (err) { /* not a packet this client needs */ }
    };
    ws.onclose = drop;
    beat();
  }

  function drop() {
    if (ws) {
      ws.onclose = ws.onmessage = null;
      try { ws.close(); } catch (e) { /* already closed */ }
      ws = null;
    }
    ready = false;
    clearTimeout(beatTimer);
    clearTimeout(retryTimer);
    typing(false);
    setState("offline");
    retryTimer = setTimeout(connect, Math.min(1000 * Math.pow(2, tries++), 10000) * (0.8 + Math.random() * 0.4));
  }

  function packet(p) {
    var body, ev;
    beat();
    if (p[0] === "0") {
      body = JSON.parse(p.slice(1));
      beatMs = (body.pingInterval || 25000) + (body.pingTimeout || 20000);
      ws.send("40");
    } else if (p === "2") {
      ws.send("3");
    } else if (p[0] === "1" || p === "41" || p.slice(0, 2) === "44") {
      drop();
    } else if (p.slice(0, 2) === "40") {
      emit("session_request", { session_id: st.sid });
    } else if (p.slice(0, 2) === "42") {
      ev = JSON.parse(p.slice(p.indexOf("[")));
      if (ev[0] === "session_confirm") {
        body = ev[1];
        st.sid = typeof body === "string" ? body : body && body.session_id;
        ready = true;
        tries = 0;
        setState("online");
        flush();
      } else if (ev[0] === "bot_uttered" && ev[1]) {
        typing(false);
        botMessage(ev[1]);
      }
    }
  }

  /* ---------- panel ---------- */
  function open(focus) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    st.open = true;
    save();
    if (!ws) { tries = 0; connect(); }
    greet();
    scroll();
    if (focus !== false) input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    st.open = false;
    save();
    launcher.focus();
  }

  function restart() {
    st = fresh();
    nodes = {};
    groups = {};
    grp = null;
    log.textContent = "";
    typing(false);
    if (ws) { ws.onclose = ws.onmessage = null; ws.close(); ws = null; }
    ready = false;
    tries = 0;
    open();
  }

  function sizeInput() {
    input.style.height = "auto";
    input.style.height = input.scrollHeight + "px";
  }

  function build() {
    var head, titles, actions, form, btn, color = data.color, onColor = data.colorText;
    S = {};
    [window.ChatWidgetI18n.en, window.ChatWidgetI18n[lang]].forEach(function (o) {
      for (var k in o) S[k] = o[k];
    });
    try { fmt = new Intl.DateTimeFormat(S.locale || lang, { hour: "2-digit", minute: "2-digit" }); }
    catch (e) { fmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }); }
    st = restore();

    root = el("div", "cw", null, { lang: lang });
    if (color) root.style.setProperty("--cw-accent", color);
    if (onColor) root.style.setProperty("--cw-on-accent", onColor);

    launcher = root.appendChild(el("button", "cw-launcher", null,
      { type: "button", "aria-expanded": "false", "aria-controls": "cw-panel" }));
    launcher.appendChild(icon("M4 5h16v11H9l-5 4z"));
    launcher.appendChild(el("span", null, t("launcher")));
    launcher.onclick = function () { if (panel.hidden) open(); else close(); };

    panel = root.appendChild(el("section", "cw-panel", null,
      { id: "cw-panel", role: "dialog", "aria-labelledby": "cw-title" }));
    panel.hidden = true;
    head = panel.appendChild(el("div", "cw-head"));
    titles = head.appendChild(el("div", "cw-titles"));
    titles.appendChild(el("h2", "cw-title", data.clinicName ? t("title") : t("titleFallback"), { id: "cw-title" }));
    statusText = titles.appendChild(el("p", "cw-status"));
    actions = head.appendChild(el("div", "cw-actions"));
    btn = actions.appendChild(el("button", "cw-restart", null, { type: "button", "aria-label": t("restartLabel") }));
    btn.appendChild(icon("M4 12a8 8 0 1 0 2.4-5.7L4 8.7M4 4v4.7h4.7"));
    btn.appendChild(el("span", null, t("restart")));
    btn.onclick = restart;
    btn = actions.appendChild(el("button", "cw-close", null, { type: "button", "aria-label": t("close") }));
    btn.appendChild(icon("M6 6l12 12M18 6L6 18"));
    btn.onclick = close;

    banner = panel.appendChild(el("p", "cw-offline", null, { role: "status" }));
    log = panel.appendChild(el("div", "cw-log", null,
      { role: "log", "aria-live": "polite", "aria-label": t("transcript"), tabindex: "0" }));
    typingEl = panel.appendChild(el("div", "cw-typing"));
    typingEl.appendChild(el("span", "cw-sr", t("typing")));
    for (var i = 0; i < 3; i++) typingEl.appendChild(el("i", null, null, { "aria-hidden": "true" }));
    typingEl.hidden = true;

    form = panel.appendChild(el("form", "cw-form"));
    form.appendChild(el("label", "cw-sr", t("inputLabel"), { "for": "cw-input" }));
    input = form.appendChild(el("textarea", "cw-input", null,
      { id: "cw-input", rows: "1", maxlength: String(maxChars), placeholder: t("placeholder"), autocomplete: "off" }));
    btn = form.appendChild(el("button", "cw-send", null, { type: "submit", "aria-label": t("send") }));
    btn.appendChild(icon("M12 19V5M5 12l7-7 7 7"));
    panel.appendChild(el("p", "cw-notice", t("notice")));

    form.onsubmit = function (e) {
      var text = input.value.trim();
      e.preventDefault();
      if (!text) return;
      input.value = "";
      sizeInput();
      send(text);
    };
    input.oninput = sizeInput;
    input.onkeydown = function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.onsubmit(e);
      }
    };
    root.onkeydown = function (e) {
      if (e.key === "Escape" && !panel.hidden) { e.preventDefault(); close(); }
    };

    st.msgs.forEach(place);
    if (narrow.addEventListener) narrow.addEventListener("change", redraw);
    else if (narrow.addListener) narrow.addListener(redraw);
    setState("connecting");
    document.body.appendChild(root);
    if (st.open) open(false);
    else if (st.queue.length) connect();
    document.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("[data-chat-open]");
      if (b) { e.preventDefault(); open(); }
    });
    window.addEventListener("online", function () {
      if (!ws && root.getAttribute("data-state") === "offline") { tries = 0; connect(); }
    });

    api.open = open;
    api.close = close;
    api.restart = restart;
  }

  /* ---------- start: stylesheet and strings first, then the DOM ---------- */
  var pending = 1, cssHref = data.css || base + "chat-widget.css";
  function ready1() { if (--pending === 0) build(); }
  window.ChatWidgetI18n = window.ChatWidgetI18n || {};
  (lang === "en" ? ["en"] : ["en", lang]).forEach(function (code) {
    if (window.ChatWidgetI18n[code]) return;
    pending++;
    load(base + "i18n/" + code + ".js", ready1);
  });
  cssHref = new URL(cssHref, location.href).href;
  if (data.css !== "none" && ![].some.call(document.querySelectorAll("link[rel=stylesheet]"),
    function (l) { return l.href === cssHref; })) {
    pending++;
    var link = el("link", null, null, { rel: "stylesheet", href: cssHref });
    link.onload = link.onerror = ready1;
    document.head.appendChild(link);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready1);
  else ready1();
})();
