"""Staff side of the dashboard: accounts, sign-in, sessions, API tokens, presence.

Nothing here imports Rasa: the web app runs in its own environment.
"""
