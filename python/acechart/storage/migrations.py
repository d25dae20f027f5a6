"""Versioned schema migrations of the database (SQLite, and PostgreSQL through `dialect.py`).

Each migration has a number, a name and its statements. `Database.open` applies
the ones a file lacks, each in its own transaction together with its row in
`schema_version`, so a crash mid-migration leaves the previous version intact.

Never edit a migration once it has been released: add a new one. The
checksum of each applied migration is stored, and opening a database whose
recorded checksum differs from the code's fails loudly instead of running on
a schema nobody can reproduce.

Units. Housekeeping times (`created_at`, `updated_at`, `expires_at`,
`last_accessed`, `last_updated`, `started_at`, `completed_at`) are unix seconds,
as the seed's `DEFAULT (unixepoch())` says. Data times are unix milliseconds,
like every timestamp on the wire: `timeseries_aggregations.timestamp` (bucket
start), `cache_metadata.start_time` / `end_time` / `period_start`, the intervals
in `covered` (in `aggregate_blocks.covered` each beside its unix-second expiry),
and `queue_jobs.start_time` / `end_time`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: statements run in order inside one transaction."""

    version: int
    name: str
    statements: tuple[str, ...]
    postgres: tuple[tuple[int, str], ...] = ()
    """PostgreSQL variants of statements the dialect rewrite cannot express, by index.
    Outside the checksum: the SQLite statements are the migration's identity."""

    def statements_for(self, dialect: str) -> tuple[str, ...]:
        """The statements to run on `dialect` (`sqlite` or `postgresql`)."""
        if dialect == "sqlite" or not self.postgres:
            return self.statements
        replaced = dict(self.postgres)
        return tuple(replaced.get(i, s) for i, s in enumerate(self.statements))

    @property
    def checksum(self) -> str:
        """SHA-256 of the statements, recorded to detect a released migration being edited."""
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()


_SEED_SCHEMA = Migration(
    1,
    "seed schema (seed-design.md section 2.2)",
    (
        # The seed declares `id INTEGER PRIMARY KEY AUTOINCREMENT` on a WITHOUT ROWID
        # table, which SQLite rejects: AUTOINCREMENT needs a rowid, and a WITHOUT ROWID
        # table's primary key is its storage order. We keep WITHOUT ROWID and make the
        # seed's UNIQUE key the PRIMARY KEY (the UNIQUE clause stays; SQLite folds it
        # into the primary key index). That was the point of WITHOUT ROWID: rows are
        # clustered by (site, point, level, timestamp), so a chart's range read is one
        # sequential scan and no second b-tree stores the key again. Measured on 438k
        # rows (50 points x 1 year of 1hr buckets) against the other fix (a rowid table
        # with AUTOINCREMENT and a separate UNIQUE index): a third smaller on disk and
        # about a quarter faster to write. `id` stays as a plain nullable column so
        # the seed's columns all exist; nothing refers to aggregation rows by id, and
        # acechart leaves it NULL.
        # `timestamp` is the bucket start in unix milliseconds (see module docstring).
        """
        CREATE TABLE IF NOT EXISTS timeseries_aggregations (
          id INTEGER,
          site_id TEXT NOT NULL,
          point_name TEXT NOT NULL,
          aggregation_level TEXT NOT NULL, -- '1min', '5min', '1hr', '1day'
          timestamp INTEGER NOT NULL, -- bucket start, unix milliseconds
          avg_value REAL,
          min_value REAL,
          max_value REAL,
          sum_value REAL,
          count INTEGER,
          stddev REAL,
          created_at INTEGER DEFAULT (unixepoch()),
          PRIMARY KEY (site_id, point_name, aggregation_level, timestamp),
          UNIQUE (site_id, point_name, aggregation_level, timestamp)
        ) WITHOUT ROWID
        """,
        """
        CREATE INDEX idx_agg_lookup ON timeseries_aggregations(
          site_id, point_name, aggregation_level, timestamp
        )
        """,
        """
        CREATE INDEX idx_agg_time ON timeseries_aggregations(
          timestamp, aggregation_level
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS chart_configs (
          id TEXT PRIMARY KEY,
          user_id TEXT NOT NULL,
          site_id TEXT NOT NULL,
          chart_type TEXT NOT NULL, -- 'line', 'bar', 'scatter', 'heatmap'
          title TEXT,
          point_names TEXT NOT NULL, -- JSON array
          config_json TEXT NOT NULL, -- Full ECharts config
          thumbnail_url TEXT,
          is_public BOOLEAN DEFAULT 0,
          view_count INTEGER DEFAULT 0,
          created_at INTEGER DEFAULT (unixepoch()),
          updated_at INTEGER DEFAULT (unixepoch())
        )
        """,
        "CREATE INDEX idx_chart_user ON chart_configs(user_id, created_at)",
        "CREATE INDEX idx_chart_site ON chart_configs(site_id, is_public)",
        "CREATE INDEX idx_chart_popular ON chart_configs(view_count DESC)",
        """
        CREATE TABLE IF NOT EXISTS cache_metadata (
          cache_key TEXT PRIMARY KEY,
          site_id TEXT NOT NULL,
          point_names TEXT NOT NULL, -- JSON array
          start_time INTEGER NOT NULL,
          end_time INTEGER NOT NULL,
          aggregation TEXT NOT NULL,
          r2_key TEXT NOT NULL,
          size_bytes INTEGER,
          sample_count INTEGER,
          created_at INTEGER DEFAULT (unixepoch()),
          expires_at INTEGER NOT NULL,
          hit_count INTEGER DEFAULT 0,
          last_accessed INTEGER DEFAULT (unixepoch())
        )
        """,
        "CREATE INDEX idx_cache_expiry ON cache_metadata(expires_at)",
        "CREATE INDEX idx_cache_site ON cache_metadata(site_id, start_time)",
        "CREATE INDEX idx_cache_popular ON cache_metadata(hit_count DESC)",
        """
        CREATE TABLE IF NOT EXISTS queue_jobs (
          job_id TEXT PRIMARY KEY,
          user_id TEXT NOT NULL,
          site_id TEXT NOT NULL,
          point_names TEXT NOT NULL, -- JSON array
          start_time INTEGER NOT NULL,
          end_time INTEGER NOT NULL,
          job_type TEXT NOT NULL, -- 'large_query', 'export', 'aggregation'
          status TEXT NOT NULL, -- 'pending', 'processing', 'completed', 'failed'
          progress INTEGER DEFAULT 0, -- 0-100
          result_key TEXT, -- R2 key when completed
          error_message TEXT,
          created_at INTEGER DEFAULT (unixepoch()),
          started_at INTEGER,
          completed_at INTEGER,
          estimated_duration INTEGER
        )
        """,
        "CREATE INDEX idx_job_user ON queue_jobs(user_id, created_at DESC)",
        "CREATE INDEX idx_job_status ON queue_jobs(status, created_at)",
        """
        CREATE TABLE IF NOT EXISTS point_metadata (
          site_id TEXT NOT NULL,
          point_name TEXT NOT NULL,
          display_name TEXT NOT NULL,
          equipment TEXT,
          equipment_id TEXT,
          equipment_name TEXT,
          point_type TEXT,
          unit TEXT,
          marker_tags TEXT, -- JSON array
          quality_score INTEGER,
          ai_insights TEXT, -- JSON object
          last_updated INTEGER DEFAULT (unixepoch()),
          PRIMARY KEY (site_id, point_name)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX idx_point_equipment ON point_metadata(site_id, equipment)",
        "CREATE INDEX idx_point_type ON point_metadata(point_type)",
        "CREATE INDEX idx_point_quality ON point_metadata(quality_score DESC)",
    ),
)

_BLOCK_STORE_AND_JOBS = Migration(
    2,
    "mergeable aggregates, block store metadata, durable jobs, ACE point fields",
    (
        # Mergeable state of a bucket, as the Rust core's aggregate() returns it. With
        # count, avg and m2 (sum of squared deviations from the mean) two partial buckets
        # combine exactly and stably (Chan et al.), so a sealed 5min bucket extended by
        # late samples, or rolled up into 1hr and 1day, never needs the raw samples
        # again; stddev alone cannot be merged. first/last values keep the bucket's
        # open/close for step charts and for merging buckets in time order.
        "ALTER TABLE timeseries_aggregations ADD COLUMN m2 REAL",
        "ALTER TABLE timeseries_aggregations ADD COLUMN first_value REAL",
        "ALTER TABLE timeseries_aggregations ADD COLUMN last_value REAL",
        # idx_agg_lookup repeats the primary key column for column: pure write cost, the
        # primary key serves those lookups. idx_agg_time (timestamp first) would serve
        # only the periodic retention sweep, yet rows arrive point by point in time order,
        # so every insert lands at a random place of that index: measured, it doubled
        # the time to write 50 points x 1 year of 1hr buckets (3.3 s -> 7.2 s). The
        # sweep (`Database.delete_aggregations`) runs rarely and scans instead.
        "DROP INDEX IF EXISTS idx_agg_lookup",
        "DROP INDEX IF EXISTS idx_agg_time",
        # The block store keeps one row per block (one point, one UTC period): the seed's
        # row described a cached answer for a point list. cache_key = r2_key = the object
        # key, point_names = a one-element list, aggregation = 'raw', and start_time /
        # end_time = the extent of the covered intervals (ms). The new columns:
        #   point_name   the block's point, so a point's blocks are found without JSON;
        #   period_start the UTC period the block holds (ms), its identity with the point;
        #   covered      JSON list of [start, end) ms intervals the block holds for sure:
        #                a read serves these and fetches only the rest from the origin;
        #   tier         the seed's TTL class (section 3.3) that set expires_at;
        #   version      generation of the block, +1 on every rewrite, so a reader can
        #                tell a block changed under it and a writer can compare-and-set.
        "ALTER TABLE cache_metadata ADD COLUMN point_name TEXT",
        "ALTER TABLE cache_metadata ADD COLUMN period_start INTEGER",
        "ALTER TABLE cache_metadata ADD COLUMN covered TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE cache_metadata ADD COLUMN tier TEXT"
        " CHECK (tier IN ('realtime', 'recent', 'historical', 'archived'))",
        "ALTER TABLE cache_metadata ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        # Size-budget eviction picks least recently used blocks first.
        "CREATE INDEX idx_cache_lru ON cache_metadata(last_accessed)",
        # All blocks of one point, in period order (invalidation, debugging).
        "CREATE INDEX idx_cache_block ON cache_metadata(site_id, point_name, period_start)",
        # Durable jobs (survive a restart, retried, cancellable). SQLite cannot add a
        # CHECK to an existing column or a column with a non-constant default, so the
        # table is rebuilt with the seed's columns first, then:
        #   attempts         runs started, to retry a crashed job a bounded number of times;
        #   token_hmac       HMAC of the caller's token: the job runs with its rights and
        #                    only that caller may read the result; never the token itself;
        #   request_json     the full query (interval, format, downsampling), beyond the
        #                    seed's point_names/start/end;
        #   result_format    json / msgpack / csv of the object under result_key;
        #   result_size      its size in bytes, for Content-Length and quotas;
        #   updated_at       last heartbeat or progress write, to find jobs whose
        #                    worker died (status 'processing' but stale);
        #   cancel_requested set by DELETE /api/jobs/:id, seen by the worker at its next
        #                    progress write; the job then ends as 'cancelled'.
        # The status CHECK makes a typo'd status an error instead of a stuck job.
        """
        CREATE TABLE queue_jobs_v2 (
          job_id TEXT PRIMARY KEY,
          user_id TEXT NOT NULL,
          site_id TEXT NOT NULL,
          point_names TEXT NOT NULL, -- JSON array
          start_time INTEGER NOT NULL,
          end_time INTEGER NOT NULL,
          job_type TEXT NOT NULL, -- 'large_query', 'export', 'aggregation'
          status TEXT NOT NULL
            CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
          progress INTEGER DEFAULT 0, -- 0-100
          result_key TEXT, -- object key when completed
          error_message TEXT,
          created_at INTEGER DEFAULT (unixepoch()),
          started_at INTEGER,
          completed_at INTEGER,
          estimated_duration INTEGER,
          attempts INTEGER DEFAULT 0,
          token_hmac TEXT,
          request_json TEXT,
          result_format TEXT,
          result_size INTEGER,
          updated_at INTEGER DEFAULT (unixepoch()),
          cancel_requested INTEGER DEFAULT 0
        )
        """,
        """
        INSERT INTO queue_jobs_v2 (
          job_id, user_id, site_id, point_names, start_time, end_time, job_type, status,
          progress, result_key, error_message, created_at, started_at, completed_at,
          estimated_duration, updated_at
        )
        SELECT
          job_id, user_id, site_id, point_names, start_time, end_time, job_type, status,
          progress, result_key, error_message, created_at, started_at, completed_at,
          estimated_duration, COALESCE(completed_at, started_at, created_at)
        FROM queue_jobs
        """,
        "DROP TABLE queue_jobs",
        "ALTER TABLE queue_jobs_v2 RENAME TO queue_jobs",
        "CREATE INDEX idx_job_user ON queue_jobs(user_id, created_at DESC)",
        "CREATE INDEX idx_job_status ON queue_jobs(status, created_at)",
        # ACE's configured_points carry kv_tags (JSON object) and the collection
        # interval in seconds, which tells the planner a point's expected sample density.
        "ALTER TABLE point_metadata ADD COLUMN kv_tags TEXT",
        "ALTER TABLE point_metadata ADD COLUMN collect_interval INTEGER",
    ),
)

_AGGREGATE_COVERAGE = Migration(
    3,
    "aggregate coverage",
    (
        # The aggregate tier (cache/aggregates.py) must know which time ranges of a
        # point it holds completely at a level: a missing bucket row may mean "no
        # samples" or "never computed", and only the second may go to the origin.
        # One row per stored range [start_ms, end_ms) (ms), with the expiry (unix s)
        # its TTL tier gave it; the retention sweep drops buckets no live row covers.
        """
        CREATE TABLE aggregate_coverage (
          site_id TEXT NOT NULL,
          point_name TEXT NOT NULL,
          level TEXT NOT NULL,
          start_ms INTEGER NOT NULL,
          end_ms INTEGER NOT NULL,
          expires_at INTEGER NOT NULL,
          CHECK (start_ms < end_ms)
        )
        """,
        "CREATE INDEX idx_aggcov_lookup ON aggregate_coverage(site_id, level, point_name)",
        "CREATE INDEX idx_aggcov_expiry ON aggregate_coverage(expires_at)",
    ),
)

_JOB_QUEUE = Migration(
    4,
    "job queue: priority, backoff, deduplication, sealed tokens, failure details, expiry",
    (
        # What the job runner (acechart/jobs) needs beyond migration 2's columns:
        #   priority        the QueueMessage priority as a number (0 low, 1 normal, 2 high),
        #                   so the next job to run is one indexed ORDER BY;
        #   not_before_ms   unix ms before which a pending job is not picked up: the backoff
        #                   of a retried job (ms, because test and origin backoffs are
        #                   sub-second);
        #   dedup_key       SHA-256 of the owner's token HMAC and the normalised request;
        #                   the partial unique index below makes a second identical submit
        #                   find the first job while it is pending or processing, even
        #                   from another process;
        #   token_sealed    the owner's token, encrypted (Fernet) with the job token key, so
        #                   a job resumed after a restart reads with its owner's rights; the
        #                   token is never stored in clear and is erased when the job ends;
        #   error_code, retryable, retry_after_s
        #                   the seed's failed-job body (section 6.2) beside error_message;
        #   estimated_remaining
        #                   seconds left as the worker estimated at updated_at;
        #   expires_at      unix s after which the sweeper deletes a finished job and its
        #                   result (completed, failed or cancelled; NULL while live).
        "ALTER TABLE queue_jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE queue_jobs ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE queue_jobs ADD COLUMN dedup_key TEXT",
        "ALTER TABLE queue_jobs ADD COLUMN token_sealed TEXT",
        "ALTER TABLE queue_jobs ADD COLUMN error_code TEXT",
        "ALTER TABLE queue_jobs ADD COLUMN retryable INTEGER",
        "ALTER TABLE queue_jobs ADD COLUMN retry_after_s INTEGER",
        "ALTER TABLE queue_jobs ADD COLUMN estimated_remaining INTEGER",
        "ALTER TABLE queue_jobs ADD COLUMN expires_at INTEGER",
        """
        CREATE UNIQUE INDEX idx_job_dedup ON queue_jobs(dedup_key)
        WHERE status IN ('pending', 'processing')
        """,
        # The claim query: pending jobs, highest priority first, oldest first.
        "CREATE INDEX idx_job_claim ON queue_jobs(status, priority DESC, created_at)",
        "CREATE INDEX idx_job_expiry ON queue_jobs(expires_at) WHERE expires_at IS NOT NULL",
    ),
)

_AGGREGATE_BLOCKS = Migration(
    5,
    "columnar aggregates: one blob per point, level and UTC month",
    (
        # Reading 50 points x 1 year of 1hr buckets as 437k rows of
        # timeseries_aggregations cost 1.7 s, all of it in building Python row tuples
        # and converting them back into arrays. The aggregate tier now keeps one row per
        # (site, point, level, UTC month) whose `data` is the mergeable state of every
        # bucket of that month (ts, count, sum, min, max, m2, first, last), encoded by
        # the Rust core (`encode_agg_block`: byte-shuffled columns in a zstd frame with
        # a checksum covering site, point, level and period). A query reads one row per
        # point and month (650 for that query) and decodes them in one Rust call.
        #   period      UTC month 'YYYY-MM' (sorts as text, so ranges are key ranges);
        #   covered     JSON [[start_ms, end_ms, expires_at], ...]: the intervals the
        #               blob holds every bucket of (the blob records them too, under its
        #               checksum), each with the expiry (unix s) its TTL tier gave it;
        #               this replaces the aggregate_coverage table;
        #   expires_at  the earliest expiry in `covered`: when the sweep must next look;
        #   buckets     bucket count of `data` (metrics, debugging);
        #   updated_at  unix s of the last write.
        # `covered` comes before `data`, so a coverage lookup never reads a blob's
        # overflow pages. A rowid table (not WITHOUT ROWID): rows hold blobs of tens of
        # kilobytes, which SQLite's documentation advises against clustering.
        """
        CREATE TABLE aggregate_blocks (
          site_id TEXT NOT NULL,
          point_name TEXT NOT NULL,
          level TEXT NOT NULL CHECK (level IN ('5min', '1hr', '1day')),
          period TEXT NOT NULL,
          covered TEXT NOT NULL,
          expires_at INTEGER NOT NULL,
          buckets INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          data BLOB NOT NULL,
          PRIMARY KEY (site_id, point_name, level, period)
        )
        """,
        "CREATE INDEX idx_aggblock_expiry ON aggregate_blocks(expires_at)",
        # The row tier's bookkeeping goes; its rows are a cache of what raw blocks and
        # the origin hold, so they are dropped rather than converted (a later query
        # recomputes them). The seed's timeseries_aggregations table itself stays, as
        # the seed's schema promises, but acechart no longer writes or reads it.
        "DROP TABLE aggregate_coverage",
        "DELETE FROM timeseries_aggregations",
    ),
)

_POINT_ORIGIN_ITEMS = Migration(
    6,
    "the origin's own configured_points item of each point",
    (
        # The ACE-shaped `/api/sites/{site}/configured_points` answers field for field
        # what the origin listed (id, client, site, bacnet_data, collect_config,
        # created, updated, ... and whatever fields the origin adds later), so the
        # catalogue keeps each point's item whole beside the columns it searches by.
        # JSON object; NULL for rows written before this migration (the next catalogue
        # refresh fills it in).
        "ALTER TABLE point_metadata ADD COLUMN origin_item TEXT",
    ),
)

_JOB_SUBSCRIBERS = Migration(
    7,
    "every notifyUrl of a job: the submitter's and those of identical requests that joined it",
    (
        # An identical request joins the live job (queue_jobs.dedup_key) instead of
        # queuing a second one; its notifyUrl must be called too, after a restart as
        # well, so each job's notifyUrls are rows here, in the order they came. The
        # first one stays in request_json too (the seed's QueueMessage carries it).
        """
        CREATE TABLE job_subscribers (
          id INTEGER PRIMARY KEY,
          job_id TEXT NOT NULL REFERENCES queue_jobs(job_id) ON DELETE CASCADE,
          notify_url TEXT NOT NULL,
          created_at INTEGER NOT NULL DEFAULT (unixepoch()),
          UNIQUE (job_id, notify_url)
        )
        """,
        # Jobs queued before this migration keep their one notifyUrl.
        """
        INSERT OR IGNORE INTO job_subscribers (job_id, notify_url)
        SELECT job_id, json_extract(request_json, '$.metadata.notifyUrl') FROM queue_jobs
        WHERE json_valid(request_json)
          AND json_extract(request_json, '$.metadata.notifyUrl') IS NOT NULL
        """,
    ),
    # PostgreSQL 15 has no json_valid; a PostgreSQL database is created by acechart
    # versions that always write request_json as JSON.
    postgres=(
        (
            1,
            """
            INSERT INTO job_subscribers (job_id, notify_url)
            SELECT job_id, CAST(request_json AS json) #>> '{metadata,notifyUrl}' FROM queue_jobs
            WHERE request_json IS NOT NULL
              AND CAST(request_json AS json) #>> '{metadata,notifyUrl}' IS NOT NULL
            ON CONFLICT DO NOTHING
            """,
        ),
    ),
)

_AGGREGATE_15MIN = Migration(
    8,
    "15min is a stored aggregate level",
    (
        # 15min is the utility demand interval, and the level local days of zones with
        # 30- or 45-minute offsets (Asia/Kathmandu, Asia/Kolkata) roll up from. SQLite
        # cannot change a CHECK constraint in place, so the table is rebuilt with the
        # rows it holds.
        """
        CREATE TABLE aggregate_blocks_new (
          site_id TEXT NOT NULL,
          point_name TEXT NOT NULL,
          level TEXT NOT NULL CHECK (level IN ('5min', '15min', '1hr', '1day')),
          period TEXT NOT NULL,
          covered TEXT NOT NULL,
          expires_at INTEGER NOT NULL,
          buckets INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          data BLOB NOT NULL,
          PRIMARY KEY (site_id, point_name, level, period)
        )
        """,
        "INSERT INTO aggregate_blocks_new SELECT * FROM aggregate_blocks",
        "DROP TABLE aggregate_blocks",
        "ALTER TABLE aggregate_blocks_new RENAME TO aggregate_blocks",
        "CREATE INDEX idx_aggblock_expiry ON aggregate_blocks(expires_at)",
    ),
)

_CHART_QUERY = Migration(
    9,
    "saved charts: the query each chart draws",
    (
        # A saved chart (`/api/charts`, the seed's chart_configs) is drawn from data: its
        # range (`start`, `end`: dates, ISO times, epoch ms or relative times such as
        # "-7d" and "now", kept as given so a "last week" chart stays the last week),
        # interval, statistic and time zone, as a JSON object. The thumbnail is rendered
        # from it; the ECharts options themselves stay in config_json.
        "ALTER TABLE chart_configs ADD COLUMN query_json TEXT",
    ),
)

#: Every migration, in order. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    _SEED_SCHEMA,
    _BLOCK_STORE_AND_JOBS,
    _AGGREGATE_COVERAGE,
    _JOB_QUEUE,
    _AGGREGATE_BLOCKS,
    _POINT_ORIGIN_ITEMS,
    _JOB_SUBSCRIBERS,
    _AGGREGATE_15MIN,
    _CHART_QUERY,
)
