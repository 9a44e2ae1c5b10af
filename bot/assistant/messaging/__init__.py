"""The clinic messaging channel's logic, independent of Rasa: SMS and WhatsApp through Twilio.

Used by the Rasa channel (:mod:`bot.assistant.channels.twilio_sms`) and by the web app's staff
replies (:mod:`bot.dashboard.web.handoff_routes`), so nothing here imports rasa, sanic or twilio.
"""
