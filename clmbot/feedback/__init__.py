"""NPS and CSAT: scores with their intervals (`scores`), the reports behind `/clm nps` and
`/clm csat` (`reports`), the latest comments behind `/clm feedback` (`comments`), and the
trend as a PNG (`chart`). Services: a session and plain arguments in, frozen dataclasses out.
"""
