"""The one error type every stage raises for input the user can fix.

It lives here, not in the CLI, so that pipeline/, shards/ and training/ never import the CLI layer;
`twbert.cli` prints it as one line, without a traceback.
"""


class UsageError(Exception):
    """Bad input the user can fix; printed as one line, without a traceback."""
