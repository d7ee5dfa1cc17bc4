// The example servers (examples/node) driven over HTTP with Retell- and Vapi-shaped requests:
// healthy and hanging upstreams, bad arguments, forged credentials. They always answer in time.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'

import { createRetellServer, signRetell } from '../../../examples/node/retell-server.mjs'
import { createVapiServer } from '../../../examples/node/vapi-server.mjs'
import { BUDGET_MS, DIRECTORY, MARGIN_MS, clientOptions, startSandbox } from './sandbox.mjs'

const { Client } = createRequire(import.meta.url)('../index.js')

const RETELL_KEY = 'key_retell_test_0123456789'
const VAPI_SECRET = 'vapi-secret-for-tests'
const servers = []
let healthy
let hanging

function listen(server) {
  servers.push(server)
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${server.address().port}/`)))
}

before(async () => {
  ;[healthy, hanging] = await Promise.all([startSandbox(), startSandbox('hang')])
})
after(() => {
  for (const s of servers) s.close()
  healthy?.stop()
  hanging?.stop()
})

async function post(url, body, headers = {}) {
  const start = performance.now()
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  const res = await fetch(url, { method: 'POST', body: text, headers: { 'content-type': 'application/json', ...headers } })
  const raw = await res.text()
  return { status: res.status, body: raw ? JSON.parse(raw) : null, ms: performance.now() - start }
}

const inbound = (from) => ({
  event: 'call_inbound',
  call_inbound: { agent_id: 'agent_12345', from_number: from, to_number: '+14155550000' },
})

async function retell(url, body, sign = true) {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  return post(url, text, sign ? { 'x-retell-signature': signRetell(Buffer.from(text), RETELL_KEY) } : {})
}

test('Retell: a signed call_inbound gets dynamic variables', async () => {
  const url = await listen(createRetellServer({ client: new Client(clientOptions(healthy)), retellApiKey: RETELL_KEY }))
  const r = await retell(url, inbound(DIRECTORY.business))
  assert.equal(r.status, 200)
  const vars = r.body.call_inbound.dynamic_variables
  assert.equal(vars.caller_name, 'Acme Support')
  assert.equal(vars.caller_risk, 'low')
  assert.equal(vars.caller_on_dnc, 'unknown')
  assert.equal(vars.caller_reassigned, 'unknown')
  assert.equal(vars.caller_line_type, 'unknown')
  assert.equal(vars.caller_verified, 'true')
  assert.match(vars.receipt_id, /^nol_rec_/)
  for (const v of Object.values(vars)) assert.equal(typeof v, 'string')
  assert.equal(r.body.call_inbound.metadata.receipt_id, vars.receipt_id)
  const risky = await retell(url, inbound(DIRECTORY.elevated))
  assert.equal(risky.body.call_inbound.dynamic_variables.caller_risk, 'high')
  assert.equal(risky.body.call_inbound.dynamic_variables.caller_name, '')
})

test('Retell: forged, missing or stale signatures get 401 at once', async () => {
  const url = await listen(createRetellServer({ client: new Client(clientOptions(healthy)), retellApiKey: RETELL_KEY }))
  const text = JSON.stringify(inbound(DIRECTORY.business))
  const forged = await post(url, text, { 'x-retell-signature': signRetell(Buffer.from(text), 'someone_elses_key') })
  assert.equal(forged.status, 401)
  const tampered = await post(url, text.replace('1212', '1213'), { 'x-retell-signature': signRetell(Buffer.from(text), RETELL_KEY) })
  assert.equal(tampered.status, 401)
  assert.equal((await post(url, text)).status, 401)
  const stale = await post(url, text, { 'x-retell-signature': signRetell(Buffer.from(text), RETELL_KEY, Date.now() - 3_600_000) })
  assert.equal(stale.status, 401)
  assert.equal((await post(url, text, { 'x-retell-signature': 'v=1,d=zz' })).status, 401)
})

test('Retell: a bad caller number or body still gets a valid 200 fail-open answer', async () => {
  const url = await listen(createRetellServer({ client: new Client(clientOptions(healthy)), retellApiKey: RETELL_KEY }))
  for (const body of [inbound('not-a-number'), inbound(undefined), { event: 'call_inbound' }, '{not json']) {
    const r = await retell(url, body)
    assert.equal(r.status, 200, JSON.stringify(body))
    const vars = r.body.call_inbound.dynamic_variables
    assert.equal(vars.caller_risk, 'unknown')
    assert.equal(vars.caller_name, '')
    assert.equal(vars.caller_on_dnc, 'unknown')
    assert.ok(['invalid_number', 'anonymous'].includes(r.body.call_inbound.metadata.fail_open))
  }
})

test('Retell: a hanging upstream answers 200 within the budget', async () => {
  const url = await listen(createRetellServer({ client: new Client(clientOptions(hanging)), retellApiKey: RETELL_KEY }))
  const runs = await Promise.all([1, 2, 3].map((i) => retell(url, inbound(`+1415555${7000 + i}`))))
  for (const r of runs) {
    assert.equal(r.status, 200)
    assert.equal(r.body.call_inbound.metadata.fail_open, 'timeout')
    assert.equal(r.body.call_inbound.dynamic_variables.caller_risk, 'unknown')
    assert.ok(r.ms < BUDGET_MS + MARGIN_MS, `${r.ms} ms`)
  }
})

const toolCalls = (...calls) => ({ message: { type: 'tool-calls', toolCallList: calls } })
const call = (id, args) => ({ id, type: 'function', function: { name: 'phone_lookup', arguments: args } })
const auth = { 'x-vapi-secret': VAPI_SECRET }

test('Vapi: a tool call gets the bundle as a JSON string', async () => {
  const url = await listen(createVapiServer({ client: new Client(clientOptions(healthy)), secret: VAPI_SECRET }))
  const r = await post(url, toolCalls(call('call_1', { number: DIRECTORY.business }), call('call_2', JSON.stringify({ number: '(415) 555-0111', country: 'US' }))), auth)
  assert.equal(r.status, 200)
  assert.deepEqual(r.body.results.map((x) => x.toolCallId), ['call_1', 'call_2'])
  const acme = JSON.parse(r.body.results[0].result)
  assert.equal(acme.valid, true)
  assert.equal(acme.caller_name, 'Acme Support')
  assert.equal(acme.verified, true)
  assert.equal(acme.spam_risk, 'low')
  assert.equal(acme.dnc, 'unknown')
  assert.equal(acme.reassigned, 'unknown')
  assert.match(acme.receipt_id, /^nol_rec_/)
  assert.equal(acme.fail_open, null)
  assert.equal(typeof acme.message, 'string')
  assert.equal(JSON.parse(r.body.results[1].result).caller_name, 'Café Zürich — Bäckerei')
  const bearer = await post(url, toolCalls(call('call_3', { number: DIRECTORY.business })), { authorization: `Bearer ${VAPI_SECRET}` })
  assert.equal(bearer.status, 200)
})

test('Vapi: a bad argument gets a message the agent can speak around', async () => {
  const url = await listen(createVapiServer({ client: new Client(clientOptions(healthy)), secret: VAPI_SECRET }))
  for (const args of [{ number: 'hello' }, {}, { number: '12' }, '{broken']) {
    const r = await post(url, toolCalls(call('call_bad', args)), auth)
    assert.equal(r.status, 200)
    const result = JSON.parse(r.body.results[0].result)
    assert.equal(r.body.results[0].toolCallId, 'call_bad')
    assert.equal(result.valid, false)
    assert.equal(result.error, 'invalid_argument')
    assert.ok(result.message.length > 0 && result.message.length < 200)
  }
})

test('Vapi: junk in toolCallList is skipped, never a crash', async () => {
  const url = await listen(createVapiServer({ client: new Client(clientOptions(healthy)), secret: VAPI_SECRET }))
  const body = { message: { type: 'tool-calls', toolCallList: [null, 7, 'x', [], call('call_ok', { number: DIRECTORY.business })] } }
  const r = await post(url, body, auth)
  assert.equal(r.status, 200)
  assert.deepEqual(r.body.results.map((x) => x.toolCallId), ['call_ok'])
  // The server is still up.
  assert.equal((await post(url, toolCalls(call('call_2', { number: DIRECTORY.business })), auth)).status, 200)
})

test('Vapi: a forged or missing secret gets 401', async () => {
  const url = await listen(createVapiServer({ client: new Client(clientOptions(healthy)), secret: VAPI_SECRET }))
  const body = toolCalls(call('call_1', { number: DIRECTORY.business }))
  assert.equal((await post(url, body)).status, 401)
  assert.equal((await post(url, body, { 'x-vapi-secret': 'guess' })).status, 401)
  assert.equal((await post(url, body, { authorization: 'Bearer guess' })).status, 401)
})

test('Vapi: a hanging upstream answers within the budget with a graceful message', async () => {
  const url = await listen(createVapiServer({ client: new Client(clientOptions(hanging)), secret: VAPI_SECRET }))
  const r = await post(url, toolCalls(call('call_h', { number: '+14155557777' })), auth)
  assert.equal(r.status, 200)
  const result = JSON.parse(r.body.results[0].result)
  assert.equal(result.fail_open, 'timeout')
  assert.equal(result.recommended_action, 'allow_with_default_policy')
  assert.match(result.message, /carry on/i)
  assert.ok(r.ms < BUDGET_MS + MARGIN_MS, `${r.ms} ms`)
})
