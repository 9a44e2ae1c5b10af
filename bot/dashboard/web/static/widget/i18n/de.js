/* German strings for chat-widget.js (data-lang="de"). Keys missing here fall back to
 * i18n/en.js. Only the widget's own labels are translated: the assistant's answers
 * come from the Rasa server in whatever language it was trained on. */
(window.ChatWidgetI18n = window.ChatWidgetI18n || {}).de = {
  locale: "de-DE",
  launcher: "Fragen? Schreiben Sie uns",
  title: "{clinic}",
  titleFallback: "Schreiben Sie uns",
  subtitle: "Automatischer Assistent",
  close: "Chat schließen",
  restart: "Neu beginnen",
  restartLabel: "Neu beginnen: dieses Gespräch löschen und ein neues anfangen",
  transcript: "Gespräch",
  you: "Sie schrieben:",
  bot: "Der Assistent schrieb:",
  inputLabel: "Ihre Frage",
  placeholder: "Ihre Frage…",
  send: "Senden",
  replies: "Antwortvorschläge",
  newTab: "(öffnet in einem neuen Tab)",
  image: "Bild vom Assistenten",
  staffLabel: "{name} · Praxisteam",
  staffSaid: "{name} vom Praxisteam schrieb:",
  staffSubtitle: "{name}, Praxisteam",
  staffFallback: "Praxisteam",
  typing: "Der Assistent schreibt",
  connecting: "Verbindung wird aufgebaut…",
  online: "Online",
  offline: "Offline",
  offlineNotice: "Die Verbindung ist unterbrochen. Ihre Nachrichten bleiben erhalten und werden gesendet, sobald wir wieder verbunden sind.",
  queued: "Wird gesendet, sobald die Verbindung steht",
  notice: "Nur allgemeine Informationen, keine Diagnose. Im Notfall wählen Sie die 112."
};
