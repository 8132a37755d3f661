"""Churn risk: a score from 0 to 100 for each customer as of a date, with its reasons in
plain words (`score`), from facts up to that date only (`facts`), the purchase rhythm learned
from the team's own history (`rhythm`), and a backtest over past dates (`backtest`)."""
