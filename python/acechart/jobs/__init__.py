"""Durable background jobs: large queries and exports that survive restarts.

`JobService` runs them over a `Runtime`; `JobQueue` is the storage interface
(`SqliteJobQueue` now, Redis Streams when one machine is outgrown); `routes`
puts them behind the seed's `/api/jobs` endpoints.
"""

from acechart.jobs.model import Job, JobError, JobRequest
from acechart.jobs.queue import JobQueue, SqliteJobQueue
from acechart.jobs.service import JobService

__all__ = ["Job", "JobError", "JobQueue", "JobRequest", "JobService", "SqliteJobQueue"]
