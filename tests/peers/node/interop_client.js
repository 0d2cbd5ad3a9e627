#!/usr/bin/env node
// h2lb test client in Node.js: the @grpc/grpc-js "h2lb.Interop" client.
//
//   node interop_client.js --target HOST:PORT [--cases a,b,...]
//        [--iterations N] [--small-iterations M] [--call-timeout S]
//        [--timeout S] [--list]
//   node interop_client.js --target HOST:PORT --call PATH [--call-timeout S]
//
// The same cases as the grpc-go and python clients (the service is in
// ../interop.proto; no protoc: the two messages are encoded by hand), each
// repeated on ONE grpc-js channel (one HTTP/2 connection); one JSON line
// per case: {"case","ok","iterations","error","elapsed_s","client":"node"}.
// --iterations (default 300) repeats the large-message cases,
// --small-iterations (default 30) the others. A case stops at its first
// failing iteration ("iterations" counts those that passed) and the channel
// is then replaced, so that a broken connection fails one case only. Every
// call has a deadline (--call-timeout, default 10 s); no iteration starts
// after --timeout (default 300 s).
//
// --call PATH makes one unary call, with an empty request, to PATH (any
// path: a test backend may act on it) and prints the status it ended with,
// {"client":"node","path","code","message"}, whatever it is (exit 0).
//
// Exit status 0 if every case passed, 1 otherwise, 2 on usage errors.
'use strict';

let grpc;
try {
  grpc = require('@grpc/grpc-js');
} catch (e) {
  console.error('interop_client.js: @grpc/grpc-js is not installed ' +
                '(run: npm ci --prefix tests/peers/node): ' + e.message);
  process.exit(3);
}

const MAX_MSG = 64 * 1024 * 1024;
const REQ_SIZES = [27182, 8, 1828, 45904];
const RESP_SIZES = [31415, 9, 2653, 58979];
const LARGE_REQ = 271828;
const LARGE_RESP = 314159;
const STATUS_MESSAGE = 'test status message: \t\ntabs, CR LF\r\n, BMP \u263a, ' +
  'non-BMP \u{1f608}, 100% %41';
const INITIAL_KEY = 'x-interop-initial';
const INITIAL_BIN_KEY = 'x-interop-initial-bin';
const TRAILING_BIN_KEY = 'x-interop-trailing-bin';
const INITIAL_VALUE = 'test_initial_metadata_value';
const INITIAL_BIN = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x0a, 0x0d]);
const TRAILING_BIN = Buffer.from([0xab, 0xab, 0xab, 0x00, 0xca, 0xfe]);
const S = grpc.status;

function parseArgs(argv) {
  const a = { target: null, cases: '', iterations: 300, small: 30,
              callTimeout: 10, timeout: 300, list: false, call: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--target': a.target = v; i++; break;
      case '--cases': a.cases = v; i++; break;
      case '--iterations': a.iterations = parseInt(v, 10); i++; break;
      case '--small-iterations': a.small = parseInt(v, 10); i++; break;
      case '--call-timeout': a.callTimeout = parseFloat(v); i++; break;
      case '--timeout': a.timeout = parseFloat(v); i++; break;
      case '--list': a.list = true; break;
      case '--call': a.call = v; i++; break;
      default:
        console.error(`interop_client.js: unknown argument ${k}`);
        process.exit(2);
    }
  }
  if (!a.list && (!a.target || !(a.iterations >= 0) || !(a.small >= 0) ||
                  !(a.callTimeout > 0) || !(a.timeout > 0))) {
    console.error('usage: interop_client.js --target HOST:PORT [--cases a,b] ' +
                  '[--iterations N] [--small-iterations M] [--call-timeout S] ' +
                  '[--timeout S] [--list]');
    process.exit(2);
  }
  return a;
}

// ---- payload pattern: byte i of an n-byte payload is (i + n) % 251 ------

const patterns = new Map();
function pattern(n) {
  if (n <= 0) return Buffer.alloc(0);
  let p = patterns.get(n);
  if (!p) {
    p = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) p[i] = (i + n) % 251;
    patterns.set(n, p);
  }
  return p;
}

// ---- protobuf wire format of the two messages ----------------------------

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

// InteropRequest { bytes payload = 1; int32 response_size = 2;
//   repeated int32 response_sizes = 3 (packed); int32 sleep_ms = 4;
//   int32 status_code = 5; string status_message = 6; }
function encodeRequest(r) {
  const parts = [];
  if (r.payload && r.payload.length) parts.push(encLen(1, r.payload));
  if (r.responseSize) parts.push(encInt(2, r.responseSize));
  if (r.responseSizes && r.responseSizes.length) {
    parts.push(encLen(3, Buffer.concat(r.responseSizes.map(encVarint))));
  }
  if (r.sleepMs) parts.push(encInt(4, r.sleepMs));
  if (r.statusCode) parts.push(encInt(5, r.statusCode));
  if (r.statusMessage) parts.push(encLen(6, Buffer.from(r.statusMessage, 'utf8')));
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

// InteropResponse { bytes payload = 1; int64 received_bytes = 2;
//   int32 received_messages = 3; }
function decodeResponse(buf) {
  const msg = { payload: Buffer.alloc(0), receivedBytes: 0, receivedMessages: 0 };
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = decVarint(buf, pos);
    const field = Number(key >> 3n);
    const wt = Number(key & 7n);
    if (wt === 0) {
      let v;
      [v, pos] = decVarint(buf, pos);
      if (field === 2) msg.receivedBytes = Number(BigInt.asIntN(64, v));
      else if (field === 3) msg.receivedMessages = Number(BigInt.asIntN(32, v));
    } else if (wt === 2) {
      let len;
      [len, pos] = decVarint(buf, pos);
      const end = pos + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      if (field === 1) msg.payload = Buffer.from(buf.subarray(pos, end));
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

// ---- call helpers ----------------------------------------------------------

class Failure extends Error {}

const codeName = (c) => (S[c] !== undefined && typeof S[c] === 'string' ? S[c] : String(c));

function checkPayload(what, payload, want) {
  if (payload.length !== want) {
    throw new Failure(`${what}: ${payload.length} payload bytes, want ${want}`);
  }
  if (!payload.equals(pattern(want))) {
    throw new Failure(`${what}: payload of ${want} bytes is not the pattern`);
  }
}

function wantError(what, err, code, details) {
  if (!err) throw new Failure(`${what}: succeeded, want ${codeName(code)}`);
  if (err.code !== code || (details !== undefined && err.details !== details)) {
    throw new Failure(`${what}: status ${codeName(err.code)} ` +
      `${JSON.stringify(err.details)}, want ${codeName(code)}` +
      (details !== undefined ? ` ${JSON.stringify(details)}` : ''));
  }
}

// Reads a streaming call: recv() resolves {msg}, {end} or {err}, in order;
// the last one repeats. status() resolves with the call's final status.
class Reader {
  constructor(call) {
    this.items = [];
    this.waiters = [];
    this.final = null;
    this.header = null;
    this._status = new Promise((resolve) => { call.on('status', resolve); });
    call.on('metadata', (md) => { this.header = md; });
    call.on('data', (m) => this._push({ msg: m }));
    call.on('end', () => this._push({ end: true }));
    call.on('error', (e) => this._push({ err: e }));
  }
  _push(item) {
    if (this.final) return;
    if (!item.msg) this.final = item;
    const w = this.waiters.shift();
    if (w) w(item); else this.items.push(item);
  }
  recv() {
    if (this.items.length) return Promise.resolve(this.items.shift());
    if (this.final) return Promise.resolve(this.final);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  status() { return this._status; }
}

async function recvMsg(reader, what) {
  const it = await reader.recv();
  if (it.err) throw new Failure(`${what}: ${codeName(it.err.code)}: ${it.err.details}`);
  if (it.end) throw new Failure(`${what}: the stream ended`);
  return it.msg;
}

async function recvEnd(reader, what) {
  const it = await reader.recv();
  if (it.err) throw new Failure(`${what}: ${codeName(it.err.code)}: ${it.err.details}`);
  if (it.msg) throw new Failure(`${what}: a reply, want the end of the stream`);
}

async function recvErr(reader) {
  const it = await reader.recv();
  return it.err || null;
}

class Cases {
  constructor(client, callTimeout) {
    this.client = client;
    this.t = callTimeout * 1000;
  }
  opts(ms) { return { deadline: new Date(Date.now() + (ms || this.t)) }; }

  // Resolves {err, reply, header, trailer} once both the callback and the
  // final status are in.
  unary(method, req, md, ms) {
    return new Promise((resolve) => {
      const out = { err: null, reply: null, header: null, trailer: null };
      let left = 2;
      const done = () => { if (--left === 0) resolve(out); };
      const call = this.client.makeUnaryRequest(`/${method}`, encodeRequest,
        decodeResponse, req, md || new grpc.Metadata(), this.opts(ms),
        (err, reply) => { out.err = err; out.reply = reply; done(); });
      call.on('metadata', (h) => { out.header = h; });
      call.on('status', (st) => { out.trailer = st.metadata; done(); });
    });
  }

  duplex(md, ms) {
    const call = this.client.makeBidiStreamRequest('/h2lb.Interop/FullDuplexCall',
      encodeRequest, decodeResponse, md || new grpc.Metadata(), this.opts(ms));
    return [call, new Reader(call)];
  }

  async large_unary() {
    const r = await this.unary('h2lb.Interop/UnaryCall',
      { payload: pattern(LARGE_REQ), responseSize: LARGE_RESP });
    if (r.err) throw new Failure(`${codeName(r.err.code)}: ${r.err.details}`);
    if (r.reply.receivedBytes !== LARGE_REQ) {
      throw new Failure(`server got ${r.reply.receivedBytes} request bytes`);
    }
    checkPayload('reply', r.reply.payload, LARGE_RESP);
  }

  async server_streaming() {
    const call = this.client.makeServerStreamRequest(
      '/h2lb.Interop/StreamingOutputCall', encodeRequest, decodeResponse,
      { responseSizes: RESP_SIZES }, new grpc.Metadata(), this.opts());
    const rd = new Reader(call);
    for (let i = 0; i < RESP_SIZES.length; i++) {
      checkPayload(`reply ${i + 1}`, (await recvMsg(rd, `reply ${i + 1}`)).payload,
        RESP_SIZES[i]);
    }
    await recvEnd(rd, 'after the last reply');
  }

  async client_streaming() {
    const res = await new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(
        '/h2lb.Interop/StreamingInputCall', encodeRequest, decodeResponse,
        new grpc.Metadata(), this.opts(), (err, reply) => resolve({ err, reply }));
      for (const n of REQ_SIZES) call.write({ payload: pattern(n) });
      call.end();
    });
    if (res.err) throw new Failure(`${codeName(res.err.code)}: ${res.err.details}`);
    const total = REQ_SIZES.reduce((a, b) => a + b, 0);
    if (res.reply.receivedBytes !== total ||
        res.reply.receivedMessages !== REQ_SIZES.length) {
      throw new Failure(`server got ${res.reply.receivedBytes} bytes in ` +
        `${res.reply.receivedMessages} messages, want ${total} in ${REQ_SIZES.length}`);
    }
  }

  async ping_pong() {
    const [call, rd] = this.duplex();
    try {
      let total = 0;
      for (let i = 0; i < REQ_SIZES.length; i++) {
        call.write({ payload: pattern(REQ_SIZES[i]), responseSize: RESP_SIZES[i] });
        total += REQ_SIZES[i];
        const rep = await recvMsg(rd, `pong ${i + 1}`);
        checkPayload(`pong ${i + 1}`, rep.payload, RESP_SIZES[i]);
        if (rep.receivedBytes !== total || rep.receivedMessages !== i + 1) {
          throw new Failure(`pong ${i + 1}: server counted ${rep.receivedBytes} ` +
            `bytes in ${rep.receivedMessages} messages`);
        }
      }
      call.end();
      await recvEnd(rd, 'after the last pong');
    } finally {
      call.cancel();
    }
  }

  async empty_stream() {
    const [call, rd] = this.duplex();
    call.end();
    await recvEnd(rd, 'empty stream');
  }

  async cancel_after_begin() {
    const err = await new Promise((resolve) => {
      const call = this.client.makeClientStreamRequest(
        '/h2lb.Interop/StreamingInputCall', encodeRequest, decodeResponse,
        new grpc.Metadata(), this.opts(), (e) => resolve(e));
      call.cancel();
    });
    wantError('after cancel', err, S.CANCELLED);
  }

  async cancel_after_first_response() {
    const [call, rd] = this.duplex();
    call.write({ payload: pattern(REQ_SIZES[0]), responseSize: RESP_SIZES[0] });
    checkPayload('first reply', (await recvMsg(rd, 'first reply')).payload, RESP_SIZES[0]);
    call.cancel();
    wantError('after cancel', await recvErr(rd), S.CANCELLED);
  }

  async timeout_on_sleeping_server() {
    const t0 = Date.now();
    const [call, rd] = this.duplex(null, 100);
    call.write({ payload: pattern(REQ_SIZES[0]), responseSize: 1, sleepMs: 5000 });
    wantError('sleeping server', await recvErr(rd), S.DEADLINE_EXCEEDED);
    if (Date.now() - t0 > 2000) {
      throw new Failure(`DEADLINE_EXCEEDED after ${Date.now() - t0} ms`);
    }
  }

  static checkEcho(header, trailer) {
    const checks = [
      ['initial', header, INITIAL_KEY, Buffer.from(INITIAL_VALUE)],
      ['initial', header, INITIAL_BIN_KEY, INITIAL_BIN],
      ['trailing', trailer, TRAILING_BIN_KEY, TRAILING_BIN],
    ];
    for (const [what, md, key, want] of checks) {
      const v = md ? md.get(key) : [];
      if (v.length !== 1 || !Buffer.from(v[0]).equals(want)) {
        throw new Failure(`${what} metadata ${key}: ${JSON.stringify(v)}, ` +
          `want ${JSON.stringify(want)}`);
      }
    }
  }

  async custom_metadata() {
    const md = new grpc.Metadata();
    md.set(INITIAL_KEY, INITIAL_VALUE);
    md.set(INITIAL_BIN_KEY, INITIAL_BIN);
    md.set(TRAILING_BIN_KEY, TRAILING_BIN);
    const req = { payload: pattern(1024), responseSize: 2048 };
    const r = await this.unary('h2lb.Interop/UnaryCall', req, md);
    if (r.err) throw new Failure(`unary: ${codeName(r.err.code)}: ${r.err.details}`);
    checkPayload('unary reply', r.reply.payload, 2048);
    Cases.checkEcho(r.header, r.trailer);

    const [call, rd] = this.duplex(md);
    call.write(req);
    checkPayload('bidi reply', (await recvMsg(rd, 'bidi reply')).payload, 2048);
    call.end();
    await recvEnd(rd, 'bidi');
    const st = await rd.status();
    Cases.checkEcho(rd.header, st.metadata);
  }

  async status_code_and_message() {
    const r = await this.unary('h2lb.Interop/UnaryCall',
      { statusCode: S.UNKNOWN, statusMessage: STATUS_MESSAGE });
    wantError('unary', r.err, S.UNKNOWN, STATUS_MESSAGE);
    const [call, rd] = this.duplex();
    call.write({ statusCode: S.FAILED_PRECONDITION, statusMessage: STATUS_MESSAGE });
    call.end();
    wantError('bidi', await recvErr(rd), S.FAILED_PRECONDITION, STATUS_MESSAGE);
  }

  async unimplemented_method() {
    for (const m of ['h2lb.Interop/UnimplementedCall',
                     'h2lb.NoSuchService/UnimplementedCall']) {
      wantError(m, (await this.unary(m, {})).err, S.UNIMPLEMENTED);
    }
  }
}

const CASES = [
  ['large_unary', true], ['server_streaming', true],
  ['client_streaming', true], ['ping_pong', true],
  ['empty_stream', false], ['cancel_after_begin', false],
  ['cancel_after_first_response', false],
  ['timeout_on_sleeping_server', false], ['custom_metadata', false],
  ['status_code_and_message', false], ['unimplemented_method', false],
];

function newClient(target) {
  return new grpc.Client(target, grpc.credentials.createInsecure(), {
    // One channel = one connection, not shared with any other client.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
    'grpc.max_receive_message_length': MAX_MSG,
    'grpc.max_send_message_length': MAX_MSG,
  });
}

// One unary call to @path; resolves the status it ended with.
function callOnce(target, path, callTimeout) {
  const client = newClient(target);
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, encodeRequest, decodeResponse, {},
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + callTimeout * 1000) },
      (err) => {
        client.close();
        resolve({ client: 'node', path,
                  code: codeName(err ? err.code : S.OK),
                  message: err ? err.details : '' });
      });
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const [c] of CASES) console.log(c);
    return 0;
  }
  if (args.call) {
    console.log(JSON.stringify(
      await callOnce(args.target, args.call, args.callTimeout)));
    return 0;
  }
  let run = CASES;
  if (args.cases) {
    const large = new Map(CASES);
    run = [];
    for (const c of args.cases.split(',')) {
      if (!large.has(c)) {
        console.error(`interop_client.js: unknown case ${JSON.stringify(c)}`);
        return 2;
      }
      run.push([c, large.get(c)]);
    }
  }
  const hard = setTimeout(() => {
    console.error('interop_client.js: watchdog: the run hangs');
    process.exit(1);
  }, (args.timeout + args.callTimeout + 10) * 1000);
  const start = Date.now();
  const end = start + args.timeout * 1000;
  let client = null;
  let cases = null;
  let reconnect = false;
  let failed = 0;
  for (const [name, large] of run) {
    if (!client) {
      client = newClient(args.target);
      cases = new Cases(client, args.callTimeout);
    }
    const n = large ? args.iterations : args.small;
    const res = { case: name, ok: true, iterations: 0, client: 'node' };
    if (reconnect) res.reconnected = true;
    const t0 = Date.now();
    for (let i = 1; i <= n; i++) {
      if (Date.now() > end) {
        res.ok = false;
        res.error = `iteration ${i}: --timeout ${args.timeout}s reached`;
        break;
      }
      try {
        await cases[name]();
      } catch (e) {
        res.ok = false;
        res.error = `iteration ${i}: ${e instanceof Failure ? e.message : e.stack}`;
        break;
      }
      res.iterations = i;
    }
    res.elapsed_s = (Date.now() - t0) / 1000;
    reconnect = !res.ok;
    if (reconnect) {
      failed++;
      client.close();
      client = null;
    }
    process.stdout.write(JSON.stringify(res) + '\n');
  }
  if (client) client.close();
  clearTimeout(hard);
  console.error(`interop_client.js: ${run.length - failed} passed, ${failed} failed ` +
    `in ${((Date.now() - start) / 1000).toFixed(1)}s (grpc-js ` +
    `${require('@grpc/grpc-js/package.json').version})`);
  return failed ? 1 : 0;
}

main().then((rc) => {
  process.stdout.write('', () => process.exit(rc));
}, (e) => {
  console.error(`interop_client.js: ${e.stack}`);
  process.exit(1);
});
