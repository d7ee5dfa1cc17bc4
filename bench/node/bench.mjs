// nol against what a Node voice server would write instead, in one run, against the sandbox
// on loopback:
//
// 1. verification: `verifyResponse(body, pem)` against pure JavaScript (JSON.parse, sort the
//    top-level keys, JSON.stringify, crypto.verify with a KeyObject made once) on the same
//    signed bodies;
// 2. lookups: `Client.lookup` against `fetch` + that JavaScript verify, fresh (every call a
//    request: nol's cache off) and cached (nol's cache; a Map honouring the answer's TTL for
//    fetch).
//
// Prints a Markdown table (calls per second, p50 and p99 per call, calls made one at a time).
// Run: bash bench/node/run.sh   (NOL_BENCH_SECONDS=N per row, default 3)
import { createPublicKey, verify as edVerify } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const bindings = join(here, '../../bindings/node')
const { Client, verifyResponse } = createRequire(import.meta.url)(join(bindings, 'index.js'))
const { startSandbox, SANDBOX_KEY } = await import(join(bindings, 'test/sandbox.mjs'))

const SECONDS = Number(process.env.NOL_BENCH_SECONDS ?? 3)
const DIRECTORY = ['+14155551212', '+14155550100', '+14155550111', '+14155550122', '+14155550133']
const VERSTATS = [undefined, 'TN-Validation-Passed', 'TN-Validation-Failed', 'No-TN-Validation']
const CALLS = DIRECTORY.flatMap((number) => VERSTATS.map((verstat) => ({ number, verstat })))

/** The pure-JavaScript verify a Node developer would write from the contract. */
function makeJsVerify(pem) {
  const key = createPublicKey(pem)
  return (text) => {
    let body
    try {
      body = JSON.parse(text)
    } catch {
      return null
    }
    const sig = body?.response_signature
    if (typeof sig !== 'string' || !sig.startsWith('ed25519:')) return null
    const members = {}
    for (const k of Object.keys(body).sort()) if (k !== 'response_signature') members[k] = body[k]
    const ok = edVerify(null, Buffer.from(JSON.stringify(members)), key, Buffer.from(sig.slice(8), 'base64'))
    return ok ? body : null
  }
}

/** Times each implementation call by call, taking turns in rounds so noise falls on all alike. */
async function compare(impls) {
  const times = impls.map(() => [])
  const deadline = performance.now() + SECONDS * 1000 * impls.length
  let round = 0
  while (performance.now() < deadline) {
    for (const [i, [, fn]] of impls.entries()) {
      for (let j = 0; j < 200; j++) {
        const t0 = process.hrtime.bigint()
        await fn(round * 200 + j)
        times[i].push(Number(process.hrtime.bigint() - t0) / 1000)
      }
    }
    round++
  }
  return impls.map(([name], i) => {
    const t = times[i].sort((a, b) => a - b)
    const total = t.reduce((a, b) => a + b, 0)
    return { name, perSecond: (t.length / total) * 1e6, p50: t[Math.floor(t.length * 0.5)], p99: t[Math.floor(t.length * 0.99)] }
  })
}

/** Same as compare, for synchronous functions (no await between calls). */
function compareSync(impls) {
  const times = impls.map(() => [])
  const deadline = performance.now() + SECONDS * 1000 * impls.length
  let round = 0
  while (performance.now() < deadline) {
    for (const [i, [, fn]] of impls.entries()) {
      for (let j = 0; j < 500; j++) {
        const t0 = process.hrtime.bigint()
        fn(round * 500 + j)
        times[i].push(Number(process.hrtime.bigint() - t0) / 1000)
      }
    }
    round++
  }
  return impls.map(([name], i) => {
    const t = times[i].sort((a, b) => a - b)
    const total = t.reduce((a, b) => a + b, 0)
    return { name, perSecond: (t.length / total) * 1e6, p50: t[Math.floor(t.length * 0.5)], p99: t[Math.floor(t.length * 0.99)] }
  })
}

const sb = await startSandbox()
try {
  const url = `${sb.url}/api/v1/inbound/lookup`
  const jsVerify = makeJsVerify(sb.publicKeyPem)
  const fetchBody = async ({ number, verstat }) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${SANDBOX_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ number, context: 'inbound_voice', ...(verstat ? { verstat } : {}) }),
    })
    return res.text()
  }

  // The same signed bodies for both verifiers.
  const bodies = await Promise.all(CALLS.map(fetchBody))
  for (const b of bodies) {
    if (!verifyResponse(b, sb.publicKeyPem) || !jsVerify(b)) throw new Error('a sandbox body did not verify')
  }
  const verifyRows = compareSync([
    ['verifyResponse (nol)', (i) => verifyResponse(bodies[i % bodies.length], sb.publicKeyPem)],
    ['JSON.parse + sort + JSON.stringify + crypto.verify', (i) => jsVerify(bodies[i % bodies.length])],
  ])

  const options = { apiKey: SANDBOX_KEY, baseUrl: sb.url, publicKeyPem: sb.publicKeyPem, budgetMs: 2000, circuitBreaker: false }
  const fresh = new Client({ ...options, cacheSize: 0 })
  const cached = new Client(options)
  const jsCache = new Map()
  const fetchVerify = async (call) => {
    const body = jsVerify(await fetchBody(call))
    if (!body) throw new Error('unverified')
    return body
  }
  const fetchCached = async (call) => {
    const key = `${call.number}|${call.verstat ?? ''}`
    const hit = jsCache.get(key)
    if (hit && hit.expires > Date.now()) return hit.body
    const body = await fetchVerify(call)
    jsCache.set(key, { body, expires: Date.now() + (body.ttl_seconds ?? 60) * 1000 })
    return body
  }
  const lookup = (client) => async (i) => {
    const { number, verstat } = CALLS[i % CALLS.length]
    const d = await client.lookup(number, { verstat })
    if (!d.verified) throw new Error(`failed open: ${d.failOpen}`)
  }
  const freshRows = await compare([
    ['Client.lookup (nol), fresh', lookup(fresh)],
    ['fetch + JS verify, fresh', (i) => fetchVerify(CALLS[i % CALLS.length])],
  ])
  const cachedRows = await compare([
    ['Client.lookup (nol), cached', lookup(cached)],
    ['fetch + JS verify + Map cache, cached', (i) => fetchCached(CALLS[i % CALLS.length])],
  ])

  const fmt = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1))
  console.log(`Node ${process.version}, ${SECONDS} s per row, calls one at a time, sandbox on loopback\n`)
  console.log('| what | calls/s | p50 µs | p99 µs |')
  console.log('|---|---:|---:|---:|')
  for (const r of [...verifyRows, ...freshRows, ...cachedRows]) {
    console.log(`| ${r.name} | ${fmt(r.perSecond)} | ${fmt(r.p50)} | ${fmt(r.p99)} |`)
  }
} finally {
  sb.stop()
}
