"""One module per `twbert` subcommand; see twbert/cli.py."""
