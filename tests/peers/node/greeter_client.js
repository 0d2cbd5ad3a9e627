#!/usr/bin/env node
// h2lb test client in Node.js: unary h2lb.Greeter/SayHello calls over ONE
// @grpc/grpc-js channel (one HTTP/2 connection).
//
//   node greeter_client.js --target HOST:PORT [--calls N] [--concurrency C]
//                          [--timeout S] [--reply-size BYTES]
//
// No protoc: the two messages are encoded by hand (see ../greeter_pb.py):
//   HelloRequest { string name = 1; bytes payload = 2; int32 count = 3;
//                  int32 delay_ms = 4; int32 reply_size = 5; }
//   HelloReply   { string message = 1; bytes payload = 2; }
// The backend of a call is parsed from "Hello from backend-X", and checked
// against the reply's trailing metadata "x-backend".
//
// Prints one JSON line {"ok","errors","calls","by_backend","error_codes",
// "elapsed_s","grpc_js"} and exits 0 only if every call succeeded.
'use strict';

let grpc;
try {
  grpc = require('@grpc/grpc-js');
} catch (e) {
  console.error('greeter_client.js: @grpc/grpc-js is not installed ' +
                '(run: npm ci --prefix tests/peers/node): ' + e.message);
  process.exit(3);
}

function parseArgs(argv) {
  const a = { target: null, calls: 100, concurrency: 1, timeout: 60 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--target': a.target = v; i++; break;
      case '--calls': a.calls = parseInt(v, 10); i++; break;
      case '--concurrency': a.concurrency = parseInt(v, 10); i++; break;
      case '--timeout': a.timeout = parseFloat(v); i++; break;
      case '--reply-size': a.replySize = parseInt(v, 10); i++; break;
      default:
        console.error(`greeter_client.js: unknown argument ${k}`);
        process.exit(2);
    }
  }
  if (!a.target || !(a.calls >= 0) || !(a.concurrency >= 1) ||
      !(a.timeout > 0)) {
    console.error('usage: greeter_client.js --target HOST:PORT [--calls N] ' +
                  '[--concurrency C] [--timeout S] [--reply-size BYTES]');
    process.exit(2);
  }
  return a;
}

// ---- protobuf wire format, just what the two messages need -------------

function encVarint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

function encLen(field, buf) {
  return Buffer.concat([encVarint((field << 3) | 2), encVarint(buf.length), buf]);
}

function encInt(field, n) {
  return Buffer.concat([encVarint((field << 3) | 0), encVarint(n)]);
}

function encodeHelloRequest(req) {
  const parts = [];
  if (req.name) parts.push(encLen(1, Buffer.from(req.name, 'utf8')));
  if (req.payload && req.payload.length) parts.push(encLen(2, req.payload));
  if (req.count) parts.push(encInt(3, req.count));
  if (req.delayMs) parts.push(encInt(4, req.delayMs));
  if (req.replySize) parts.push(encInt(5, req.replySize));
  return Buffer.concat(parts);
}

function decVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
    if (shift >= 70n) throw new Error('varint too long');
  }
}

function decodeHelloReply(buf) {
  const msg = { message: '', payload: Buffer.alloc(0) };
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = decVarint(buf, pos);
    const field = Number(key >> 3n);
    const wt = Number(key & 7n);
    if (wt === 0) {
      [, pos] = decVarint(buf, pos);
    } else if (wt === 2) {
      let len;
      [len, pos] = decVarint(buf, pos);
      const end = pos + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      const val = buf.subarray(pos, end);
      if (field === 1) msg.message = val.toString('utf8');
      else if (field === 2) msg.payload = Buffer.from(val);
      pos = end;
    } else if (wt === 1) {
      pos += 8;
    } else if (wt === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wt}`);
    }
  }
  if (pos !== buf.length) throw new Error('truncated message');
  return msg;
}

// ---- calls ---------------------------------------------------------------

function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const end = started + args.timeout * 1000;
  const client = new grpc.Client(args.target, grpc.credentials.createInsecure(), {
    // One channel = one connection, not shared with any other client.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
  });
  const out = { ok: 0, errors: 0, calls: args.calls, by_backend: {},
                error_codes: {}, problems: [],
                grpc_js: require('@grpc/grpc-js/package.json').version };

  function problem(text) {
    if (out.problems.length < 10) {
      out.problems.push(text);
      console.error(`greeter_client.js: ${text}`);
    }
  }

  function callOnce(i) {
    return new Promise((resolve) => {
      const name = `node-${i + 1}`;
      let trailerBackend = null;
      const call = client.makeUnaryRequest(
        '/h2lb.Greeter/SayHello',
        encodeHelloRequest,
        decodeHelloReply,
        { name, replySize: args.replySize },
        new grpc.Metadata(),
        { deadline: new Date(Math.min(end, Date.now() + 20000)) },
        (err, reply) => {
          if (err) {
            out.errors++;
            const code = grpc.status[err.code] || String(err.code);
            out.error_codes[code] = (out.error_codes[code] || 0) + 1;
            problem(`${name}: ${code}: ${err.details}`);
            resolve();
            return;
          }
          const m = /Hello from ([^:\s]+)/.exec(reply.message);
          const backend = m ? m[1] : '?';
          if (!m) {
            out.errors++;
            problem(`${name}: unexpected reply ${JSON.stringify(reply.message)}`);
          } else if (trailerBackend !== null && trailerBackend !== backend) {
            out.errors++;
            problem(`${name}: reply from ${backend} but trailer says ${trailerBackend}`);
          } else {
            out.ok++;
            out.by_backend[backend] = (out.by_backend[backend] || 0) + 1;
          }
          resolve();
        });
      call.on('status', (st) => {
        const v = st.metadata && st.metadata.get('x-backend');
        if (v && v.length) trailerBackend = String(v[0]);
      });
    });
  }

  let next = 0;
  async function worker() {
    while (next < args.calls) {
      const i = next++;
      if (Date.now() >= end) {
        out.errors++;
        out.error_codes.CLIENT_TIMEOUT = (out.error_codes.CLIENT_TIMEOUT || 0) + 1;
        continue;
      }
      await callOnce(i);
    }
  }

  const hard = setTimeout(() => {
    problem('hard timeout');
    finish(1);
  }, args.timeout * 1000 + 10000);

  function finish(forced) {
    clearTimeout(hard);
    out.elapsed_s = (Date.now() - started) / 1000;
    const keys = Object.keys(out.by_backend).sort();
    const sorted = {};
    for (const k of keys) sorted[k] = out.by_backend[k];
    out.by_backend = sorted;
    process.stdout.write(JSON.stringify(out) + '\n', () => {
      client.close();
      process.exit(forced || out.ok !== args.calls || out.errors ? 1 : 0);
    });
  }

  const workers = [];
  for (let w = 0; w < Math.min(args.concurrency, Math.max(1, args.calls)); w++) {
    workers.push(worker());
  }
  Promise.all(workers).then(() => finish(0));
}

main();
