"""Durable background jobs: large queries and exports that survive restarts.

`JobService` (service.py) is the API: submit, look up, download, cancel,
expire. `Workers` (worker.py) claim and run jobs through the engine, with the
progress model in progress.py; export.py writes and converts results;
`JobQueue` (queue.py) is the storage interface (`SqliteJobQueue` now, Redis
Streams when one machine is outgrown). Pure domain: no HTTP here, the server
puts it behind the seed's `/api/jobs` endpoints, and nothing here imports the
server or the runtime.
"""

from acechart.jobs.model import Job, JobError, JobRequest
from acechart.jobs.queue import JobQueue, SqliteJobQueue
from acechart.jobs.service import JobService

__all__ = ["Job", "JobError", "JobQueue", "JobRequest", "JobService", "SqliteJobQueue"]
