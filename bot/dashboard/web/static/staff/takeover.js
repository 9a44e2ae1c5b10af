/* Staff in the patient's web chat: send messages without reloading the page.
 *
 * Enhances the form of templates/staff/partials/takeover.html: the message goes to
 * POST /staff/api/escalations/{id}/messages as JSON with the page's CSRF token, the line
 * is added to "Sent into the chat" with whether it reached the patient's open chat, and
 * the conversation view is asked to refresh (escalation.js). Taking over and handing back
 * stay plain form posts: they change the whole block. Text only ever goes in with textContent.
 */
(function () {
  "use strict";

  var section = document.getElementById("takeover");
  var form = document.getElementById("takeover-send");
  if (!section || !form) return;
  var caseId = section.getAttribute("data-case-id");
  var text = document.getElementById("takeover-text");
  var status = document.getElementById("takeover-status");
  var lines = document.getElementById("takeover-lines");
  var presence = document.getElementById("takeover-presence");
  var contact = document.getElementById("takeover-contact");
  var button = form.querySelector("button[type=submit]");
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var DELIVERY = {
    delivered: "Delivered",
    waiting: "Not delivered: the patient's chat is closed. Waiting for them to come back.",
    failed: "Not sent: the chat server did not answer.",
    sending: "Sending"
  };

  function el(tag, className, value) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (value !== undefined && value !== null) node.textContent = value;
    return node;
  }

  function say(message, kind) {
    status.textContent = "";
    status.appendChild(el("p", kind, message));
  }

  function addLine(line) {
    var item = el("li", "line-" + line.kind + " delivery-" + line.status);
    item.setAttribute("data-line-id", String(line.id));
    var meta = el("p", "meta");
    meta.appendChild(el("strong", null, line.author));
    meta.appendChild(document.createTextNode(" · message"));
    item.appendChild(meta);
    item.appendChild(el("p", "text", line.text));
    item.appendChild(el("p", "delivery", DELIVERY[line.status] || line.status));
    lines.appendChild(item);
    var heading = document.getElementById("takeover-lines-heading");
    if (heading) heading.hidden = false;
  }

  function showPresence(open) {
    presence.textContent = "";
    presence.appendChild(el("strong", null, open ? "The patient's chat is open." : "The patient's chat is closed."));
    presence.appendChild(document.createTextNode(open
      ? " They see what you send straight away."
      : " Anything you send waits for them for an hour, in case they come back."));
    if (contact) contact.hidden = open;
  }

  function send() {
    var message = text.value.trim();
    if (!message) { say("Write a message first.", "error"); text.focus(); return; }
    button.disabled = true;
    fetch("/staff/api/escalations/" + encodeURIComponent(caseId) + "/messages", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify({ text: message })
    }).then(function (reply) {
      return reply.json().catch(function () { return {}; }).then(function (body) { return { ok: reply.ok, body: body }; });
    }).then(function (result) {
      if (!result.ok) {
        say(result.body.message || "The message was not sent. Try again.", "error");
        return;
      }
      text.value = "";
      addLine(result.body.line);
      showPresence(result.body.patient_connected);
      say(result.body.delivered ? "Message delivered to the patient's chat."
        : "Not delivered: the patient's chat is closed. It will appear if they come back within the hour; the contact details they gave are shown above.",
        result.body.delivered ? "success" : "notice");
      document.dispatchEvent(new CustomEvent("staff:refresh-conversation"));
    }).catch(function () {
      say("The dashboard could not be reached. The message was not sent; try again.", "error");
    }).then(function () {
      button.disabled = false;
      text.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });
  text.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
})();
