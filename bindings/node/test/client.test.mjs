// The Client against the sandbox over real sockets: each directory entry, every fault failing
// open within the budget, bad arguments throwing with a code, the key kept secret.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { inspect } from 'node:util'
import { after, before, test } from 'node:test'

import { BUDGET_MS, DIRECTORY, FAULTS, MARGIN_MS, SANDBOX_KEY, clientOptions, faultNumber, startRedis, startSandbox, timed } from './sandbox.mjs'

const { Client } = createRequire(import.meta.url)('../index.js')

let sb
before(async () => {
  sb = await startSandbox()
})
after(() => sb?.stop())

test('a verified answer for each directory entry', async () => {
  const client = new Client(
    clientOptions(sb, {
      policy: { block: true, screeningContact: 'sip:screening@ivr.example.net', riskTag: 'Risk:', riskThreshold: 60 },
    }),
  )
  const cases = [
    [DIRECTORY.business, 'allow', 'Acme Support', 503, 'verified_business'],
    [DIRECTORY.individual, 'allow', 'Verified & online', 503, 'verified_individual'],
    [DIRECTORY.labelled, 'label', 'Café Zürich — Bäckerei', 503, 'listed_business'],
    [DIRECTORY.elevated, 'challenge_or_route', `Risk: ${DIRECTORY.elevated}`, 302, null],
    [DIRECTORY.blockCandidate, 'block_candidate', `Risk: ${DIRECTORY.blockCandidate}`, 603, null],
    [DIRECTORY.noRecord, 'allow_with_default_policy', null, 503, null],
    [DIRECTORY.invalid, 'allow_with_default_policy', null, 503, null],
  ]
  for (const [number, action, name, sip, identity] of cases) {
    const d = await client.lookup(number, { verstat: 'TN-Validation-Passed', attestation: 'A' })
    assert.equal(d.action, action, number)
    assert.equal(d.callerName, name, number)
    assert.equal(d.sipCode, sip, number)
    assert.equal(d.identityType, identity, number)
    assert.equal(d.verified, true, number)
    // Signed is not the same as a verified caller: a listed business is only a name.
    assert.equal(d.identityVerified, identity === 'verified_business' || identity === 'verified_individual', number)
    assert.equal(d.fromCache, false, number)
    assert.equal(d.failOpen, null, number)
    assert.equal(d.number, number)
    assert.match(d.receiptId, /^nol_rec_/)
    assert.equal(d.agiVariables.NOL_ACTION, action)
    assert.equal(d.agiVariables.NOL_RECEIPT, d.receiptId)
    assert.equal(d.headers['X-NumbersOnline-Action'], action)
    assert.equal(d.attestation, 'A')
  }
  const acme = await client.lookup(DIRECTORY.business, { verstat: 'TN-Validation-Passed', attestation: 'A' })
  assert.equal(acme.fromCache, true)
  assert.equal(acme.displayLine, 'Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low')
  assert.equal(typeof acme.riskScore, 'number')
  const redirect = await client.lookup(DIRECTORY.elevated)
  assert.equal(redirect.sipContact, 'sip:screening@ivr.example.net')
  const none = await client.lookup(DIRECTORY.noRecord)
  assert.equal(none.riskScore, null)
  assert.equal(none.result, 'no_record')
  assert.equal((await client.lookup(DIRECTORY.invalid)).result, 'invalid_number')
  const stats = client.stats()
  assert.ok(stats.lookups >= 9)
  assert.ok(stats.cacheHits >= 1)
  assert.equal(stats.circuitOpen, false)
  assert.deepEqual([stats.sharedCache.enabled, stats.sharedCache.hits], [false, 0]) // no redisUrl
})

test('a known local contact wins, numbers are normalized, context and to are passed', async () => {
  const client = new Client(clientOptions(sb, { defaultCountry: 'US' }))
  const d = await client.lookup('(415) 555-1212', { localContact: 'Mum', context: 'inbound_sms', to: '+14155550000' })
  assert.equal(d.number, DIRECTORY.business)
  assert.equal(d.callerName, 'Mum')
  assert.equal(d.verified, true)
})

test('every fault mode fails open within the budget, and never rejects', async () => {
  const client = new Client(clientOptions(sb, { cacheSize: 0 }))
  const expected = {
    hang: 'timeout', drip: 'timeout', 'slow-body': 'timeout', reset: 'connect', close: 'connect',
    500: 'http_status', 503: 'http_status', 429: 'rate_limited', 401: 'http_status', 'non-json': 'unparseable',
    truncated: 'connect', huge: 'body_too_large', 'wrong-types': 'unusable', 'bad-signature': 'bad_signature',
    'no-signature': 'unsigned', redirect: 'http_status',
  }
  // A 429 makes the client hold back until Retry-After: it gets a client of its own.
  const own = new Client(clientOptions(sb, { cacheSize: 0 }))
  const runs = await Promise.all(FAULTS.map((f) => timed((f === '429' ? own : client).lookup(faultNumber(f)))))
  FAULTS.forEach((fault, i) => {
    const { value: d, ms } = runs[i]
    assert.equal(d.failOpen, expected[fault], `${fault} after ${ms.toFixed(0)} ms: ${d.displayLine}`)
    assert.equal(d.action, 'allow_with_default_policy', fault)
    assert.equal(d.callerName, null, fault)
    assert.equal(d.verified, false, fault)
    assert.equal(d.receiptId, null, fault)
    assert.equal(d.sipCode, 503, fault)
    assert.ok(ms < BUDGET_MS + MARGIN_MS, `${fault} took ${ms} ms`)
  })
  assert.equal(runs[FAULTS.indexOf('500')].value.httpStatus, 500)
  assert.equal(runs[FAULTS.indexOf('redirect')].value.httpStatus, 302)
})

test('anonymous and impossible callers fail open at once without a request', async () => {
  const client = new Client(clientOptions(sb))
  assert.equal((await client.lookup('anonymous')).failOpen, 'anonymous')
  assert.equal((await client.lookup('12')).failOpen, 'invalid_number')
  assert.equal(client.stats().httpStatus['200'], undefined)
})

test('an unreachable service fails open (connect) within the budget', async () => {
  const client = new Client({ ...clientOptions(sb), baseUrl: 'http://127.0.0.1:9' })
  const { value: d, ms } = await timed(client.lookup(DIRECTORY.business))
  assert.equal(d.failOpen, 'connect')
  assert.ok(ms < BUDGET_MS + MARGIN_MS, `${ms} ms`)
})

test('bad arguments throw an Error with a code, before anything is queued', () => {
  const client = new Client(clientOptions(sb))
  const code = (c) => (e) => e instanceof Error && e.code === c
  assert.throws(() => client.lookup(DIRECTORY.business, { context: 'fax' }), code('ERR_NOL_INVALID_ARG'))
  assert.throws(() => client.lookup(DIRECTORY.business, { budgetMs: -1 }), code('ERR_NOL_INVALID_ARG'))
  assert.throws(() => client.lookup(12), (e) => e instanceof Error && typeof e.code === 'string')
  assert.equal(client.stats().lookups, 0)
  const opts = clientOptions(sb)
  assert.throws(() => new Client({ ...opts, budgetMs: 0 }), code('ERR_NOL_INVALID_ARG'))
  assert.throws(() => new Client({ ...opts, maxInFlight: 0 }), code('ERR_NOL_INVALID_ARG'))
  assert.throws(() => new Client({ ...opts, policy: { routeAdvanceCode: 200 } }), code('ERR_NOL_INVALID_ARG'))
  assert.throws(() => new Client({ ...opts, baseUrl: 'http://example.com' }), code('ERR_NOL_INVALID_BASE_URL'))
  assert.throws(() => new Client({ ...opts, baseUrl: 'ftp://x' }), code('ERR_NOL_INVALID_BASE_URL'))
  assert.throws(() => new Client({ ...opts, publicKeyPem: 'nope' }), code('ERR_NOL_INVALID_PUBLIC_KEY'))
  assert.throws(() => new Client({ ...opts, defaultCountry: 'XX' }), code('ERR_NOL_INVALID_COUNTRY'))
  assert.throws(() => new Client({ ...opts, apiKey: 'has space' }), code('ERR_NOL_INVALID_API_KEY'))
})

test('the API key never appears in errors or inspect output', async () => {
  const secret = 'nol_live_SUPERSECRET_123'
  const opts = clientOptions(sb, { apiKey: secret })
  const messages = []
  for (const bad of [{ baseUrl: 'http://example.com' }, { publicKeyPem: 'x' }, { budgetMs: -5 }, { defaultCountry: 'ZZ' }]) {
    try {
      new Client({ ...opts, ...bad })
    } catch (e) {
      messages.push(e.message, e.stack, inspect(e))
    }
  }
  assert.equal(messages.length, 12)
  const client = new Client(opts)
  const d = await client.lookup(DIRECTORY.business)
  assert.equal(d.failOpen, 'http_status')
  assert.equal(d.httpStatus, 401)
  const all = [...messages, inspect(client, { showHidden: true, depth: 5 }), JSON.stringify(d), inspect(d), inspect(client.stats())]
  for (const text of all) assert.ok(!text.includes(secret), text)
  assert.ok(!inspect(new Client(clientOptions(sb)), { showHidden: true }).includes(SANDBOX_KEY))
})

test('precall and enroll answer, and fail open when the service is away', async () => {
  const client = new Client(clientOptions(sb))
  const p = await client.precall(DIRECTORY.business, DIRECTORY.noRecord)
  assert.ok(['SUPPRESS', 'NO_MATCH'].includes(p.dnc), p.dnc)
  assert.equal(p.failOpen, null)
  const suppressed = await client.precall(DIRECTORY.business, '+14155550199')
  assert.equal(suppressed.dnc, 'SUPPRESS')
  const e = await client.enroll(DIRECTORY.business)
  assert.equal(e.enrolled, true)
  assert.equal(e.number, DIRECTORY.business)
  const bad = await client.precall('12', DIRECTORY.business)
  assert.deepEqual([bad.dnc, bad.failOpen], ['UNKNOWN', 'invalid_number'])
  const away = new Client({ ...clientOptions(sb), baseUrl: 'http://127.0.0.1:9' })
  const { value: unknown, ms } = await timed(away.precall(DIRECTORY.business, DIRECTORY.noRecord))
  assert.deepEqual([unknown.dnc, unknown.failOpen], ['UNKNOWN', 'connect'])
  assert.ok(ms < BUDGET_MS + MARGIN_MS)
  const notEnrolled = await away.enroll(DIRECTORY.business)
  assert.deepEqual([notEnrolled.enrolled, notEnrolled.failOpen], [false, 'connect'])
})

test('a second client takes the first one\'s answer from a shared Redis, verified', async () => {
  const redis = await startRedis()
  try {
    const shared = { redisUrl: redis.url, redisKeyPrefix: 'nol-node-test:' }
    const first = new Client(clientOptions(sb, shared))
    const a = await first.lookup(DIRECTORY.labelled)
    assert.equal(first.stats().httpStatus['200'], 1)
    // The first client writes to Redis after answering its caller, on the tier's thread.
    for (let i = 0; i < 500 && first.stats().sharedCache.writes === 0; i++) {
      await new Promise((ok) => setTimeout(ok, 10))
    }
    assert.equal(first.stats().sharedCache.writes, 1)
    // A new client connects to Redis on a thread of its own; until then its lookups skip it.
    const second = new Client(clientOptions(sb, shared))
    for (let i = 0; i < 500 && second.stats().sharedCache.connections === 0; i++) {
      await new Promise((ok) => setTimeout(ok, 10))
    }
    const b = await second.lookup(DIRECTORY.labelled)
    assert.equal(second.stats().httpStatus['200'], undefined, 'no request from the second client')
    assert.equal(second.stats().sharedCache.hits, 1)
    assert.equal(second.stats().sharedCache.enabled, true)
    assert.ok(a.verified && b.verified)
    assert.equal(b.callerName, a.callerName)
    assert.equal(b.receiptId, a.receiptId)
  } finally {
    redis.stop()
  }
})

test('Redis settings are nol-core\'s, and a password never reaches an error', () => {
  assert.throws(() => new Client(clientOptions(sb, { redisUrl: 'http://:s3cret-pw@127.0.0.1:6379' })), (e) => {
    assert.equal(e.code, 'ERR_NOL_INVALID_ARG')
    assert.ok(!e.message.includes('s3cret-pw') && !inspect(e).includes('s3cret-pw'), e.message)
    return true
  })
  assert.throws(() => new Client(clientOptions(sb, { tlsCaFile: '/nonexistent/ca.pem' })), (e) => typeof e.code === 'string')
})
