"""What a person types after `/clm` (or in a DM to the bot, or after `clmbot` on a terminal).

One module per command holds its grammar, its usage line and example, and its handler;
`registry` collects them, `run` parses the words and calls the right one. The package
imports nothing here, so that `results` may use `spec` without pulling in every command.
"""
