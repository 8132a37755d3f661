"""The Slack front door: Bolt listeners, Block Kit, access control, the HTTP/Socket Mode
runner. Nothing below this package knows about Slack."""
