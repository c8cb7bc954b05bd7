"""One module per command-line verb (see :mod:`sedarchive.cli`)."""
