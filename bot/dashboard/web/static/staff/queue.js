/* The queue page: refresh the results region when the event stream says something changed.
 *
 * The region is rendered by the server (GET or, for a text search, POST
 * /staff/queue/results) with every value escaped by the template engine; this script
 * swaps it in whole and never builds markup from data. New rows are marked for a few
 * seconds and announced politely; focus stays where it was.
 */
(function () {
  "use strict";

  var REFRESH_DELAY = 400;
  var AGE_REFRESH = 60000;
  var FRESH_MS = 8000;
  var timer = null;
  var running = false;
  var again = false;
  var pending = { created: 0, urgent: 0, messages: 0 };

  function region() { return document.getElementById("queue-results"); }

  function rowIds(root) {
    var ids = {};
    root.querySelectorAll("tbody tr[data-id]").forEach(function (row) { ids[row.getAttribute("data-id")] = true; });
    return ids;
  }

  function request() {
    var current = region();
    if (current && current.getAttribute("data-search") === "1") {
      var data = new FormData(document.getElementById("search-form"));
      data.set("page", current.getAttribute("data-page") || "1");
      return window.staffLiveFetch("/staff/queue/results", { method: "POST", body: data,
        headers: { "X-CSRF-Token": csrfToken() } });
    }
    return window.staffLiveFetch("/staff/queue/results" + window.location.search, { method: "GET" });
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function announce(before, after) {
    var added = Object.keys(after).filter(function (id) { return !before[id]; });
    var parts = [];
    if (pending.created) {
      var text = pending.created === 1 ? "1 new escalation" : pending.created + " new escalations";
      if (pending.urgent) text += pending.urgent === 1 ? ", 1 urgent" : ", " + pending.urgent + " urgent";
      parts.push(text + ".");
    }
    if (pending.messages) {
      parts.push(pending.messages === 1 ? "A patient sent a new message." : "Patients sent " + pending.messages + " new messages.");
    }
    pending = { created: 0, urgent: 0, messages: 0 };
    if (parts.length && window.staffAnnounce) window.staffAnnounce(parts.join(" "));
    return added;
  }

  function swap(html) {
    var current = region();
    if (!current) return;
    var parsed = new DOMParser().parseFromString(html, "text/html");
    var next = parsed.getElementById("queue-results");
    if (!next) return;
    var focusedId = current.contains(document.activeElement) ? document.activeElement.id : "";
    var before = rowIds(current);
    next = document.importNode(next, true);
    current.replaceWith(next);
    var added = announce(before, rowIds(next));
    added.forEach(function (id) {
      var row = document.getElementById("row-" + id);
      if (!row) return;
      row.classList.add("is-fresh");
      window.setTimeout(function () { row.classList.remove("is-fresh"); }, FRESH_MS);
    });
    if (focusedId) {
      var target = document.getElementById(focusedId);
      if (target) target.focus();
    }
  }

  function refresh() {
    if (running) { again = true; return; }
    running = true;
    request().then(function (reply) {
      return reply.ok ? reply.text() : null;
    }).then(function (html) {
      if (html) swap(html);
    }).catch(function () { /* the next event or the periodic refresh tries again */ })
      .then(function () {
        running = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, REFRESH_DELAY);
  }

  document.addEventListener("staff:escalation", function (event) {
    var detail = event.detail || {};
    if (detail.change === "created") {
      pending.created += 1;
      if (detail.urgent) pending.urgent += 1;
    }
    schedule();
  });
  document.addEventListener("staff:message", function (event) {
    var detail = event.detail || {};
    if (detail.id && document.getElementById("row-" + detail.id)) pending.messages += 1;
    schedule();
  });
  /* Ages and waits move on with the clock. */
  window.setInterval(refresh, AGE_REFRESH);
})();
