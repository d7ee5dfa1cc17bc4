// Node verifies the sandbox's signatures as a Node client of the real service would:
// JSON.parse, drop response_signature, sort the top-level keys, JSON.stringify, crypto.verify.
// argv[2] is a JSON file {"pem": ..., "bodies": [...]}; prints one line per body: ok|bad.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');

const { pem, bodies } = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const key = crypto.createPublicKey(pem);
for (const body of bodies) {
  const obj = JSON.parse(body);
  const sig = obj.response_signature || '';
  const sorted = {};
  for (const k of Object.keys(obj).filter((k) => k !== 'response_signature').sort()) sorted[k] = obj[k];
  const ok = sig.startsWith('ed25519:') &&
    crypto.verify(null, Buffer.from(JSON.stringify(sorted), 'utf8'), key, Buffer.from(sig.slice(8), 'base64'));
  process.stdout.write((ok ? 'ok' : 'bad') + '\n');
}
