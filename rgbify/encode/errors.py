"""Errors of the encode stage."""

from __future__ import annotations

from rgbify.errors import UserError


class CodecInputError(UserError, ValueError):
    """An array handed to an encoder or decoder has the wrong shape, dtype or values, or a codec spec is bad.

    A ValueError for library callers, and a UserError so the CLI prints it as one line and exits 2.
    """
