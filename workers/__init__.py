"""Background jobs: processing inbound SMS, sending SMS and calls, sweeps.

Importing the package imports every module that registers jobs (``@job``,
workers/registry.py) and then checks that each job the domain names
(models/jobs.py) exists: a name without its job stops the import.
"""

from . import callback_jobs, event_jobs, jobs, match_jobs, notify_jobs, privacy_jobs, voice_jobs  # noqa: F401  (they register their jobs)
from .registry import check_declared

check_declared()
