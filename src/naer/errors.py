"""The one exception type a user can cause: the CLI prints its message and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input (arguments, files, data), never a bug in Nær."""
