/* The staff dashboard's service worker: Web Push of new urgent cases, with the tab closed.
 *
 * Served at /staff/sw.js (bot/dashboard/web/push_routes.py), scope /staff/. The server's
 * notifier (bot/dashboard/notify/web_push.py) pushes {"url": "/staff/escalations/<id>"}
 * and nothing else: the notification is a fixed sentence, never patient data, and a click
 * opens (or focuses) that case's page, which asks for sign-in as any page does.
 */
"use strict";

var TITLE = "New urgent case";
var BODY = "New urgent case \u2014 open the dashboard";
var DASHBOARD = "/staff/";
var CASE_PATH = /^\/staff\/escalations\/[A-Za-z0-9%_-]+$/;

/* The case page the push named, on this origin only; the dashboard when it named none. */
function caseUrl(data) {
  var path = data && typeof data.url === "string" ? data.url : "";
  try {
    var url = new URL(path, self.location.origin);
    if (url.origin === self.location.origin && CASE_PATH.test(url.pathname)) return url.pathname;
  } catch (error) { /* not a URL: the dashboard instead */ }
  return DASHBOARD;
}

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("push", function (event) {
  var data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch (error) { data = null; }
  var url = caseUrl(data);
  event.waitUntil(self.registration.showNotification(TITLE, {
    body: BODY,
    tag: "staff-urgent-" + url,
    requireInteraction: true,
    data: { url: url }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = caseUrl(event.notification.data);
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    for (var i = 0; i < windows.length; i++) {
      var client = windows[i];
      if (new URL(client.url).pathname === url && "focus" in client) return client.focus();
    }
    return self.clients.openWindow(url);
  }));
});
