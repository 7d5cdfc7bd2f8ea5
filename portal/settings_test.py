"""The test suite's settings: the portal's own (read from the environment, as CI sets it), and
only what tests need to differ. pytest names this module; workers the tests start inherit it."""

from portal.settings import *  # noqa: F403

# Real hashing (PBKDF2, about a million rounds) costs ~0.2 s per user created; tests make many.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests serve static files through the live server's own handler; nothing is collected.
STATIC_ROOT = None
