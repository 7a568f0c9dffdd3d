"""`opsaudit web`: the pages where people act on findings and review reports, in their language.

The web is a second door to the same store, not a second model: every action goes through
`opsaudit.store.lifecycle` and `opsaudit.reports.review`, which decide who may do what exactly as
they do for the command line.
"""

from opsaudit.web.links import finding_url, report_url

__all__ = ["finding_url", "report_url"]
