/* The reception display (bot/dashboard/web/display.py): keep the open cases live.
 *
 * Every few seconds it asks GET /staff/api/display (with `X-Live-Refresh: 1`) for the rows:
 * ids, initials and fixed words, never patient text. It rebuilds the table from them with
 * textContent (no markup from data), counts each case's waiting time on from its creation
 * (corrected for this computer's clock against the server's), puts the count of unopened
 * urgent cases in the tab title, and beeps (Web Audio, no file) and announces when a new
 * urgent case appears. Browsers keep sound off until the page is used once: the page says
 * so until someone clicks it. When the session has ended (401) it goes to the sign-in page,
 * which comes back here after.
 */
(function () {
  "use strict";

  var board = document.getElementById("display-board");
  if (!board) return;
  var data = board.dataset;
  var body = board.querySelector("[data-display-rows]");
  var status = document.querySelector("[data-live-status]");
  var pollMs = Math.max(2, parseInt(data.pollSeconds, 10) || 5) * 1000;
  var baseTitle = document.title;
  var offset = 0; // server time minus this computer's time (ms)
  var seen = {};
  var failures = 0;
  var audio = null;

  function setOffset(serverNow) {
    var parsed = Date.parse(serverNow || "");
    if (!isNaN(parsed)) offset = parsed - Date.now();
  }

  /* The same words as display.py's waiting_text. */
  function waitingText(ms) {
    var minutes = Math.max(0, Math.floor(ms / 60000));
    if (minutes < 1) return "Under a minute";
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 24) return minutes ? hours + " h " + minutes + " min" : hours + " h";
    var days = Math.floor(hours / 24);
    hours = hours % 24;
    return hours ? days + " d " + hours + " h" : days + " d";
  }

  function tick() {
    var now = Date.now() + offset;
    board.querySelectorAll("time[data-since]").forEach(function (time) {
      var since = Date.parse(time.getAttribute("data-since"));
      if (!isNaN(since)) time.textContent = waitingText(now - since);
    });
  }

  function showTitle(count) {
    document.title = count > 0 ? "(" + count + ") " + baseTitle : baseTitle;
  }

  function setState(state, text) {
    if (!status) return;
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  /* --- sound ---------------------------------------------------------------------------- */

  var hint = document.querySelector("[data-sound-hint]");

  function audioContext() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    try { audio = audio || new Context(); } catch (error) { audio = null; }
    return audio;
  }

  function showSoundHint() {
    var context = audioContext();
    if (hint) hint.hidden = !(context && context.state === "suspended");
  }

  document.addEventListener("click", function () {
    var context = audioContext();
    if (!context) return;
    var resumed = context.resume ? context.resume() : null;
    if (resumed && resumed.then) resumed.then(showSoundHint, showSoundHint); else showSoundHint();
  });

  function beep() {
    var context = audioContext();
    if (!context) return;
    try {
      var start = context.currentTime;
      [0, 0.25, 0.5].forEach(function (at) {
        var tone = context.createOscillator();
        var gain = context.createGain();
        tone.type = "sine";
        tone.frequency.value = 880;
        gain.gain.setValueAtTime(0.0001, start + at);
        gain.gain.exponentialRampToValueAtTime(0.3, start + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.2);
        tone.connect(gain).connect(context.destination);
        tone.start(start + at);
        tone.stop(start + at + 0.21);
      });
    } catch (error) { /* no sound device: the title and the highlighted row still tell */ }
  }

  /* --- rows --------------------------------------------------------------------------- */

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function badge(text, className) {
    var span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }

  function row(item) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-id", item.id);
    tr.setAttribute("data-urgent", item.urgent ? "1" : "0");
    if (item.urgent) tr.className = "is-urgent";
    var priority = cell();
    priority.appendChild(item.urgent ? badge("Urgent", "urgent") : badge(item.priority_label, item.priority));
    tr.appendChild(priority);
    tr.appendChild(cell(item.initials, "initials"));
    tr.appendChild(cell(item.reason));
    var state = cell();
    state.appendChild(badge(item.status_label, "status-" + item.status));
    tr.appendChild(state);
    var waiting = cell(undefined, "waiting");
    var time = document.createElement("time");
    time.setAttribute("datetime", item.created_at);
    time.setAttribute("data-since", item.created_at);
    time.textContent = item.waiting;
    waiting.appendChild(time);
    tr.appendChild(waiting);
    return tr;
  }

  function show(state) {
    setOffset(state.now);
    var cases = state.cases || [];
    var fresh = cases.filter(function (item) { return item.urgent && !seen[item.id]; });
    var rows = document.createDocumentFragment();
    var next = {};
    cases.forEach(function (item) {
      next[item.id] = true;
      rows.appendChild(row(item));
    });
    body.replaceChildren(rows);
    seen = next;
    var count = board.querySelector("[data-display-count]");
    if (count) count.textContent = String(state.total || 0);
    var empty = document.querySelector("[data-display-empty]");
    if (empty) empty.hidden = cases.length > 0;
    var more = document.querySelector("[data-display-more]");
    if (more) {
      more.hidden = !(state.more > 0);
      var moreCount = more.querySelector("[data-display-more-count]");
      if (moreCount) moreCount.textContent = String(state.more || 0);
    }
    showTitle(state.unopened_urgent || 0);
    tick();
    if (fresh.length) {
      beep();
      announce(fresh.length === 1 ? "A new urgent case is waiting." : fresh.length + " new urgent cases are waiting.");
    }
  }

  function signIn() {
    window.location.assign(data.loginUrl + "?next=" + encodeURIComponent(data.pageUrl) + "&display=1");
  }

  function poll() {
    fetch(data.url, {
      headers: { "X-Live-Refresh": "1", "Accept": "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (reply) {
      if (reply.status === 401) { signIn(); return null; }
      if (reply.status === 403) { window.location.reload(); return null; }  // a password change is due
      if (!reply.ok) throw new Error("status " + reply.status);
      return reply.json();
    }).then(function (state) {
      if (!state) return;
      failures = 0;
      setState("live", "Live updates on");
      show(state);
      window.setTimeout(poll, pollMs);
    }).catch(function () {
      failures += 1;
      setState("offline", "Live updates paused. Retrying…");
      window.setTimeout(poll, Math.min(30000, pollMs * failures));
    });
  }

  body.querySelectorAll("tr[data-id]").forEach(function (tr) { seen[tr.getAttribute("data-id")] = true; });
  setOffset(data.now);
  showTitle(parseInt(data.unopenedUrgent, 10) || 0);
  showSoundHint();
  tick();
  window.setInterval(tick, 15000);
  poll();
})();
