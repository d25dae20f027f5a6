// node arrow.mjs '<json>': a data user's Arrow reads against a running acechart, with
// apache-arrow as it comes (`tableFromIPC`, no options); prints one JSON document of what
// it read, for tests/test_wire_arrow.py to check against the service's JSON answers.
//
// The argument: {"baseUrl", "token", "site", "points" (list), "start", "end" (ISO, end
// exclusive), "jobStart", "jobEnd" (a range large enough to be answered by a job)}.

import { ACCEPT, ARROW, Client, arrowRows, timeseriesMaybeAsync } from "./client.mjs";

const spec = JSON.parse(process.argv[2]);
const client = new Client(spec.baseUrl, spec.token);
const query = { site: spec.site, points: spec.points.join(","), start: spec.start, end: spec.end };

function describe(table) {
  return {
    fields: table.schema.fields.map((f) => `${f.name}: ${f.type}`),
    metadata: Object.fromEntries(table.schema.metadata),
    batches: table.batches.length,
    rows: arrowRows(table),
  };
}

// format=arrow beats the web app's Accept (MessagePack preferred).
const series = await client.ok("/api/timeseries", { params: { ...query, format: "arrow" } });
// Accept alone, and layout=wide.
const wide = await client.ok("/api/timeseries", {
  params: { ...query, layout: "wide" },
  accept: ARROW,
});
const aggregations = await client.ok("/api/aggregations", {
  params: { ...query, interval: "1hr", format: "arrow" },
});
const aggregated = [];
for (let i = 0; i < aggregations.numRows; i++) {
  const row = aggregations.get(i);
  aggregated.push([row.point, Number(row.time), row.avg, Number(row.count)]);
}
// A job's result, stored as Arrow (the document written series by series).
const job = await timeseriesMaybeAsync(client, {
  site: spec.site,
  points: spec.points.slice(0, 2).join(","),
  start: spec.jobStart,
  end: spec.jobEnd,
  async: "true",
  format: "arrow",
});
const converted = await client.ok(`/api/jobs/${job.jobId}/result`, {
  params: { format: "json" },
  accept: ACCEPT,
});

console.log(
  JSON.stringify({
    series: describe(series),
    wide: describe(wide),
    aggregations: { ...describe(aggregations), buckets: aggregated },
    job: { asynchronous: job.asynchronous, ...describe(job.doc) },
    jobJson: converted.series.map((s) => [s.name, s.data.length]),
    contentTypes: [...client.contentTypes].sort(),
  }),
);
