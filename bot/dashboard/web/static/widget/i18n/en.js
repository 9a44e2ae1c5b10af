/* English strings for chat-widget.js (the default and the fallback for any
 * string a translation leaves out). To translate the widget, copy this file
 * to i18n/<lang>.js, change the key in the last line and every value, and set
 * data-lang="<lang>" on the widget's script tag. {clinic} is replaced by
 * data-clinic-name. Strings are inserted as plain text, never as HTML. */
(window.ChatWidgetI18n = window.ChatWidgetI18n || {}).en = {
  locale: "en-GB",
  launcher: "Questions? Chat with us",
  title: "{clinic}",
  titleFallback: "Chat with us",
  subtitle: "Automated assistant",
  close: "Close chat",
  restart: "Start over",
  restartLabel: "Start over: clear this conversation and begin a new one",
  transcript: "Conversation",
  you: "You said:",
  bot: "Assistant said:",
  inputLabel: "Type your question",
  placeholder: "Type your question…",
  send: "Send",
  replies: "Suggested replies",
  newTab: "(opens in a new tab)",
  fullAnswer: "Read the full answer",
  shortAnswer: "Show the short answer",
  sources: "Sources:",
  kbVersion: "answer v{n}",
  kbReviewed: "reviewed {date}",
  kbJoin: ", ",
  image: "Image from the assistant",
  staffLabel: "{name} · clinic team",
  staffSaid: "{name} from the clinic team said:",
  staffSubtitle: "{name}, clinic team",
  staffFallback: "Clinic team",
  typing: "The assistant is typing",
  connecting: "Connecting…",
  online: "Online",
  offline: "Offline",
  offlineNotice: "The connection was lost. Your messages are kept and will be sent as soon as we are back.",
  queued: "Waiting to send",
  notice: "General information only, not a diagnosis. In an emergency, call your local emergency number."
};
