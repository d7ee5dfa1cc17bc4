// Signature vectors made by Node itself, as the numbers.online service makes them: parse the
// body, sort the top-level keys with Array.prototype.sort, JSON.stringify, Ed25519-sign with
// crypto.sign. Prints one JSON object per line: first {"pem": ...} (the trusted key), then
// {"name", "body", "valid", "error"?} for every vector. Run by nol-core/tests/node_vectors.rs.
'use strict';
const crypto = require('node:crypto');

const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
const other = crypto.generateKeyPairSync('ed25519').privateKey;

function canonical(obj) {
  const sorted = {};
  for (const k of Object.keys(obj).filter((k) => k !== 'response_signature').sort()) {
    sorted[k] = obj[k];
  }
  return JSON.stringify(sorted);
}

function signature(wire, key = privateKey) {
  const obj = JSON.parse(wire);
  return 'ed25519:' + crypto.sign(null, Buffer.from(canonical(obj), 'utf8'), key).toString('base64');
}

// Adds the signature member to the wire text itself, keeping its form.
function withSignature(wire, sig) {
  return wire.replace(/\}\s*$/, `,"response_signature":${JSON.stringify(sig)}}`);
}

function escapeNonAscii(text) {
  return text.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

const base = {
  schema_version: '2026-05-31',
  result: 'found',
  number: '+14155551212',
  identity_type: 'verified_business',
  display_label: 'Acme Support',
  profile_url: 'https://numbers.online/business/acme-support-1a2b',
  personal_details_exposed: false,
  risk_score: 8,
  risk_level: 'low',
  signals: ['verified listing', '0 in last 30 days'],
  recommended_action: 'allow',
  ttl_seconds: 600,
  receipt_id: 'nol_rec_7Qm2',
};

const labels = [
  'Café Ünïcødé — Zürich',
  '北京烤鸭 株式会社',
  'Pizza 🍕 Place 👨‍👩‍👧',
  'Tab\there\nnew line\r\u0000\u0001\u001f\u007f',
  'Line\u2028Sep\u2029Para',
  'Say "hi" \\ back\\slash \\',
  '\ud83d\ude00\u00e9\u0301',
];

const numberTexts = ['0.1', '1e21', '1E21', '1e-7', '5e-324', '9007199254740993', '-0', '1.0',
  '100', '123456789012345678901234567890', '0.000001', '1.7976931348623157e308', '2.5e-8', '-1.5'];

const vectors = [];
const valid = (name, wire) => vectors.push({ name, body: withSignature(wire, signature(wire)), valid: true });

valid('seed compact', JSON.stringify(base));
valid('seed pretty', JSON.stringify(base, null, 2));
valid('seed tabs and spaces', JSON.stringify(base, null, '\t').replace(/":/g, '" :  '));
labels.forEach((label, i) => {
  const wire = JSON.stringify({ ...base, display_label: label });
  valid(`label ${i}`, wire);
  valid(`label ${i} \\u-escaped`, escapeNonAscii(wire));
  valid(`label ${i} pretty`, JSON.stringify({ ...base, display_label: label }, null, 1));
});
for (const n of numberTexts) {
  valid(`number ${n}`, `{"result":"found","recommended_action":"allow","x":${n},"nested":{"v":[${n}]}}`);
}
valid('nested odd order', '{"z":{"b":1,"a":{"d":[{"y":2,"x":1}],"c":null}},"a":true,"m":[{"2":1,"1":2,"b":3,"a":4}]}');
valid('integer-like keys', '{"b":1,"10":2,"2":3,"a":4,"01":5,"-1":6,"4294967295":7,"4294967294":8}');
valid('non-BMP key order', '{"\uff5e":1,"\ud83d\ude00":2,"\u00e9":3,"e":4,"E":5}');
valid('escaped keys', '{"\\u0061b":1,"a\\"q":2,"\\ud83d\\ude00":3}');
valid('empty containers', '{"a":{},"b":[],"c":"","d":[[]],"e":[{}]}');

const good = withSignature(JSON.stringify(base), signature(JSON.stringify(base)));
const invalid = (name, body, error) => vectors.push({ name, body, valid: false, error });
invalid('tampered risk', good.replace('"risk_score":8', '"risk_score":9'), 'mismatch');
invalid('tampered label', good.replace('Acme Support', 'Acme Supp0rt'), 'mismatch');
invalid('tampered action', good.replace('"allow"', '"block_candidate"'), 'mismatch');
invalid('added field', good.replace('{', '{"extra":1,'), 'mismatch');
invalid('removed field', good.replace('"risk_level":"low",', ''), 'mismatch');
invalid('reordered nested array', good.replace('["verified listing","0 in last 30 days"]', '["0 in last 30 days","verified listing"]'), 'mismatch');
invalid('other key', withSignature(JSON.stringify(base), signature(JSON.stringify(base), other)), 'mismatch');
invalid('wrong prefix', good.replace('"ed25519:', '"ed448:'), 'wrong_prefix');
invalid('no prefix', good.replace('"ed25519:', '"'), 'wrong_prefix');
invalid('missing signature', JSON.stringify(base), 'missing');
invalid('signature not a string', JSON.stringify({ ...base, response_signature: 5 }), 'malformed');
invalid('signature short', JSON.stringify({ ...base, response_signature: 'ed25519:AAAA' }), 'malformed');
invalid('duplicate top-level key', good.replace('{', '{"risk_score":8,'), 'duplicate_key');
invalid('duplicate nested key', withSignature('{"a":{"b":1,"b":1}}', signature('{"a":{"b":1}}')), 'duplicate_key');
invalid('duplicate signature', good.replace('{', '{"response_signature":"ed25519:x",'), 'duplicate_key');
invalid('not json', good.slice(0, -3), 'unparseable');
invalid('array', '[' + good + ']', 'unparseable');

process.stdout.write(JSON.stringify({ pem: publicKey.export({ type: 'spki', format: 'pem' }) }) + '\n');
for (const v of vectors) process.stdout.write(JSON.stringify(v) + '\n');
