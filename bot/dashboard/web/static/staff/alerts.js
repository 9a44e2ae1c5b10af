/* Alerts on the staff dashboard, for whoever has a page open, even in a background tab:
 *
 * - a browser notification (Notification API) and a short sound (Web Audio API, no file)
 *   for every new urgent case and every patient reply in a case the signed-in account
 *   holds, each as the account chose in the header's "Alerts" settings;
 * - the tab title starts with the count of unopened urgent cases ("(2) Queue · ...");
 * - a minute before the idle sign-out, a warning with a "Stay signed in" button;
 * - for admins, the banner saying no alert route works follows the server's check;
 * - Web Push: while the account's browser notifications are on and the browser allows
 *   them, the service worker (/staff/sw.js) is registered and this browser subscribed with
 *   the server's VAPID key (POST to #staff-alerts' data-push-url), so a new urgent case is
 *   shown even with every dashboard tab closed. Turning notifications off unsubscribes it
 *   (DELETE). Signing out keeps it: it belongs to the account, and the tab's session idles
 *   out anyway (bot/dashboard/web/push_routes.py).
 *
 * It listens to live.js's `staff:escalation` and `staff:message` events and reads
 * GET /staff/api/alerts (live.py) with `X-Live-Refresh: 1`, so it never counts as
 * someone using the dashboard. Notifications carry no patient data: a fixed sentence,
 * and a click opens the case. Links come from the page (#staff-alerts), built by the
 * server from its named routes.
 */
(function () {
  "use strict";

  var config = document.getElementById("staff-alerts");
  if (!config) return;
  var data = config.dataset;
  var settings = { notifications: data.notifications === "on", sound: data.sound === "on" };
  var baseTitle = document.title;
  var WARN_SECONDS = 60;
  var idleTimer = null;
  var countdownTimer = null;
  var refreshTimer = null;
  var audio = null;

  var idleDeadlinePassed = false;

  /* Not activity (X-Live-Refresh); a 401 is handled below, where the reason is known. */
  function liveFetch(url) {
    return fetch(url, { headers: { "X-Live-Refresh": "1" }, credentials: "same-origin", cache: "no-store" });
  }

  function signIn(reason) {
    if (window.staffSignIn) { window.staffSignIn(reason); return; }
    window.location.assign(data.loginUrl + "?" + reason + "=1");
  }

  /* --- the tab title ----------------------------------------------------------------- */

  function showCount(count) {
    document.title = count > 0 ? "(" + count + ") " + baseTitle : baseTitle;
  }

  /* --- notification and sound -------------------------------------------------------- */

  function permissionNote(text) {
    var note = document.querySelector("[data-alert-permission]");
    if (!note) return;
    note.textContent = text;
    note.hidden = !text;
  }

  function askPermission() {
    if (!("Notification" in window) || !settings.notifications) return;
    if (Notification.permission === "default") {
      var asked = Notification.requestPermission();
      if (asked && asked.then) asked.then(function () { describePermission(); syncPush(); });
    }
    describePermission();
  }

  function describePermission() {
    if (!("Notification" in window)) {
      permissionNote("This browser cannot show notifications.");
    } else if (settings.notifications && Notification.permission === "denied") {
      permissionNote("Notifications are blocked for this site in the browser's settings.");
    } else {
      permissionNote("");
    }
  }

  function caseUrl(id) {
    return data.caseUrl.replace(data.casePlaceholder, id);
  }

  function notify(title, body, caseId) {
    if (!settings.notifications || !("Notification" in window) || Notification.permission !== "granted") return;
    var shown = new Notification(title, { body: body, tag: "staff-case-" + caseId, requireInteraction: true });
    shown.onclick = function () {
      window.focus();
      shown.close();
      window.location.assign(caseUrl(caseId));
    };
  }

  function beep() {
    if (!settings.sound) return;
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      if (audio.state === "suspended") audio.resume();
      var start = audio.currentTime;
      [0, 0.25].forEach(function (offset) {
        var tone = audio.createOscillator();
        var gain = audio.createGain();
        tone.type = "sine";
        tone.frequency.value = 880;
        gain.gain.setValueAtTime(0.0001, start + offset);
        gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
        tone.connect(gain).connect(audio.destination);
        tone.start(start + offset);
        tone.stop(start + offset + 0.21);
      });
    } catch (error) { /* no sound device: the notification and the title still tell */ }
  }

  /* Browsers keep audio suspended until the page is used once: wake it on the first click. */
  document.addEventListener("click", function () {
    if (audio && audio.state === "suspended") audio.resume();
  }, { once: true });

  document.addEventListener("staff:escalation", function (event) {
    var detail = event.detail || {};
    if (detail.change === "created" && detail.urgent) {
      notify("New urgent case", "An urgent case is waiting on the dashboard.", detail.id);
      beep();
    }
    scheduleRefresh();
  });

  document.addEventListener("staff:message", function (event) {
    var detail = event.detail || {};
    if (detail.mine) {
      notify("Patient replied", "A patient wrote in a case you hold.", detail.id);
      beep();
    }
  });

  /* --- Web Push: new urgent cases with the tab closed -------------------------------- */

  var pushWanted = null;

  function pushSupported() {
    return !!data.pushUrl && window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* Keeping the subscription in step is the page's doing, not the person's: X-Live-Refresh. */
  function sendSubscription(method, body) {
    return fetch(data.pushUrl, {
      method: method, credentials: "same-origin", cache: "no-store", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(), "X-Live-Refresh": "1" }
    });
  }

  function decodeKey(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(base64 + "====".slice(base64.length % 4 || 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function sameKey(subscription, key) {
    var held = subscription.options && subscription.options.applicationServerKey;
    if (!held) return false;
    held = new Uint8Array(held);
    if (held.length !== key.length) return false;
    for (var i = 0; i < key.length; i++) if (held[i] !== key[i]) return false;
    return true;
  }

  function subscribePush() {
    return liveFetch(data.pushUrl).then(function (reply) {
      return reply.ok ? reply.json() : null;
    }).then(function (config) {
      if (!config || !config.public_key) return null;  // Web Push is off on the server
      var key = decodeKey(config.public_key);
      return navigator.serviceWorker.register(config.service_worker, { scope: config.scope }).then(function () {
        return navigator.serviceWorker.ready;
      }).then(function (registration) {
        return registration.pushManager.getSubscription().then(function (held) {
          if (held && sameKey(held, key)) return held;
          var cleared = held ? held.unsubscribe() : Promise.resolve(true);
          return cleared.then(function () {
            return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
          });
        });
      }).then(function (subscription) {
        return sendSubscription("POST", subscription.toJSON());
      });
    }).catch(function () { /* no push service here: the open tab still alerts */ });
  }

  function unsubscribePush() {
    return navigator.serviceWorker.getRegistration().then(function (registration) {
      return registration ? registration.pushManager.getSubscription() : null;
    }).then(function (held) {
      if (!held) return null;
      return sendSubscription("DELETE", { endpoint: held.endpoint }).then(function () { return held.unsubscribe(); });
    }).catch(function () { /* the server skips accounts with notifications off anyway */ });
  }

  /* Subscribed while notifications are on and allowed; unsubscribed once they are turned off. */
  function syncPush() {
    if (!pushSupported() || !("Notification" in window)) return;
    var want = settings.notifications && Notification.permission === "granted";
    var off = !settings.notifications;
    var state = want ? "on" : (off ? "off" : "unknown");
    if (state === pushWanted) return;
    pushWanted = state;
    if (want) subscribePush();
    else if (off) unsubscribePush();
  }

  /* --- state from the server: count, settings, idle deadline, banner ---------------- */

  function scheduleRefresh() {
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, 300);
  }

  function refresh() {
    return liveFetch(data.alertsUrl).then(function (reply) {
      if (reply.status === 401) { signIn(idleDeadlinePassed ? "idle" : "ended"); return null; }
      return reply.ok ? reply.json() : null;
    }).then(function (state) {
      if (!state) return;
      showCount(state.unopened_urgent || 0);
      settings.notifications = !!state.notifications;
      settings.sound = !!state.sound;
      syncPush();
      if ("alert_route_problem" in state) showBanner(state.alert_route_problem);
      if (typeof state.idle_seconds_left === "number") scheduleIdleWarning(state.idle_seconds_left);
    }).catch(function () { /* offline: live.js shows it; the next event refreshes */ });
  }

  function showBanner(problem) {
    var banner = document.querySelector("[data-alert-route-banner]");
    if (!banner) return;
    var text = banner.querySelector("[data-alert-route-text]");
    if (problem && text) text.textContent = problem;
    banner.hidden = !problem;
  }

  /* --- the idle warning ------------------------------------------------------------- */

  var warning = document.querySelector("[data-idle-warning]");

  function hideWarning() {
    window.clearInterval(countdownTimer);
    if (warning) warning.hidden = true;
  }

  function scheduleIdleWarning(secondsLeft) {
    window.clearTimeout(idleTimer);
    if (secondsLeft > WARN_SECONDS) {
      idleDeadlinePassed = false;
      hideWarning();
      // Check again a minute before: another tab may have been used meanwhile.
      idleTimer = window.setTimeout(refresh, (secondsLeft - WARN_SECONDS) * 1000);
      return;
    }
    showWarning(secondsLeft);
  }

  function showWarning(secondsLeft) {
    if (!warning) return;
    var shown = warning.querySelector("[data-idle-seconds]");
    var deadline = Date.now() + secondsLeft * 1000;
    warning.hidden = false;
    window.clearInterval(countdownTimer);
    function tick() {
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      if (shown) shown.textContent = String(left);
      if (left <= 0) {
        window.clearInterval(countdownTimer);
        idleDeadlinePassed = true;
        refresh();  // signed out by now (401 goes to the sign-in page), or used in another tab
      }
    }
    tick();
    countdownTimer = window.setInterval(tick, 1000);
  }

  if (warning) {
    warning.querySelector("[data-idle-stay]").addEventListener("click", function () {
      // An ordinary request is activity: it moves the idle deadline.
      fetch(data.meUrl, { credentials: "same-origin", cache: "no-store" }).then(function (reply) {
        if (reply.status === 401) { signIn("idle"); return; }
        idleDeadlinePassed = false;
        hideWarning();
        refresh();
      });
    });
  }

  var form = document.getElementById("alert-settings-form");
  if (form) {
    form.addEventListener("submit", function () {
      var box = document.getElementById("alert-notifications");
      settings.notifications = !!(box && box.checked);
      // Asked while the click that saved the form still counts as the user's gesture.
      askPermission();
    });
  }

  askPermission();
  syncPush();
  refresh();
})();
