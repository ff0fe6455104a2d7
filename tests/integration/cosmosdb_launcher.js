"use strict";
// Starts @vercel/cosmosdb-server 1.0.1 (pinned: this patches its internals) with the
// fixes the shard store's tests need. Usage: node cosmosdb_launcher.js <npm prefix>
//  1. a read of a missing item answers 404 NotFound (stock: 500 from a TypeError);
//  2. connections are kept alive (stock: `connection: close`, a TLS handshake per call);
//  3. transactional batch: the partition key comes from the request header as the
//     Python SDK sends it (stock: per operation only, so every batch failed) and the
//     batch is all-or-nothing (stock: applies operations up to the first failure);
//  4. a transactional batch over 2 MB answers 413, as the service does (stock: no limit);
//  5. test hook `POST /_test/throttle {"count", "retryAfterMs"}`: the next `count`
//     document requests answer 429 with `x-ms-retry-after-ms`, as a throttled account does.
// Queries that name a partition key always filter on it (the store's own rule), so the
// stock "missing partition keys" check needs no patch.
const path = require("path");

const root = path.join(process.argv[2], "node_modules", "@vercel", "cosmosdb-server", "lib");
const lib = (name) => require(path.join(root, name));

const readDocument = lib("handler/read-document");
const batchDocuments = lib("handler/batch-documents");
const ops = lib("handler/_document-operations");
const { parsePartitionKey } = lib("utils/get-partition-from-header");
const readJson = lib("json").default;

const notFound = (res) => {
  res.statusCode = 404;
  return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
};

const stockRead = readDocument.default;
readDocument.default = async (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  const header = req.headers["x-ms-documentdb-partitionkey"];
  if (!collection.read()) return notFound(res);
  if (header) {
    let partition;
    try {
      partition = parsePartitionKey(header, params.docId);
    } catch (err) {
      res.statusCode = 400;
      return { code: "BadRequest", message: err.message };
    }
    if (!collection.document(params.docId, partition).read()) return notFound(res);
  }
  return stockRead(account, req, res, params);
};

// What an operation would do to the state seen so far: null when it would succeed.
function wouldFail(collection, op, staged) {
  const id = op.id || (op.resourceBody && op.resourceBody.id);
  if (!id) return 400;
  const key = JSON.stringify([op.partitionKey, id]);
  const stored = key in staged ? staged[key] : collection.document(id, parsePartitionKey(op.partitionKey, id)).read() || null;
  const etag = stored ? stored._etag : null;
  switch (op.operationType) {
    case "Create":
      if (stored) return 409;
      staged[key] = { _etag: "staged" };
      return null;
    case "Upsert":
      if (op.ifMatch && stored && op.ifMatch !== etag) return 412;
      staged[key] = { _etag: "staged" };
      return null;
    case "Replace":
      if (!stored) return 404;
      if (op.ifMatch && op.ifMatch !== etag) return 412;
      staged[key] = { _etag: "staged" };
      return null;
    case "Read":
      return stored ? null : 404;
    case "Delete":
      if (!stored) return 404;
      if (op.ifMatch && op.ifMatch !== etag) return 412;
      staged[key] = null;
      return null;
    default:
      return 400;
  }
}

const apply = {
  Create: ops.createOperation,
  Upsert: ops.upsertOperation,
  Replace: ops.replaceOperation,
  Read: ops.readOperation,
  Delete: ops.deleteOperation,
};

const MAX_REQUEST_BYTES = 2 * 1024 * 1024;

batchDocuments.default = async (account, req, res, params) => {
  const body = await readJson(req);
  if (Buffer.byteLength(JSON.stringify(body)) > MAX_REQUEST_BYTES) {
    res.statusCode = 413;
    return { code: "RequestEntityTooLarge", message: "Request size is too large" };
  }
  const collection = account.database(params.dbId).collection(params.collId);
  if (!collection.read()) return notFound(res);
  if (!Array.isArray(body)) {
    res.statusCode = 400;
    return { message: "Invalid request body" };
  }
  const header = req.headers["x-ms-documentdb-partitionkey"];
  const batch = body.map((op) => ({ ...op, partitionKey: op.partitionKey || header }));
  // All or nothing: check every operation against the state the earlier ones leave,
  // answer 424 for all but the first failure, and apply nothing.
  const staged = {};
  const failures = batch.map((op) => wouldFail(collection, op, staged));
  const first = failures.findIndex((f) => f !== null);
  if (first >= 0) {
    res.statusCode = failures[first];
    return batch.map((_, i) => ({ statusCode: i === first ? failures[first] : 424, requestCharge: 0 }));
  }
  return batch.map((op) => {
    const result = apply[op.operationType](collection, op);
    return {
      statusCode: result.statusCode,
      requestCharge: 1,
      eTag: result.body ? result.body._etag : undefined,
      resourceBody: result.body,
    };
  });
};

const { createHttpsServer } = lib("index");
const server = createHttpsServer({ keepAlive: true });
server.keepAliveTimeout = 120000;

let throttle = { count: 0, retryAfterMs: 0 };
const serve = server.listeners("request")[0];
server.removeAllListeners("request");
server.on("request", (req, res) => {
  if (req.method === "POST" && req.url === "/_test/throttle") {
    readJson(req).then((wanted) => {
      throttle = { count: wanted.count || 0, retryAfterMs: wanted.retryAfterMs || 0 };
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(throttle));
    });
    return;
  }
  if (throttle.count > 0 && req.url.includes("/docs")) {
    throttle.count -= 1;
    req.resume();
    res.statusCode = 429;
    res.setHeader("content-type", "application/json");
    res.setHeader("x-ms-retry-after-ms", String(throttle.retryAfterMs));
    res.setHeader("x-ms-request-charge", "0");
    res.end(JSON.stringify({ code: "TooManyRequests", message: "Request rate is large (test)" }));
    return;
  }
  serve(req, res);
});
server.listen(0, "127.0.0.1", () => {
  console.log(`Ready to accept HTTPS connections at 127.0.0.1:${server.address().port}`);
});
