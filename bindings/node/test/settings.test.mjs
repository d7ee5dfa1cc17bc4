// nol-core's one table of settings (SETTINGS), and its ranges reached through the options: every
// numeric setting takes its min and max and refuses just past them, with ERR_NOL_INVALID_ARG.
// The binding checks no range itself: these are nol-core's checks.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { createRequire } from 'node:module'
import { test } from 'node:test'

const nol = createRequire(import.meta.url)('../index.js')
const { Client, SETTINGS } = nol

const pem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })
// No request is made: a Client only starts its workers.
const base = { apiKey: 'nol_test_key', publicKeyPem: pem, baseUrl: 'http://127.0.0.1:9' }

/** Options with `value` at a setting's `option` path (`budgetMs`, `policy.maxNameLen`, ...). */
function withSetting(setting, value) {
  const options = structuredClone(base)
  const path = setting.option.split('.')
  let at = options
  for (const key of path.slice(0, -1)) at = at[key] ??= {}
  at[path.at(-1)] = value
  return options
}

const invalidArg = (setting, value) => (e) => {
  assert.ok(e instanceof Error, `${setting.option} = ${value}: not an Error`)
  assert.equal(e.code, 'ERR_NOL_INVALID_ARG', `${setting.option} = ${value}: ${e.message}`)
  assert.ok(e.message.includes(setting.option), e.message)
  return true
}

test('SETTINGS is nol-core\'s table: names, kinds, ranges and defaults', () => {
  assert.ok(Array.isArray(SETTINGS) && SETTINGS.length > 0)
  const names = SETTINGS.map((s) => s.name)
  assert.equal(new Set(names).size, names.length)
  for (const s of SETTINGS) {
    assert.match(s.name, /^[a-z]+(_[a-z]+)*$/)
    assert.equal(s.camelName, s.name.replace(/_([a-z])/g, (_, c) => c.toUpperCase()))
    assert.ok(['int', 'oneOf', 'flag', 'text'].includes(s.kind), s.kind)
    assert.equal(typeof s.default, 'string')
    assert.equal(typeof s.doc, 'string')
    if (s.kind === 'int') {
      assert.ok(Number.isInteger(s.min) && Number.isInteger(s.max) && s.min <= s.max, s.name)
      assert.equal(s.values, null)
      const d = Number(s.default)
      assert.ok(d >= s.min && d <= s.max, `${s.name} default ${s.default}`)
    } else if (s.kind === 'oneOf') {
      assert.ok(s.values.length > 0 && s.values.includes(Number(s.default)), s.name)
      assert.equal(s.min, null)
    } else {
      assert.deepEqual([s.min, s.max, s.values], [null, null, null], s.name)
    }
  }
  const budget = SETTINGS.find((s) => s.name === 'budget_ms')
  assert.deepEqual([budget.option, budget.min, budget.max, budget.default], ['budgetMs', 1, 60000, '400'])
  assert.equal(SETTINGS.find((s) => s.name === 'risk_threshold').option, 'policy.riskThreshold')
  assert.equal(SETTINGS.find((s) => s.name === 'breaker_failures').option, 'circuitBreaker.failures')
})

test('every numeric setting takes min and max and refuses min - 1 and max + 1', () => {
  const numeric = SETTINGS.filter((s) => s.kind === 'int' || s.kind === 'oneOf')
  assert.ok(numeric.length >= 9, numeric.map((s) => s.name).join())
  for (const s of numeric) {
    const values = s.kind === 'int' ? [s.min, s.max] : s.values
    const lo = Math.min(...values)
    const hi = Math.max(...values)
    for (const v of values) {
      assert.doesNotThrow(() => new Client(withSetting(s, v)), `${s.option} = ${v}`)
    }
    const refused = [lo - 1, hi + 1, lo + 0.5, Number.NaN, Number.POSITIVE_INFINITY]
    if (s.kind === 'oneOf') refused.push(lo + 1) // between the values (503 and 404: 405)
    for (const v of refused) {
      assert.throws(() => new Client(withSetting(s, v)), invalidArg(s, v), `${s.option} = ${v}`)
    }
  }
})

test('flags take true and false', () => {
  for (const s of SETTINGS.filter((s) => s.kind === 'flag')) {
    for (const v of [true, false]) assert.doesNotThrow(() => new Client(withSetting(s, v)), `${s.option} = ${v}`)
  }
  assert.doesNotThrow(() => new Client({ ...base, circuitBreaker: {} }))
  assert.doesNotThrow(() => new Client({ ...base, circuitBreaker: { failures: 3, coolDownMs: 250 } }))
})

test('per-call budgets go through the same range', async () => {
  const client = new Client(base)
  const { retellInbound, vapiToolResult } = nol
  for (const budgetMs of [0, 60001, 1.5, -1]) {
    assert.throws(() => client.lookup('+14155551212', { budgetMs }), { code: 'ERR_NOL_INVALID_ARG' }, `${budgetMs}`)
    assert.throws(() => retellInbound(client, {}, { budgetMs }), { code: 'ERR_NOL_INVALID_ARG' }, `${budgetMs}`)
    assert.throws(() => vapiToolResult(client, { id: 't' }, { budgetMs }), { code: 'ERR_NOL_INVALID_ARG' }, `${budgetMs}`)
  }
  // The old Node-only ceiling (600000) is gone: one range for every binding.
  assert.throws(() => new Client({ ...base, budgetMs: 600000 }), { code: 'ERR_NOL_INVALID_ARG' })
  // An invalid number fails open at once, so these settle without a request.
  const d = await client.lookup('12', { budgetMs: 60000 })
  assert.equal(d.failOpen, 'invalid_number')
  assert.equal(client.stats().lookups, 1)
})

test('text settings: an empty screening Contact and an empty risk tag are refused', () => {
  assert.throws(() => new Client({ ...base, policy: { screeningContact: '' } }), invalidArg({ option: 'policy.screeningContact' }, ''))
  assert.throws(() => new Client({ ...base, policy: { screeningContact: 'http://x' } }), { code: 'ERR_NOL_INVALID_ARG' })
  assert.throws(() => new Client({ ...base, policy: { riskTag: ' ' } }), { code: 'ERR_NOL_INVALID_ARG' })
  assert.throws(() => new Client({ ...base, defaultCountry: '' }), { code: 'ERR_NOL_INVALID_COUNTRY' })
  assert.doesNotThrow(() => new Client({ ...base, policy: { screeningContact: 'sip:screen@ivr.example', riskTag: 'Spam?' } }))
})

test('a Rust panic becomes a thrown Error with a code; the process goes on', () => {
  // In a child process, so that the panic message Rust prints stays out of this run's output.
  const script = `
    const nol = require(${JSON.stringify(createRequire(import.meta.url).resolve('../index.js'))})
    try { nol.__panicForTests(); console.log('no throw') } catch (e) {
      console.log(JSON.stringify({ error: e instanceof Error, code: e.code, message: e.message }))
    }
    console.log(JSON.stringify({ after: nol.normalize('+14155551212') }))
  `
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, RUST_BACKTRACE: '0' } })
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.signal, null)
  const [thrown, after] = run.stdout.trim().split('\n').map((l) => JSON.parse(l))
  assert.deepEqual(thrown, { error: true, code: 'GenericFailure', message: 'nol: a Rust panic for the tests' })
  assert.deepEqual(after, { after: '+14155551212' })
})
