// node run.mjs '<json>': what the web app does on a dashboard, against a running acechart;
// prints one JSON document of everything it read, for tests/test_compat_node.py to check.
//
// The argument: {"baseUrl", "token", "start", "end" (ISO, the chart's range, end included
// by the paginated route), "pageSize", "jobStart", "jobEnd" (a range large enough to be
// answered by a background job)}.

import { Client, timeseriesMaybeAsync, timeseriesRows, walkPaginated } from "./client.mjs";

const spec = JSON.parse(process.argv[2]);
const client = new Client(spec.baseUrl, spec.token);

const health = await client.ok("/api/health");
const sites = await client.ok("/api/sites");
const site = sites.items[0].name;
const listing = await client.ok(`/api/sites/${encodeURIComponent(site)}/configured_points`, {
  params: { per_page: 100 },
});
const points = listing.items
  .map((p) => p.name)
  .filter((name) => name.endsWith("Temp"))
  .slice(0, 3);

const paginated = await walkPaginated(client, site, {
  start_time: spec.start,
  end_time: spec.end,
  page_size: spec.pageSize,
  raw_data: "true",
  point_names: points.join(","),
});

const endExclusive = new Date(new Date(spec.end).getTime() + 1).toISOString();
const columns = await client.ok("/api/timeseries", {
  params: { site, points: points.join(","), start: spec.start, end: endExclusive, layout: "columns" },
});

const job = await timeseriesMaybeAsync(client, {
  site,
  points: points.slice(0, 2).join(","),
  start: spec.jobStart,
  end: spec.jobEnd,
  async: "true",
  layout: "columns",
});

console.log(
  JSON.stringify({
    health,
    site,
    sitesTotal: sites.total,
    pointsTotal: listing.total,
    points,
    paginated: { rows: paginated.rows, pages: paginated.pages },
    columns: { rows: timeseriesRows(columns), totalSamples: columns.metadata.totalSamples },
    job: {
      asynchronous: job.asynchronous,
      jobId: job.jobId,
      polls: job.polls,
      points: points.slice(0, 2),
      rows: timeseriesRows(job.doc),
    },
    contentTypes: [...client.contentTypes].sort(),
    requests: client.requests,
  }),
);
