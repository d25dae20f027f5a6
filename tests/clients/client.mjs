// A small client that asks acechart what the old Worker's web app asked, the way a
// browser app does: fetch with X-ACE-Token, MessagePack preferred, JSON understood (and
// an Arrow IPC stream, read by apache-arrow, when one is asked for).
// Written for the tests from the API's description only (clean room).

import { decode } from "@msgpack/msgpack";
import { tableFromIPC } from "apache-arrow";

export const ACCEPT = "application/x-msgpack, application/json";
export const ARROW = "application/vnd.apache.arrow.stream";

export class Client {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.requests = 0;
    this.contentTypes = new Set();
  }

  url(path, params = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    return url;
  }

  // One request; the body decoded by its Content-Type. A 429 is waited out (Retry-After).
  async request(path, { params = {}, method = "GET", body, accept = ACCEPT } = {}) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const headers = { "X-ACE-Token": this.token, Accept: accept };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      this.requests++;
      const res = await fetch(this.url(path, params), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (res.status === 429) {
        const wait = Number(res.headers.get("Retry-After") ?? "1");
        await sleep(Math.min(wait, 5) * 1000);
        continue;
      }
      const type = res.headers.get("Content-Type") ?? "";
      this.contentTypes.add(type.split(";")[0]);
      const bytes = new Uint8Array(await res.arrayBuffer());
      let doc = null;
      if (bytes.length && type.startsWith(ARROW)) {
        doc = tableFromIPC(bytes);
      } else if (bytes.length) {
        doc = type.includes("msgpack") ? decode(bytes) : JSON.parse(new TextDecoder().decode(bytes));
      }
      return { status: res.status, headers: res.headers, doc };
    }
    throw new Error(`${path}: still rate limited after 20 tries`);
  }

  async ok(path, options) {
    const res = await this.request(path, options);
    if (res.status !== 200) {
      throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(res.doc)}`);
    }
    return res.doc;
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Every page of a paginated walk: follow next_cursor until has_more is false. Values are
// read with parseFloat (null stays null), times with new Date.
export async function walkPaginated(client, site, params) {
  const rows = [];
  let cursor;
  let pages = 0;
  for (;;) {
    const page = await client.ok(`/api/sites/${encodeURIComponent(site)}/timeseries/paginated`, {
      params: { ...params, cursor },
    });
    pages++;
    for (const sample of page.point_samples) {
      const time = new Date(sample.time);
      if (Number.isNaN(time.getTime())) throw new Error(`unreadable time ${sample.time}`);
      const value = sample.value === null ? null : parseFloat(sample.value);
      rows.push([sample.name, time.getTime(), value]);
    }
    if (!page.has_more) {
      if (page.next_cursor !== null) throw new Error("last page with a cursor");
      return { rows, pages };
    }
    if (!page.next_cursor || page.next_cursor === cursor) throw new Error("the cursor stalled");
    cursor = page.next_cursor;
  }
}

// A MessagePack `bin` arrives as a Uint8Array *view* into the response's buffer, at
// whatever offset the field had in the document: usually not a multiple of 8, and a
// Float64Array cannot be laid over an unaligned offset (RangeError). So the bytes are
// copied into a fresh ArrayBuffer (slice copies; a new buffer starts aligned) and read
// there. The arrays are little-endian float64, the byte order of every platform Node
// runs on.
export function float64s(bin) {
  if (!(bin instanceof Uint8Array)) throw new Error("expected a bin field");
  if (bin.byteLength % 8 !== 0) throw new Error(`bin of ${bin.byteLength} bytes`);
  const copy = bin.slice();
  return new Float64Array(copy.buffer, 0, copy.byteLength / 8);
}

// The rows of a timeseries document: `layout=columns` (t and v as float64 bins) or rows.
export function timeseriesRows(doc) {
  const rows = [];
  for (const series of doc.series) {
    if (series.t !== undefined) {
      const t = float64s(series.t);
      const v = float64s(series.v);
      for (let i = 0; i < t.length; i++) {
        rows.push([series.name, t[i], Number.isNaN(v[i]) ? null : v[i]]);
      }
    } else {
      for (const [t, v] of series.data) rows.push([series.name, t, v]);
    }
  }
  return rows;
}

// The rows of an Arrow table as `[point, ms, value]` (NaN as null, like JSON): the
// `series` layout's point/time/value columns, or the `wide` layout's time column and one
// column per point (a null there is no sample, and is skipped).
export function arrowRows(table) {
  const names = table.schema.fields.map((f) => f.name);
  const rows = [];
  const time = table.getChild("time");
  const num = (v) => (v === null || Number.isNaN(v) ? null : v);
  if (names.includes("point")) {
    const point = table.getChild("point");
    const value = table.getChild("value");
    for (let i = 0; i < table.numRows; i++) {
      rows.push([point.get(i), Number(time.get(i)), num(value.get(i))]);
    }
    return rows;
  }
  for (const name of names.filter((n) => n !== "time")) {
    const column = table.getChild(name);
    for (let i = 0; i < table.numRows; i++) {
      const v = column.get(i);
      if (v !== null) rows.push([name, Number(time.get(i)), num(v)]);
    }
  }
  return rows;
}

// A query that may be answered later: a 202 is followed by polling the job until it
// is done, then its result is fetched (in the same representation the query asked for).
export async function timeseriesMaybeAsync(client, params, { pollMs = 200 } = {}) {
  const first = await client.request("/api/timeseries", { params });
  if (first.status === 200) return { asynchronous: false, doc: first.doc };
  if (first.status !== 202) {
    throw new Error(`timeseries: HTTP ${first.status} ${JSON.stringify(first.doc)}`);
  }
  const statusUrl = first.headers.get("Location") ?? first.doc.statusUrl;
  let polls = 0;
  for (;;) {
    const job = await client.ok(statusUrl);
    polls++;
    if (job.status === "completed") {
      const result = await client.ok(job.resultUrl, {
        params: { format: params.format, layout: params.layout },
      });
      return { asynchronous: true, jobId: first.doc.jobId, polls, doc: result };
    }
    if (job.status === "failed" || job.status === "cancelled") {
      throw new Error(`job ${job.jobId} ${job.status}: ${job.message}`);
    }
    await sleep(pollMs);
  }
}
