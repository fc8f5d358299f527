"""One module per `cocomix-lens` subcommand: `HELP`, `add_arguments(parser)`, `run(args)`."""
