"""The one exception type for expected failures: its message is the single line a user sees."""


class UserError(Exception):
    """Bad input or a missing prerequisite: say what went wrong and what to do, in one line."""
