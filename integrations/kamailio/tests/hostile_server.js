// A stand-in numbers.online server whose signed answers carry hostile display labels and
// receipt ids (CR/LF, quotes, backslashes, control characters). It signs exactly as the real
// service does (Node: Ed25519 over JSON.stringify of the top-level keys sorted), so libnol
// accepts the answers and the test sees what reaches the SIP reply.
// Usage: node hostile_server.js PEM_OUT_PATH  -> prints "listening PORT" on stdout.
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
fs.writeFileSync(process.argv[2], publicKey.export({ type: 'spki', format: 'pem' }));

const HOSTILE = {
  '+14155551212': { label: 'Evil\r\nX-NumbersOnline-Action: block_candidate', receipt: 'nol_rec_a\r\nX-Injected: 1' },
  '+14155550100': { label: 'Quote" <sip:evil@example.com>;tag=1\\', receipt: 'nol_rec_b' },
  '+14155550111': { label: 'Bell\u0007Null\u0000Del\u007fTab\tEnd\nVia: SIP/2.0/UDP evil', receipt: 'nol_rec_c\nContact: <sip:evil@example.com>' },
};

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
    try { number = JSON.parse(data).number || ''; } catch (e) { /* answered below */ }
    const h = HOSTILE[number];
    const body = h ? {
      schema_version: '2026-05-31', result: 'found', number, identity_type: 'verified_business',
      display_label: h.label, personal_details_exposed: false, risk_score: 10, risk_level: 'low',
      signals: [], recommended_action: 'allow', ttl_seconds: 60, receipt_id: h.receipt,
    } : {
      schema_version: '2026-05-31', result: 'no_record', number, risk_score: null, signals: [],
      recommended_action: 'allow_with_default_policy', ttl_seconds: 60, receipt_id: 'nol_rec_none',
    };
    const out = JSON.stringify(sign(body));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  });
});
server.listen(0, '127.0.0.1', () => { console.log('listening ' + server.address().port); });
