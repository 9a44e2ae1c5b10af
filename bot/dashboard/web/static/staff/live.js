/* Live updates for the staff dashboard: one event stream per page (bot/dashboard/web/live.py).
 *
 * The stream's events are re-dispatched on `document` as `staff:escalation` and
 * `staff:message` (event.detail is the event's JSON: ids and categories, no patient
 * data); the page scripts (queue.js, escalation.js) decide what to fetch.
 *
 * When the session ends (idle timeout, signed out elsewhere) the stream says
 * `signed-out` with the reason, or refuses to reconnect with 401: the page goes to the
 * sign-in page, which says why (`?idle=1`, `?expired=1`, `?ended=1`), and comes back
 * here after. `window.staffSignIn(reason)` does the same for alerts.js. Fetches made because of the stream carry
 * `X-Live-Refresh: 1`, so they do not count as someone using the dashboard.
 */
(function () {
  "use strict";

  var STREAM = "/staff/api/events";
  var status = document.querySelector("[data-live-status]");
  var source = null;
  var retryTimer = null;
  var failures = 0;

  function setState(state, text) {
    if (!status) return;
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  var REASONS = { idle: true, expired: true, ended: true };

  function toSignIn(reason) {
    var here = window.location.pathname;
    var extra = REASONS[reason] ? "&" + reason + "=1" : "";
    window.location.assign("/staff/login?next=" + encodeURIComponent(here) + extra);
  }
  window.staffSignIn = toSignIn;

  function relay(name) {
    return function (message) {
      var detail = {};
      try { detail = JSON.parse(message.data || "{}"); } catch (error) { return; }
      document.dispatchEvent(new CustomEvent("staff:" + name, { detail: detail }));
    };
  }

  /* After the stream failed for good: still signed in? 401 means no; anything else, retry later. */
  function probe() {
    fetch(STREAM + "?probe=1", {
      credentials: "same-origin",
      headers: { "Accept": "text/event-stream" },
      cache: "no-store"
    }).then(function (reply) {
      if (reply.status === 401) { toSignIn(); return; }
      scheduleReconnect();
    }, scheduleReconnect);
  }

  function scheduleReconnect() {
    failures += 1;
    setState("offline", "Live updates paused. Retrying…");
    var wait = Math.min(30000, 2000 * failures);
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(connect, wait);
  }

  function connect() {
    if (source) source.close();
    source = new EventSource(STREAM);
    source.addEventListener("ready", function () {
      failures = 0;
      setState("live", "Live updates on");
    });
    source.addEventListener("escalation", relay("escalation"));
    source.addEventListener("message", relay("message"));
    source.addEventListener("signed-out", function (message) {
      source.close();
      var reason = "";
      try { reason = JSON.parse(message.data || "{}").reason || ""; } catch (error) { reason = ""; }
      toSignIn(reason);
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        probe();
      } else {
        setState("connecting", "Reconnecting live updates…");
      }
    };
  }

  /* A fetch made because of the stream: not activity, same origin, never cached. */
  window.staffLiveFetch = function (url, options) {
    options = options || {};
    var headers = new Headers(options.headers || {});
    headers.set("X-Live-Refresh", "1");
    options.headers = headers;
    options.credentials = "same-origin";
    options.cache = "no-store";
    return fetch(url, options).then(function (reply) {
      if (reply.status === 401 || (reply.redirected && reply.url.indexOf("/staff/login") !== -1)) {
        toSignIn();
        throw new Error("signed out");
      }
      return reply;
    });
  };

  /* Polite announcements for screen readers (base.html's #announcer). */
  window.staffAnnounce = function (text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  };

  if (!("EventSource" in window)) {
    setState("offline", "Live updates are not available in this browser: reload to see changes.");
    return;
  }
  connect();
  window.addEventListener("pagehide", function () { if (source) source.close(); });
  window.addEventListener("pageshow", function (event) { if (event.persisted) connect(); });
})();
