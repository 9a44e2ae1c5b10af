"""The safety screen: everything that decides whether a patient message must reach staff.

Read top to bottom, one module per step:

1. :mod:`bot.core.safety.findings` — what the message names (health terms, a request for a
   person, a link to a treatment);
2. :mod:`bot.core.safety.context` — ConText (Harkema et al. 2009): negated, hypothetical, a
   question about risk, a current report, historical, someone else ...;
3. :mod:`bot.core.safety.decision` — the decision table: finding x context -> reason, and the
   severity order of reasons;
4. :mod:`bot.core.safety.routing` — from the verdict (and the NLU model's guess) to the intent.

:mod:`bot.core.safety.screen` runs steps 1-3 on a message (``screen_text``);
:mod:`bot.core.safety.verdict` is its result. The rules are data in ``data/safety/``, read at run
time. :mod:`bot.core.safety.terms` holds the term lists that keep FAQ answers on dry needling.
"""
