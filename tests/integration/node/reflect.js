// Server reflection with a client nobody here wrote: grpc-reflection-js (npm, v1alpha), then a
// call built only from what reflection returned (protobufjs types from the fetched
// descriptors; no corepipe .proto on this side). Prints one JSON object for
// tests/integration/test_reflection_js.py.
'use strict';
const grpc = require('@grpc/grpc-js');
const {Client} = require('grpc-reflection-js');

const target = process.argv[2];
const creds = grpc.credentials.createInsecure();

function unary(client, path, Req, Resp, obj) {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, (o) => Buffer.from(Req.encode(Req.fromObject(o)).finish()),
                            (b) => Resp.toObject(Resp.decode(b), {longs: Number}), obj,
                            (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

async function main() {
  const refl = new Client(target, creds);
  const out = {};
  out.services = (await refl.listServices()).sort();
  const root = await refl.fileContainingSymbol('corepipe.v1.Pipeline');
  const pipeline = root.lookupService('corepipe.v1.Pipeline');
  out.pipeline_methods = Object.keys(pipeline.methods).sort();
  const es = pipeline.methods.ExecuteStream;
  out.execute_stream = {request: es.requestType, requestStream: !!es.requestStream,
                        responseStream: !!es.responseStream};
  const admin = (await refl.fileContainingSymbol('corepipe.v1.Admin')).lookupService('corepipe.v1.Admin');
  out.admin_methods = Object.keys(admin.methods).sort();
  out.stats_fields = Object.keys(root.lookupType('corepipe.v1.Stats').fields).sort();
  try {
    await refl.fileContainingSymbol('no.such.Symbol');
    out.unknown = 'found?';
  } catch (e) {
    out.unknown = String(e.message || e);
  }
  // The call, by reflection alone.
  const ex = pipeline.methods.Execute;
  ex.resolve();
  const gc = new grpc.Client(target, creds);
  const resp = await unary(gc, '/corepipe.v1.Pipeline/Execute', ex.resolvedRequestType,
                           ex.resolvedResponseType,
                           {name: process.argv[3] || 'crc', input: {data: Buffer.from('123456789')}});
  out.crc = resp.annotations;
  gc.close();
  refl.grpcClient.close();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
