// A thousand concurrent lookups: every Promise settles within the budget counted from its own
// call (queueing included, with the circuit breaker off), and the event loop keeps turning.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'

import { BUDGET_MS, DIRECTORY, MARGIN_MS, clientOptions, startSandbox, timed } from './sandbox.mjs'

const { Client } = createRequire(import.meta.url)('../index.js')
const N = 1000

let hanging
let healthy
before(async () => {
  ;[hanging, healthy] = await Promise.all([startSandbox('hang'), startSandbox()])
})
after(() => {
  hanging?.stop()
  healthy?.stop()
})

/** N distinct possible numbers: no single-flight or cache can help. */
const numbers = (offset = 0) => Array.from({ length: N }, (_, i) => `+1212555${String(offset + i).padStart(4, '0')}`)

test('1,000 concurrent lookups against a hanging service all settle within the budget', async () => {
  const client = new Client(clientOptions(hanging, { circuitBreaker: false }))
  const settled = await Promise.all(
    numbers().map((n) => {
      const start = performance.now()
      return client.lookup(n).then(
        (d) => ({ d, ms: performance.now() - start }),
        (e) => ({ rejected: e }),
      )
    }),
  )
  const reasons = {}
  let slowest = 0
  for (const s of settled) {
    assert.equal(s.rejected, undefined, 'a lookup rejected')
    assert.equal(s.d.action, 'allow_with_default_policy')
    reasons[s.d.failOpen] = (reasons[s.d.failOpen] ?? 0) + 1
    slowest = Math.max(slowest, s.ms)
  }
  // The workers' requests time out; the rest fail open at once (busy) instead of queueing.
  assert.ok(reasons.timeout > 0, JSON.stringify(reasons))
  assert.equal((reasons.timeout ?? 0) + (reasons.busy ?? 0), N, JSON.stringify(reasons))
  assert.equal(client.stats().circuitOpen, false)
  assert.ok(slowest < BUDGET_MS + MARGIN_MS, `slowest lookup settled after ${slowest.toFixed(1)} ms`)
})

/** Runs `work` under a 1 ms interval timer; resolves to the longest gap between ticks (ms). */
async function longestGap(work) {
  let last = performance.now()
  let worst = 0
  const ticker = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last)
    last = now
  }, 1)
  try {
    await work()
    await new Promise((r) => setTimeout(r, 20))
  } finally {
    clearInterval(ticker)
  }
  return worst
}

test('the event loop never stalls during 1,000 concurrent lookups', async () => {
  const client = new Client(clientOptions(healthy, { maxInFlight: 16, budgetMs: 2000 }))
  const stuck = new Client(clientOptions(hanging, { circuitBreaker: false }))
  // What this machine's scheduler alone costs a 1 ms timer (other work shares the cores).
  const idle = await longestGap(() => new Promise((r) => setTimeout(r, 1000)))
  let decisions = []
  const worst = await longestGap(async () => {
    // Calls arrive as a server's requests would: a few per turn of the loop. A fifth go to a
    // service that hangs: a lookup that blocked would stall the loop for the whole budget.
    const pending = []
    const list = numbers()
    for (let i = 0; i < list.length; i += 10) {
      for (const [j, n] of list.slice(i, i + 10).entries()) {
        pending.push(j < 2 ? stuck.lookup(n) : client.lookup(n))
      }
      await new Promise((r) => setImmediate(r))
    }
    decisions = await Promise.all(pending)
  })
  assert.equal(decisions.length, N)
  assert.ok(decisions.some((d) => d.verified), 'some lookups were answered')
  assert.ok(decisions.some((d) => d.failOpen === 'timeout'), 'some lookups hung to their deadline')
  // A few milliseconds on top of the scheduler's own noise; a blocking lookup would add the
  // whole 300 ms budget.
  const limit = idle + 25
  console.log(`# longest gap between 1 ms ticks: ${worst.toFixed(1)} ms during lookups, ${idle.toFixed(1)} ms idle`)
  assert.ok(worst < limit, `the event loop stalled for ${worst.toFixed(1)} ms (idle: ${idle.toFixed(1)} ms)`)
})

test('precalls queued behind a hanging service settle within the budget counted from the call', async () => {
  // precall and enroll wait on libuv's thread pool (4 threads): three rounds of them would take
  // three budgets if the budget started when a thread picked each one up.
  const client = new Client(clientOptions(hanging, { circuitBreaker: false }))
  const start = performance.now()
  const settled = await Promise.all([
    ...Array.from({ length: 8 }, () => timed(client.precall(DIRECTORY.business, DIRECTORY.noRecord), start)),
    ...Array.from({ length: 4 }, () => timed(client.enroll(DIRECTORY.business), start)),
  ])
  for (const { value, ms } of settled) {
    assert.equal(value.failOpen, 'timeout')
    assert.ok(ms < BUDGET_MS + MARGIN_MS, `${ms} ms`)
  }
})
