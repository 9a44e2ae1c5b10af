"""The assistant: the Rasa server's components, channels, NLG and SMS, and the action server.

Runs in .venv (Rasa 3.6). Imports :mod:`bot.core`, never :mod:`bot.dashboard`.
"""
