"""The staff dashboard: the web app, staff accounts and cases, notifications.

Runs in .venv-web (no Rasa). Imports :mod:`bot.core`, never :mod:`bot.assistant`.
"""
