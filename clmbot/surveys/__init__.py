"""Surveys by DM: queueing (`queue`), the sender's queue (`outbox`), the customer's side of
the conversation (`answers`), the customer's hours (`window`) and words (`texts`), and what
`survey status` shows (`status`). Nothing here knows Slack: `clmbot.slack.survey_sender`
and the listeners do the talking."""
