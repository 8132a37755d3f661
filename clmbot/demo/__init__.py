"""`clmbot demo`: the whole bot in a terminal, without a Slack workspace.

A sample business in a temporary SQLite database, the real `Bot` answering, and a small
Slack of its own (`workspace`) that takes what the bot posts and shows it in the terminal.
The clock is the demo's: `:advance 1d` moves it and runs what the scheduler would have run
in between (the survey sender, the morning's risk pass and digest).
"""
