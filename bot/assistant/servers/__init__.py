"""Entry points of the two Sanic servers: ``python -m bot.assistant.servers.rasa`` and ``python -m bot.assistant.servers.actions``.

They replace ``rasa run`` and ``rasa run actions`` so that every option that
matters for safety comes from the settings (interface, CORS, API access, the
action server's secret) and nothing secret is ever a command-line argument.
"""
