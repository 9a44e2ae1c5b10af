/* The conversation view: new messages appear without a reload.
 *
 * On a `staff:message` event for this case (live.js), the newer turns are read from
 * the JSON API (/staff/api/escalations/{id}/conversation?since=<event id>) and added
 * to the list. Patient text is untrusted: it only ever goes in with textContent.
 * A tap on a button shows the button's title (the server put it in place of the payload);
 * the model's intent and confidence sit behind a "Details" toggle, as on the page, and a
 * text the channel kept without an automated answer carries the same note as on the page.
 * A change to the case itself (status, assignee, note by a colleague) shows a banner
 * offering a reload, so nobody's half-typed note is thrown away.
 *
 * Other scripts (the web-chat takeover) can ask for a refresh with
 * document.dispatchEvent(new CustomEvent("staff:refresh-conversation")).
 */
(function () {
  "use strict";

  var section = document.getElementById("conversation");
  if (!section) return;
  var caseId = section.getAttribute("data-case-id");
  var live = section.getAttribute("data-live") === "1";
  var list = document.getElementById("turns");
  var banner = document.getElementById("case-changed");
  var tz = section.getAttribute("data-tz") || undefined;
  var running = false;
  var again = false;
  var WHO = { patient: "Patient", assistant: "Assistant" };
  var MARKERS = {
    paused: "The assistant was paused: clinic staff took over the chat",
    resumed: "The assistant was resumed",
    session_started: "A new chat session started",
    restarted: "The patient restarted the conversation"
  };
  var clock;
  try {
    clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: tz });
  } catch (error) {
    clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function timeOf(iso) {
    var node = el("time");
    if (!iso) return node;
    node.setAttribute("datetime", iso);
    node.textContent = clock.format(new Date(iso));
    return node;
  }

  function percent(value) {
    return typeof value === "number" ? Math.round(value * 100) + "%" : "";
  }

  function details(turn) {
    var box = el("details", "nlu");
    var summary = el("summary", null, "Details");
    summary.appendChild(el("span", "visually-hidden", " of this message"));
    box.appendChild(summary);
    var line = el("p");
    if (turn.intent) {
      line.appendChild(document.createTextNode("Understood as "));
      line.appendChild(el("code", null, turn.intent));
      if (percent(turn.confidence)) line.appendChild(document.createTextNode(", " + percent(turn.confidence) + " confidence"));
    }
    if (turn.payload) {
      line.appendChild(document.createTextNode((turn.intent ? "; " : "") + "sent as "));
      line.appendChild(el("code", null, turn.payload));
    }
    box.appendChild(line);
    return box;
  }

  /* Why a patient's text got no automated answer (STOP, the rate limit, the daily cap), as
   * templates/staff/partials/unanswered.html renders it on the page. */
  function unanswered(turn) {
    var flag = el("p", "flag unanswered");
    flag.setAttribute("data-unanswered", turn.unanswered || "");
    flag.appendChild(el("strong", null, "No automated answer."));
    flag.appendChild(document.createTextNode(" " + turn.unanswered_note));
    return flag;
  }

  function turnNode(turn) {
    var item;
    if (MARKERS[turn.kind]) {
      item = el("li", "turn system");
      var line = el("p", "text", MARKERS[turn.kind] + " ");
      line.appendChild(timeOf(turn.at));
      item.appendChild(line);
    } else {
      item = el("li", "turn " + turn.kind + (turn.after_escalation ? " is-after" : "") + " is-new");
      var who = el("p", "who");
      var name = turn.kind === "staff" ? (turn.staff_name || "Clinic staff") + " (clinic)" : (WHO[turn.kind] || "");
      who.appendChild(el("strong", null, name));
      who.appendChild(document.createTextNode(" "));
      who.appendChild(timeOf(turn.at));
      item.appendChild(who);
      item.appendChild(el("p", "text", turn.text || ""));
      if (turn.tapped) item.appendChild(el("p", "hint tapped", "Tapped this button"));
      if (turn.buttons && turn.buttons.length) item.appendChild(el("p", "hint", "Offered: " + turn.buttons.join(" · ")));
      if (turn.kind === "patient" && (turn.intent || turn.payload)) item.appendChild(details(turn));
      if (turn.unanswered_note) item.appendChild(unanswered(turn));
    }
    item.setAttribute("data-event-id", String(turn.event_id));
    return item;
  }

  function countAfter() {
    var count = list.querySelectorAll(".turn.patient.is-after").length;
    var line = document.getElementById("after-count");
    if (!line) return;
    line.textContent = count
      ? "The patient wrote " + count + " message" + (count === 1 ? "" : "s") + " after the escalation."
      : "No patient messages since the escalation.";
  }

  function add(turns) {
    var patient = 0;
    var others = 0;
    turns.forEach(function (turn) {
      if (list.querySelector('[data-event-id="' + String(Number(turn.event_id)) + '"]')) return;
      if (turn.after_escalation && !document.getElementById("escalated-here")) {
        var divider = el("li", "divider", "Escalated here");
        divider.id = "escalated-here";
        list.appendChild(divider);
      }
      list.appendChild(turnNode(turn));
      if (turn.kind === "patient") patient += 1; else if (turn.kind === "staff") others += 1;
    });
    if (patient || others) {
      countAfter();
      var text = patient === 1 ? "New message from the patient." : patient ? patient + " new messages from the patient." : "";
      if (others) text += (text ? " " : "") + "New message from the clinic in the chat.";
      if (window.staffAnnounce) window.staffAnnounce(text);
    }
  }

  function refresh() {
    if (!live) { showChanged(); return; }
    if (running) { again = true; return; }
    running = true;
    var since = section.getAttribute("data-last-event-id") || "0";
    window.staffLiveFetch("/staff/api/escalations/" + encodeURIComponent(caseId) + "/conversation?since=" + encodeURIComponent(since), {
      headers: { "Accept": "application/json" }
    }).then(function (reply) {
      return reply.ok ? reply.json() : null;
    }).then(function (data) {
      if (!data) return;
      if (data.omitted) { showChanged(); return; }
      add(data.turns || []);
      if (data.last_event_id) section.setAttribute("data-last-event-id", String(data.last_event_id));
    }).catch(function () { /* the next event tries again */ })
      .then(function () {
        running = false;
        if (again) { again = false; refresh(); }
      });
  }

  function showChanged() {
    if (!banner || !banner.hidden) return;
    banner.hidden = false;
    if (window.staffAnnounce) window.staffAnnounce("This case has just changed. Reload the case to see it.");
  }

  document.addEventListener("staff:message", function (event) {
    if ((event.detail || {}).id === caseId) refresh();
  });
  document.addEventListener("staff:escalation", function (event) {
    if ((event.detail || {}).id === caseId) showChanged();
  });
  document.addEventListener("staff:refresh-conversation", refresh);
})();
