"""The shared core: settings, clinic, safety screen, store, escalation, knowledge.

Imported by all three processes (Rasa server, action server, web app); imports nothing
from :mod:`bot.assistant` or :mod:`bot.dashboard` (tests/unit/test_import_rules.py).
"""
