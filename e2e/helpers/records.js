// Helpers for the record pages' tests: arranging records through the API, and a tiny PNG.
// (`test` is the fixtures' own, re-exported for the spec files that take it from here.)
const zlib = require("node:zlib");
const { test } = require("../fixtures");

/** Creates a record through the API as `token`; answers the record. */
async function createRecord(server, token, model, body) {
  const r = await server.api("POST", `/api/v1/${model}`, { token, body });
  if (r.status !== 201) throw new Error(`create ${model} failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data;
}

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid `size`×`size` red PNG. */
function png(size = 4) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3, 0)]);
  for (let x = 0; x < size; x++) row[1 + x * 3] = 0xd0;
  const raw = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

module.exports = { test, createRecord, png };
