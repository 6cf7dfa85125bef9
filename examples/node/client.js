// corepipe from Node.js with @grpc/grpc-js and @grpc/proto-loader (npm): the .proto is loaded at
// run time from the source tree, so there is nothing to generate.
//
//   npm ci                      # once (scripts/deps.sh does it for the tests)
//   node client.js [HOST:PORT]  # default $COREPIPE_TARGET or 127.0.0.1:50051
//
// Lists the pipelines, runs "123456789" through an inline crc32c pipeline (Execute), and streams
// three frames of audio through an inline gain + meter pipeline (ExecuteStream), printing the
// annotations of each answer. A bearer token goes in $COREPIPE_TOKEN.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.join(__dirname, '..', '..', 'proto', 'corepipe', 'v1', 'corepipe.proto');
const target = process.argv[2] || process.env.COREPIPE_TARGET || '127.0.0.1:50051';
const def = protoLoader.loadSync(PROTO, {keepCase: true, longs: Number, enums: String,
                                         defaults: true, oneofs: true});
const v1 = grpc.loadPackageDefinition(def).corepipe.v1;
const creds = grpc.credentials.createInsecure();
const pipeline = new v1.Pipeline(target, creds);
const admin = new v1.Admin(target, creds);

function metadata() {
  const md = new grpc.Metadata();
  if (process.env.COREPIPE_TOKEN) md.set('authorization', `Bearer ${process.env.COREPIPE_TOKEN}`);
  return md;
}

function call(client, method, req) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10000);
    client[method](req, metadata(), {deadline}, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

// 10 ms of a 440 Hz sine, s16le mono at 16 kHz.
function frame(i) {
  const n = 160, buf = Buffer.alloc(n * 2);
  for (let k = 0; k < n; k++)
    buf.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 440 * (i * n + k) / 16000)), 2 * k);
  return {audio: {format: 'SAMPLE_FORMAT_S16LE', sample_rate: 16000, channels: 1, samples: buf}};
}

function stream() {
  return new Promise((resolve, reject) => {
    const s = pipeline.ExecuteStream(metadata());
    const out = [];
    s.on('data', (r) => out.push({seq: r.seq, annotations: r.annotations}));
    s.on('error', reject);
    s.on('end', () => resolve(out));
    s.write({open: {inline: {nodes: [{type: 'gain', params: {db: '-6'}}, {type: 'meter'}]}}});
    for (let i = 0; i < 3; i++) s.write({frame: frame(i)});
    s.end();
  });
}

async function main() {
  const list = await call(admin, 'ListPipelines', {});
  console.log('pipelines:', list.pipelines.map((p) => p.spec.name).sort().join(' '));
  const r = await call(pipeline, 'Execute', {inline: {nodes: [{type: 'crc32c'}]},
                                             input: {data: Buffer.from('123456789')}});
  console.log('crc32c:', r.annotations.crc32c);
  for (const x of await stream())
    console.log(`stream seq ${x.seq}:`, JSON.stringify(x.annotations));
}

main().then(() => process.exit(0), (err) => {
  console.error(`corepipe example: ${err.code !== undefined ? grpc.status[err.code] + ': ' : ''}${err.details || err.message}`);
  process.exit(1);
});
