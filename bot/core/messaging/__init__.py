"""What the messaging channel (SMS, WhatsApp) shares between the Rasa server and the web app.

Addresses, the WhatsApp window, the store queries and the inbound spool: nothing here imports Rasa.
"""
