"""One module per `cocomix-lens` subcommand; each defines `add_arguments(parser)` and `run(args)`."""
