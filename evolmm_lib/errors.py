"""``UserError``: a mistake in what the user asked for (a name, a path, a file), not a bug in the kit.

Raised where the mistake is detected, with a message that says what is wrong and what to do;
``python -m evolmm_lib`` prints it as one line and exits with status 2, without a traceback.
"""


class UserError(Exception):
    """A mistake in the user's request; the message is the whole explanation."""
