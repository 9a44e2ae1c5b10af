"""``python -m bot.core.make_secrets``: the setup step that creates the shared secrets (``make setup``).

Creates each secret file missing under ``VAR_DIR/secrets``, the dashboard's VAPID key for
Web Push included, and never replaces one (:mod:`bot.core.secrets`); prints which it made,
never their values.
"""

from __future__ import annotations

import os
import sys

from bot.core import secrets
from bot.core.process import PRIVATE_UMASK
from bot.core.settings import Settings


def main() -> int:
    os.umask(PRIVATE_UMASK)
    var_dir = Settings.from_env(read_secrets=False).var_dir
    created = secrets.ensure(var_dir)
    print(f"secrets in {secrets.folder(var_dir)}: {', '.join(created) + ' created' if created else 'all present'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
