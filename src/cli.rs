//! Command-line interface: the `tessera` subcommands and their flags.
