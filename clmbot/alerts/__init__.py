"""The daily churn-drift alert: who is raised from a stored risk pass (`select`), the routes
and limits (`settings`), and what the team's buttons do (`actions`). Posting is Slack's
(`clmbot.slack.digest`)."""
