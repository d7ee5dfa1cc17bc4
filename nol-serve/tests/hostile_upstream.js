// A stand-in numbers.online server whose correctly signed answers carry hostile display labels
// and receipt ids: CR/LF, NUL, BEL, ESC, DEL, C1 controls (NEL, CSI), bidi overrides and
// isolates, LRM/RLM, U+2028/2029, a BOM. It signs exactly as the service does (Node: Ed25519
// over JSON.stringify of the top-level keys sorted), so libnol accepts the answers as verified
// and the test sees what reaches the host. Every valid number gets a hostile verified answer.
// Usage: node hostile_upstream.js PEM_OUT_PATH  -> prints "listening PORT" on stdout.
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
fs.writeFileSync(process.argv[2], publicKey.export({ type: 'spki', format: 'pem' }));

// Starts with "Evil" so that a test can tell the label arrived (and was not a fail-open).
const LABEL =
  'Evil\r\nX-Injected: yes\u0000\u0007\u001b[31m\u007f\u0085\u009b' +
  '\u202ekcaB\u202d\u2066iso\u2069\u200e\u200f\u2028Bank\u2029"\\<script>\ufeffend\n';
const RECEIPT = 'nol_rec_evil\r\nX-Injected: 1\u0000\u202e';

function sign(body) {
  const sorted = {};
  for (const k of Object.keys(body).filter((k) => k !== 'response_signature').sort()) sorted[k] = body[k];
  const sig = crypto.sign(null, Buffer.from(JSON.stringify(sorted), 'utf8'), privateKey);
  return { ...sorted, response_signature: 'ed25519:' + sig.toString('base64') };
}

const server = http.createServer((req, res) => {
  let data = '';
  req.on('data', (c) => { data += c; });
  req.on('end', () => {
    let number = '';
    try { number = String(JSON.parse(data).number || ''); } catch (e) { /* answered below */ }
    const body = {
      schema_version: '2026-05-31', result: 'found', number, identity_type: 'verified_business',
      display_label: LABEL, personal_details_exposed: false, risk_score: 10, risk_level: 'low',
      signals: [], recommended_action: 'allow', ttl_seconds: 60, receipt_id: RECEIPT,
    };
    const out = JSON.stringify(sign(body));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  });
});
server.listen(0, '127.0.0.1', () => { console.log('listening ' + server.address().port); });
