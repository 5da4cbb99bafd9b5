"""sensord: an open running-form monitor.

The public surface is small: the boundary types in :mod:`sensord.model`, the gait
engine in :mod:`sensord.gait`, and the error types below.
"""

from sensord.errors import DecodeError, InputError, SensordError, ServiceError

__version__ = "0.1.0"

__all__ = ["DecodeError", "InputError", "SensordError", "ServiceError", "__version__"]
