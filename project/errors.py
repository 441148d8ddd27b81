"""The one exception type for mistakes a user can make (bad config, missing data, wrong checkpoint).

Entry points (`project.train`, `project.evaluate`, ...) catch it and print its message as one
paragraph with a non-zero exit code instead of a traceback.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""
