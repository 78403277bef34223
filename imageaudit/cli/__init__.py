"""The command line: one module per group of subcommands, :mod:`~imageaudit.cli.main` on top."""
