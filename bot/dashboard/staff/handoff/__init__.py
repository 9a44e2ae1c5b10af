"""Staff talking to a patient themselves (a handoff), on every channel staff can reply in.

One :class:`~bot.dashboard.staff.handoff.service.HandoffService` (take over, send a line,
hand back, state) with a :class:`~bot.dashboard.staff.handoff.policy.ChannelPolicy` per
channel: :mod:`.web_chat` (the website chat: presence, lines kept for the patient's return)
and :mod:`.sms` (SMS and WhatsApp: opt-out, WhatsApp's 24-hour window, the outbox). The
refusals are plain domain errors (:mod:`.errors`); the routes
(:mod:`bot.dashboard.web.handoff_routes`) turn them into HTTP answers.
"""
