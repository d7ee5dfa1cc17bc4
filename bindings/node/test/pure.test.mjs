// The pure functions: synchronous, good and bad input, errors with codes.
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { createRequire } from 'node:module'
import { test } from 'node:test'

import * as esm from '../index.mjs'

const nol = createRequire(import.meta.url)('../index.js')
const { normalize, parseVerstat, verifyResponse } = nol

test('CommonJS and ESM entries export the same API', () => {
  const cjs = Object.keys(nol).filter((k) => !k.startsWith('__')).sort()
  const mjs = Object.keys(esm).filter((k) => k !== 'default').sort()
  assert.deepEqual(mjs, cjs)
  assert.equal(esm.Client, nol.Client)
})

test('normalize: E.164 from what switches and platforms hand over', () => {
  assert.equal(normalize('+1 (415) 555-1212'), '+14155551212')
  assert.equal(normalize('tel:+14155551212'), '+14155551212')
  assert.equal(normalize('"Acme" <sip:+14155551212@pbx.example.com>'), '+14155551212')
  assert.equal(normalize('020 7946 0000', 'GB'), '+442079460000')
  assert.equal(normalize('anonymous'), null)
})

test('normalize: bad input throws with a code', () => {
  for (const bad of ['12', 'not a number', '+999123', '4155551212']) {
    assert.throws(() => normalize(bad), { code: 'ERR_NOL_INVALID_NUMBER' }, bad)
  }
  assert.throws(() => normalize('4155551212', 'XX'), { code: 'ERR_NOL_INVALID_COUNTRY' })
  assert.throws(() => normalize(42), (e) => e instanceof Error && typeof e.code === 'string')
})

test('parseVerstat: tokens, parameters, headers, and junk', () => {
  assert.deepEqual(parseVerstat('TN-Validation-Passed'), { verstat: 'TN-Validation-Passed', attestation: null })
  assert.deepEqual(parseVerstat('TN-Validation-Passed-A'), { verstat: 'TN-Validation-Passed', attestation: 'A' })
  assert.deepEqual(parseVerstat('<sip:+14155551212;verstat=TN-Validation-Failed@example.com>'), {
    verstat: 'TN-Validation-Failed',
    attestation: null,
  })
  assert.deepEqual(parseVerstat('No-TN-Validation').verstat, 'No-TN-Validation')
  for (const junk of ['', 'TN-Validation-Passedfoo', 'garbage']) {
    assert.deepEqual(parseVerstat(junk), { verstat: null, attestation: null }, junk)
  }
  assert.throws(() => parseVerstat(undefined), (e) => e instanceof Error && typeof e.code === 'string')
})

// Signs as the service does: top-level keys sorted, compact JSON, signature field excluded.
function signBody(members, privateKey) {
  const sorted = Object.fromEntries(Object.keys(members).sort().map((k) => [k, members[k]]))
  const sig = sign(null, Buffer.from(JSON.stringify(sorted)), privateKey).toString('base64')
  return JSON.stringify({ ...members, response_signature: `ed25519:${sig}` })
}

test('verifyResponse: true for a body signed by the key, false for anything else', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const pem = publicKey.export({ type: 'spki', format: 'pem' })
  const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })
  const body = signBody({ result: 'found', number: '+14155551212', display_label: 'Café Zürich', risk_score: 3 }, privateKey)
  assert.equal(verifyResponse(body, pem), true)
  assert.equal(verifyResponse(Buffer.from(body), pem), true)
  assert.equal(verifyResponse(body, other), false)
  assert.equal(verifyResponse(body.replace('Café', 'Cafe'), pem), false)
  assert.equal(verifyResponse(body.replace('"result"', '"result":"x","result"'), pem), false)
  assert.equal(verifyResponse('not json', pem), false)
  assert.equal(verifyResponse('{"result":"found"}', pem), false)
  assert.throws(() => verifyResponse(body, 'not a pem'), { code: 'ERR_NOL_INVALID_PUBLIC_KEY' })
})
