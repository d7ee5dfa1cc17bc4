// The Decision is nol-core's JSON view: its properties are that JSON's keys in camelCase with
// the same values, and `json` is the JSON itself, byte for byte what every binding gives.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { DIRECTORY, SANDBOX_KEY, clientOptions, faultNumber, startSandbox } from './sandbox.mjs'

const { Client } = createRequire(import.meta.url)('../index.js')

let sb
before(async () => {
  sb = await startSandbox()
})
after(() => sb?.stop())

const camel = (key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())

function assertMatchesJson(d, what) {
  assert.equal(typeof d.json, 'string', what)
  const json = JSON.parse(d.json)
  assert.equal(JSON.stringify(json), d.json, `${what}: compact JSON`)
  const { json: _, ...properties } = d
  assert.deepEqual(Object.keys(properties).sort(), Object.keys(json).map(camel).sort(), what)
  for (const [key, value] of Object.entries(json)) {
    assert.deepEqual(d[camel(key)], value, `${what}: ${key}`)
  }
  return json
}

test('decision.json parses and equals the properties, for answers, cache hits and fail-opens', async () => {
  const client = new Client(clientOptions(sb, { policy: { screeningContact: 'sip:screen@ivr.example', riskTag: 'Risk:', riskThreshold: 60 } }))
  for (const [what, number] of Object.entries(DIRECTORY)) {
    const d = await client.lookup(number, { verstat: 'TN-Validation-Passed', attestation: 'A' })
    assertMatchesJson(d, what)
  }
  const cached = await client.lookup(DIRECTORY.business, { verstat: 'TN-Validation-Passed', attestation: 'A' })
  const json = assertMatchesJson(cached, 'cached')
  assert.equal(cached.fromCache, true)
  assert.ok(Number.isInteger(cached.cacheAgeMs), `${cached.cacheAgeMs}`)
  assert.ok(Number.isInteger(json.ttl_seconds) && json.ttl_seconds <= 600, `${json.ttl_seconds}`)
  // Stable key order: the view's, beginning with action.
  assert.equal(Object.keys(json)[0], 'action')
  for (const [what, number] of [['500', faultNumber('500')], ['anonymous', 'anonymous'], ['invalid', '12']]) {
    const d = await client.lookup(number)
    assertMatchesJson(d, what)
    assert.equal(d.action, 'allow_with_default_policy')
  }
  assert.equal((await client.lookup(faultNumber('500'))).httpStatus, 500)
})

test('decision.json is the bytes `nol lookup --json` prints (receipt ids aside: the sandbox counts them)', async () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
  const bin = process.env.NOL_BIN ?? join(root, 'target', 'debug', 'nol')
  const keyFile = join(mkdtempSync(join(tmpdir(), 'nol-node-')), 'public.pem')
  writeFileSync(keyFile, sb.publicKeyPem)
  const client = new Client(clientOptions(sb, { cacheSize: 0, budgetMs: 2000 }))
  const receipts = (json) => json.replace(/nol_rec_[A-Za-z0-9]+/g, 'nol_rec_X')
  for (const number of [DIRECTORY.business, DIRECTORY.labelled, DIRECTORY.elevated, DIRECTORY.noRecord, faultNumber('500'), '12']) {
    const d = await client.lookup(number, { verstat: 'TN-Validation-Passed', attestation: 'A' })
    const cli = spawnSync(
      bin,
      ['lookup', '--json', '--base-url', sb.url, '--public-key', keyFile, '--budget-ms', '2000',
        '--verstat', 'TN-Validation-Passed', '--attestation', 'A', number],
      { encoding: 'utf8', env: { ...process.env, NUMBERS_ONLINE_API_KEY: SANDBOX_KEY } },
    )
    assert.equal(cli.status, 0, cli.stderr)
    assert.equal(receipts(d.json), receipts(cli.stdout.trim()), number)
  }
})
