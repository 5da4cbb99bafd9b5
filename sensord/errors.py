"""The project's exception types.

``SensordError`` is the base; the CLI turns any of them into a one-line message and
exit status 2, never a traceback.

- ``InputError``: bad user input (a recording, a config file, a CLI value, a payload).
  The message says what is wrong, where (file, line, column / key) and how to fix it.
- ``DecodeError``: bytes from a sensor that do not decode under its profile.
- ``ServiceError``: a server or device the user pointed us at cannot be used
  (unreachable broker or database, unsupported BLE device, unknown run).
"""

from __future__ import annotations


class SensordError(Exception):
    """Base of every error sensord raises on purpose."""


class InputError(SensordError):
    """Bad input from the user; the message names where and how to fix it."""


class DecodeError(SensordError):
    """A sensor notification that does not decode under its profile."""


class ServiceError(SensordError):
    """A server or device that cannot be used (unreachable, unsupported, unknown)."""
