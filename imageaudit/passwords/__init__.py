"""Passwords: read a hash string, cap its cost, and check it against candidate passwords.

- :mod:`~imageaudit.passwords.crypt_format` reads a crypt(5) hash string (algorithm, cost
  parameters) without running it;
- :mod:`~imageaudit.passwords.cost` classifies a hash and says whether it is cheap enough
  to check;
- :mod:`~imageaudit.passwords.dictionary` holds the candidate passwords;
- :mod:`~imageaudit.passwords.verify` checks hashes against them through
  :mod:`~imageaudit.passwords.crypt_worker`, libxcrypt in a child process with limits.
"""
