// retellInbound and vapiToolResult called directly: the shapes they accept and return.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'

import { DIRECTORY, clientOptions, startSandbox } from './sandbox.mjs'

const { Client, retellInbound, vapiToolResult } = createRequire(import.meta.url)('../index.js')

let sb
let client
before(async () => {
  sb = await startSandbox()
  client = new Client(clientOptions(sb))
})
after(() => sb?.stop())

const inbound = { event: 'call_inbound', call_inbound: { from_number: DIRECTORY.business, to_number: '+14155550000' } }

test('retellInbound takes the parsed body, its text or its bytes', async () => {
  for (const body of [inbound, JSON.stringify(inbound), Buffer.from(JSON.stringify(inbound))]) {
    const r = await retellInbound(client, body)
    assert.equal(r.call_inbound.dynamic_variables.caller_name, 'Acme Support')
    assert.equal(r.call_inbound.metadata.provider, 'numbers.online')
    assert.equal(r.call_inbound.override_agent_id, undefined)
  }
})

test('retellInbound: options add the agent override and metadata; bad options throw', async () => {
  const r = await retellInbound(client, inbound, { overrideAgentId: 'agent_vip', overrideAgentVersion: 3, metadata: { crm: 'x' } })
  assert.equal(r.call_inbound.override_agent_id, 'agent_vip')
  assert.equal(r.call_inbound.override_agent_version, 3)
  assert.equal(r.call_inbound.metadata.crm, 'x')
  assert.throws(() => retellInbound(client, inbound, { budgetMs: 0 }), { code: 'ERR_NOL_INVALID_ARG' })
  assert.throws(() => retellInbound({}, inbound), (e) => e instanceof Error && typeof e.code === 'string')
})

test('retellInbound: caller_verified means a verified identity, not only a signed answer', async () => {
  const verifiedOf = async (number) => {
    const body = { event: 'call_inbound', call_inbound: { from_number: number, to_number: '+14155550000' } }
    return (await retellInbound(client, body)).call_inbound.dynamic_variables.caller_verified
  }
  assert.equal(await verifiedOf(DIRECTORY.business), 'true')
  assert.equal(await verifiedOf(DIRECTORY.individual), 'true')
  assert.equal(await verifiedOf(DIRECTORY.labelled), 'false')
  assert.equal(await verifiedOf(DIRECTORY.noRecord), 'false')
})

test('vapiToolResult reads a national number in the client\'s default country', async () => {
  const us = new Client(clientOptions(sb, { defaultCountry: 'US' }))
  const r = await vapiToolResult(us, { id: 'n1', arguments: { number: '(415) 555-1212' } })
  const bundle = JSON.parse(r.results[0].result)
  assert.equal(bundle.valid, true)
  assert.equal(bundle.number, DIRECTORY.business)
  assert.equal(bundle.caller_name, 'Acme Support')
  // Without a default country it is not a number.
  const bare = JSON.parse((await vapiToolResult(client, { id: 'n2', arguments: { number: '(415) 555-1212' } })).results[0].result)
  assert.equal(bare.valid, false)
})

test('retellInbound: anything that is not a call_inbound body fails open', async () => {
  for (const body of [42, null, 'nope', [], { call_inbound: { from_number: 7 } }]) {
    const r = await retellInbound(client, body)
    assert.equal(r.call_inbound.dynamic_variables.caller_risk, 'unknown')
    assert.equal(r.call_inbound.dynamic_variables.caller_on_dnc, 'unknown')
    assert.ok(r.call_inbound.metadata.fail_open)
  }
})

test('vapiToolResult: both tool-call shapes, and a toolCall that is not an object throws', async () => {
  const flat = await vapiToolResult(client, { id: 't1', name: 'phone_lookup', arguments: { phone_number: DIRECTORY.individual } })
  assert.equal(flat.results[0].toolCallId, 't1')
  const bundle = JSON.parse(flat.results[0].result)
  assert.equal(bundle.caller_name, 'Verified & online')
  assert.equal(bundle.identity_type, 'verified_individual')
  const listed = JSON.parse((await vapiToolResult(client, { id: 't2', arguments: { number: DIRECTORY.labelled } })).results[0].result)
  assert.equal(listed.caller_name, 'Café Zürich — Bäckerei')
  assert.equal(listed.verified, false) // a listed business is a name, not a verified identity
  assert.match(listed.message, /listed as Café Zürich/)
  assert.throws(() => vapiToolResult(client, 'x'), { code: 'ERR_NOL_INVALID_ARG' })
  assert.throws(() => vapiToolResult(client, { id: 't' }, { budgetMs: -1 }), { code: 'ERR_NOL_INVALID_ARG' })
})
