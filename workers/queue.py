"""Handing jobs to RQ, or running them in-process when there is no Redis.

PostgreSQL is the record of everything pending; Redis only carries the
nudge. So when Redis is down, enqueueing logs and gives up quietly: the row
stays pending and the sweep (workers.jobs.sweep) enqueues it once Redis is
back. Job ids are deterministic and enqueued with ``unique=True``, so a
duplicate nudge is refused by RQ, and every job checks its row before acting.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from models.db import JobSpec

from .registry import BATCHES, JobRef, RegisteredJob, registered

log = logging.getLogger("buurtlijn.jobs")


# Queues by name: what residents wait for goes first.
QUEUE_NAMES = ("outbound", "inbound", "maintenance")
DEFAULT_QUEUE = "outbound"

# Jobs that travel together when one commit defers several of them (registry.BATCHES):
# RQ's own bookkeeping (some twenty Redis commands a job) costs more than
# sending an SMS, so one job carries the lot. Each row is still claimed on its
# own, so a batch that runs twice, or a single job for a row in it, sends it once.
BATCH_SIZE = 50


class JobQueue:
    """RQ when ``redis_url`` is set, else in-process (the demo)."""

    def __init__(self, redis_url: str | None, prefix: str = "buurtlijn"):
        self.redis_url = redis_url
        self.prefix = prefix
        self._redis: Any = None
        self._queues: dict[str, Any] = {}
        self._drop_script: Any = None

    @property
    def in_process(self) -> bool:
        return not self.redis_url

    def queue_name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    @property
    def queue_names(self) -> list[str]:
        return [self.queue_name(name) for name in QUEUE_NAMES]

    @property
    def redis(self) -> Any:
        if self._redis is None:
            from redis import Redis

            self._redis = Redis.from_url(
                self.redis_url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30
            )
        return self._redis

    def rq_queue(self, short: str) -> Any:
        if short not in self._queues:
            from rq import Queue
            from rq.serializers import JSONSerializer

            self._queues[short] = Queue(
                self.queue_name(short), connection=self.redis, serializer=JSONSerializer
            )
        return self._queues[short]

    def enqueue_many(self, jobs: Iterable[JobSpec]) -> None:
        """Enqueue what one commit deferred; several jobs of a batched kind (registry.BATCHES) go as one."""
        together: dict[str, list[JobSpec]] = {}
        for spec in jobs:
            func, args, options = spec
            name = registered(func).name
            if name in BATCHES and len(args) == 1 and set(options) <= {"job_id"}:  # no delay, default queue
                together.setdefault(name, []).append(spec)
            else:
                self.enqueue(func, *args, **options)
        for name, specs in together.items():
            if len(specs) == 1:
                func, args, options = specs[0]
                self.enqueue(func, *args, **options)
                continue
            for start in range(0, len(specs), BATCH_SIZE):
                ids = [args[0] for _, args, _ in specs[start:start + BATCH_SIZE]]
                self.enqueue(BATCHES[name].func, ids, job_id=f"{name}-batch-{ids[0]}-{ids[-1]}-{len(ids)}")

    def drop_waiting(self, job_ids: list[str], queue: str = DEFAULT_QUEUE) -> int:
        """Take jobs whose work another job has done off the queue; how many were still waiting.

        Only an optimisation: a job left behind runs, finds its row done and
        does nothing. So Redis trouble here is logged, never raised.
        """
        if self.in_process or not job_ids:
            return 0
        from redis.exceptions import RedisError

        try:
            rq_queue = self.rq_queue(queue)
            full_ids = [f"{self.prefix}--{job_id}" for job_id in job_ids]
            if self._drop_script is None:
                self._drop_script = self.redis.register_script(_DROP_WAITING)
            keys = [rq_queue.key, *(rq_queue.job_class.key_for(full_id) for full_id in full_ids)]
            return int(self._drop_script(keys=keys, args=full_ids))
        except (RedisError, OSError) as exc:
            log.info("could not drop %d finished job(s) from the queue: %s", len(job_ids), type(exc).__name__)
            return 0

    def enqueue(
        self,
        func: JobRef,
        *args: Any,
        job_id: str | None = None,
        queue: str | None = None,
        delay: dt.timedelta | None = None,
        retries: int = 3,
    ) -> bool:
        """Hand job ``func(*args)`` to its queue (or ``queue``); False when it could not (the sweep will).

        ``func`` is a registered job function, or the domain's name for one (models/jobs.py).
        """
        job = registered(func)
        if self.in_process:
            if delay:  # no scheduler in-process: the demo's sweep picks it up
                return False
            return run_now(job, args)
        from redis.exceptions import RedisError
        from rq import Retry
        from rq.exceptions import DuplicateJobError

        options: dict[str, Any] = {
            # Job ids live in one Redis keyspace: the prefix keeps two
            # deployments (or test runs) sharing a Redis from refusing each other's jobs.
            "job_id": f"{self.prefix}--{job_id}" if job_id else None,
            "unique": job_id is not None,
            "result_ttl": 0,  # a finished job frees its id for the next attempt
            "failure_ttl": 30 * 24 * 3600,
            "retry": Retry(max=retries, interval=[10, 60, 300][:retries]) if retries else None,
        }
        try:
            rq_queue = self.rq_queue(queue or job.queue)
            if delay:
                rq_queue.enqueue_at(run_not_before(delay), job.path, *args,
                                    **{k: v for k, v in options.items() if k != "unique"})
            else:
                rq_queue.enqueue_call(job.path, args=args, **options)
            return True
        except DuplicateJobError:
            return True
        except (RedisError, OSError) as exc:
            log.warning("queue unavailable, %s left for the sweep: %s", job.name, type(exc).__name__)
            return False
        except Exception:
            # The row is committed already: never fail the request for the
            # nudge. The sweep finds the row; the log says what went wrong.
            log.exception("could not enqueue %s; left for the sweep", job.name)
            return False


# Takes jobs off a queue, but only those still waiting there: a job a worker
# has already taken keeps its hash, which RQ finishes and drops itself.
_DROP_WAITING = """
local dropped = 0
for i, job_id in ipairs(ARGV) do
  if redis.call('LREM', KEYS[1], 1, job_id) > 0 then
    redis.call('DEL', KEYS[i + 1])
    dropped = dropped + 1
  end
end
return dropped
"""


def run_not_before(delay: dt.timedelta) -> dt.datetime:
    """When a delayed job is due, rounded up to a whole second: RQ's scheduler keeps whole seconds
    and cuts the fraction off, so a job at 12:00:03.7 would run at 12:00:03, early; the job then
    finds its row not yet due and waits again."""
    due = dt.datetime.now(dt.timezone.utc) + delay
    return due if due.microsecond == 0 else due.replace(microsecond=0) + dt.timedelta(seconds=1)


def run_now(job: RegisteredJob, args: tuple[Any, ...]) -> bool:
    """In-process: run at once; a failure is logged and left for the sweep."""
    try:
        job.func(*args)
        return True
    except Exception:
        log.exception("in-process job %s failed; the sweep will retry it", job.name)
        return False
