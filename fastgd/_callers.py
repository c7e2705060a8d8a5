"""Where the user's code is on the call stack: warnings point at the user's line."""
import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_level():
    """The ``stacklevel`` (for ``warnings.warn`` called by the caller of this function)
    of the first frame outside fastgd, whatever the path through the package."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
