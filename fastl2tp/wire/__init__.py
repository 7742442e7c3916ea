"""Pure codecs: bytes to frozen dataclasses and back. No state, no I/O; errors are ``DecodeError``."""
