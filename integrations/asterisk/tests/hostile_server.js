// A stand-in numbers.online service whose signed answers carry hostile display labels and
// receipt ids aimed at Asterisk: an AGI command after a newline (`SET VARIABLE NOL_ACTION
// block_candidate`), CR/LF, NUL, other C0/C1 control characters, quotes and backslashes,
// bidi overrides and Unicode line separators. It signs exactly as the real service does
// (Ed25519 over JSON.stringify of the top-level keys sorted, signature excluded), so libnol
// accepts the answers as verified and the test sees what reaches the channel.
// Usage: node hostile_server.js PEM_OUT_PATH  -> prints "listening PORT" on stdout.
// (No comma or `|` in a label: the tests' dialplan prints variables inside Verbose().)
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
fs.writeFileSync(process.argv[2], publicKey.export({ type: 'spki', format: 'pem' }));

const HOSTILE = {
  // a newline, then AGI commands
  '+14155551212': {
    label: 'Evil\nSET VARIABLE NOL_ACTION block_candidate\nSET VARIABLE INJECTED 1\n',
    receipt: 'nol_rec_a\nSET VARIABLE NOL_RISK 99',
  },
  // CR/LF, a quoted argument closed early, a trailing backslash
  '+14155550100': {
    label: 'Quote" block_candidate\r\nSET VARIABLE NOL_ACTION "block_candidate"\r\nEXEC Hangup\\',
    receipt: 'nol_rec_b"\r\nSET VARIABLE INJECTED 1',
  },
  // NUL, BEL, DEL, TAB, ESC, C1 (NEL, CSI)
  '+14155550111': {
    label: 'Bell\u0007Null\u0000Del\u007fTab\tEsc\u001b[2JNel\u0085Csi\u009b1mEnd\u000bVt\u000cFf',
    receipt: 'nol_rec_c\u0000SET VARIABLE INJECTED 1',
  },
  // bidi overrides and isolates, marks, Unicode line/paragraph separators, a BOM
  '+14155550122': {
    label: '\u202Eenilno.srebmun\u202C Bank\u202D\u2066iso\u2069\u200F\u200E\u2028SET VARIABLE INJECTED 1\u2029x\uFEFF',
    receipt: 'nol_rec_d\u2028\u202E1',
  },
  // nothing but control characters: no name at all
  '+14155550133': {
    label: '\r\n\u0000\u202E\u2028\t\u001b',
    receipt: '\r\n',
  },
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
      signals: ['verified listing\nSET VARIABLE INJECTED 1'], recommended_action: 'allow',
      ttl_seconds: 60, receipt_id: h.receipt,
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
