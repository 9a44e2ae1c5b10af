/* The conversation view's tools for acting fast: canned replies, keyboard shortcuts, and
 * "hand back first" before resolving a case whose chat staff still hold.
 *
 * Canned replies: in the reply box (#takeover-text, #sms-text), typing "/" at the start of a
 * word opens a list of the clinic's canned replies (GET data-canned-url), filtered as you
 * type ("/99" -> /999); Up/Down choose, Enter or Tab (or a click) replaces "/99" with the
 * reply's text, Escape closes the list. The box keeps the focus: the list is a listbox whose
 * options it points to with aria-activedescendant. The keys are caught in the capture phase,
 * so Enter inserts instead of sending (takeover.js sends on Enter).
 *
 * Shortcuts (not while typing in a field): "?" lists them (#shortcuts, a <dialog>), "r" goes
 * to the reply box, "t" takes the chat over, "c" goes to the conversation, "n" to the note.
 *
 * Text only ever goes in with textContent or a textarea's value.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var cannedUrl = script ? script.getAttribute("data-canned-url") : "";
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var replies = null;
  var loading = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function loadReplies() {
    if (replies) return Promise.resolve(replies);
    if (!loading) {
      loading = fetch(cannedUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (reply) { return reply.ok ? reply.json() : { replies: [] }; })
        .then(function (data) { replies = data.replies || []; return replies; })
        .catch(function () { loading = null; return []; });
    }
    return loading;
  }

  /* ---- canned replies in a reply box ---- */

  function attach(box) {
    var field = box.closest(".field") || box;
    var form = box.form || field.parentNode;
    var listId = box.id + "-canned";
    var list = el("ul", "canned-list");
    list.id = listId;
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Canned replies");
    list.hidden = true;
    field.parentNode.insertBefore(list, field.nextSibling);
    var status = el("p", "visually-hidden");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    field.parentNode.insertBefore(status, list.nextSibling);
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", listId);
    var shown = [];
    var active = -1;
    var token_ = null; // {start, end}: where "/query" sits in the box

    function query() {
      var before = box.value.slice(0, box.selectionStart);
      var match = /(^|\s)\/([a-z0-9-]*)$/i.exec(before);
      if (!match) return null;
      return { text: match[2].toLowerCase(), start: before.length - match[2].length - 1, end: box.selectionStart };
    }

    function close() {
      list.hidden = true;
      list.textContent = "";
      shown = [];
      active = -1;
      token_ = null;
      box.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = index;
      Array.prototype.forEach.call(list.children, function (option, i) {
        option.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      if (index >= 0 && list.children[index]) {
        box.setAttribute("aria-activedescendant", list.children[index].id);
        list.children[index].scrollIntoView({ block: "nearest" });
      }
    }

    function render(found) {
      list.textContent = "";
      shown = found;
      found.forEach(function (reply, i) {
        var option = el("li", "canned-option");
        option.id = listId + "-" + i;
        option.setAttribute("role", "option");
        option.appendChild(el("strong", null, "/" + reply.shortcut));
        option.appendChild(document.createTextNode(" " + reply.title));
        option.appendChild(el("span", "canned-body", reply.body));
        option.addEventListener("mousedown", function (event) { event.preventDefault(); });
        option.addEventListener("click", function () { insert(i); });
        list.appendChild(option);
      });
      list.hidden = found.length === 0;
      if (found.length) {
        highlight(0);
        status.textContent = found.length + " canned repl" + (found.length === 1 ? "y" : "ies") + ". Up and down to choose, Enter to insert.";
      } else {
        box.removeAttribute("aria-activedescendant");
        status.textContent = "No canned reply starts like this.";
      }
    }

    function update() {
      var found = query();
      if (!found) { close(); return; }
      token_ = found;
      loadReplies().then(function (all) {
        var current = query();
        if (!current || current.text !== found.text) return; // typed on meanwhile: the next input renders
        render(all.filter(function (reply) {
          return reply.shortcut.indexOf(found.text) === 0 || reply.title.toLowerCase().indexOf(found.text) !== -1;
        }));
      });
    }

    function insert(index) {
      var reply = shown[index];
      if (!reply || !token_) return;
      var value = box.value;
      box.value = value.slice(0, token_.start) + reply.body + value.slice(token_.end);
      var caret = token_.start + reply.body.length;
      box.setSelectionRange(caret, caret);
      close();
      box.focus();
      status.textContent = "Inserted " + reply.title + ".";
    }

    box.addEventListener("input", update);
    box.addEventListener("click", update);
    box.addEventListener("blur", function () { setTimeout(close, 150); });
    // Capture phase: before takeover.js's Enter-to-send on the box itself.
    form.addEventListener("keydown", function (event) {
      if (event.target !== box || list.hidden || !shown.length) return;
      var handled = true;
      if (event.key === "ArrowDown") highlight((active + 1) % shown.length);
      else if (event.key === "ArrowUp") highlight((active - 1 + shown.length) % shown.length);
      else if ((event.key === "Enter" && !event.isComposing) || event.key === "Tab") insert(active < 0 ? 0 : active);
      else if (event.key === "Escape") close();
      else handled = false;
      if (handled) {
        event.preventDefault();
        event.stopPropagation();
      }
    }, true);
  }

  ["takeover-text", "sms-text"].forEach(function (id) {
    var box = document.getElementById(id);
    if (box && cannedUrl) attach(box);
  });

  /* ---- keyboard shortcuts ---- */

  var dialog = document.getElementById("shortcuts");
  var opener = document.getElementById("shortcuts-open");
  var returnTo = null;

  function openShortcuts() {
    if (!dialog || dialog.open) return;
    returnTo = document.activeElement;
    if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
  }
  if (dialog) {
    dialog.addEventListener("close", function () {
      if (returnTo && returnTo.focus) returnTo.focus();
    });
  }
  if (opener) opener.addEventListener("click", openShortcuts);

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function focusOn(node) {
    if (!node) return false;
    if (!node.hasAttribute("tabindex") && !/^(a|button|input|textarea|select)$/i.test(node.tagName)) {
      node.setAttribute("tabindex", "-1");
    }
    node.scrollIntoView({ block: "nearest" });
    node.focus();
    return true;
  }

  var KEYS = {
    "?": openShortcuts,
    "r": function () {
      return focusOn(document.getElementById("takeover-text") || document.getElementById("sms-text")) ||
        focusOn(document.querySelector("#reply-box .takeover-start button")) ||
        focusOn(document.querySelector("#reply-box h2"));
    },
    "t": function () {
      var button = document.querySelector("#takeover .takeover-start button[type=submit]");
      if (button) button.click();
    },
    "c": function () { focusOn(document.getElementById("conversation-heading")); },
    "n": function () { focusOn(document.getElementById("note")); }
  };

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (dialog && dialog.open) return;
    var action = KEYS[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });

  /* ---- resolving while staff hold the chat: hand back first ---- */

  var statusForm = document.getElementById("status-form");
  var step = document.getElementById("hand-back-first");
  if (statusForm && step && statusForm.hasAttribute("data-held-by")) {
    var resolveButton = statusForm.querySelector('button[value="resolved"]');
    statusForm.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!submitter || submitter.value !== "resolved") return;
      event.preventDefault();
      step.hidden = false;
      step.focus();
    });
    var cancel = step.querySelector("[data-hand-back-cancel]");
    if (cancel) cancel.addEventListener("click", function () {
      step.hidden = true;
      if (resolveButton) resolveButton.focus();
    });
    var both = step.querySelector("[data-hand-back-and-resolve]");
    var handBack = document.querySelector("#reply-box form.takeover-handback");
    if (both && handBack) both.addEventListener("click", function () {
      both.disabled = true;
      fetch(handBack.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": token },
        body: new URLSearchParams(new FormData(handBack))
      }).then(function (reply) {
        if (!reply.ok) throw new Error("hand back refused");
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = "status";
        field.value = "resolved";
        statusForm.appendChild(field);
        statusForm.submit(); // the server resolves only once the chat is handed back
      }).catch(function () {
        both.disabled = false;
        var text = document.getElementById("hand-back-first-text");
        if (text) text.textContent = "The chat could not be handed back. Use \"Hand back to the assistant\" in the reply box, then resolve.";
      });
    });
  }
})();
