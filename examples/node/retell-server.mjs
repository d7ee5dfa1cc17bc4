// Retell inbound webhook server: Retell POSTs `call_inbound` when a call rings; we answer 200
// within Retell's 10 s with dynamic variables ({{caller_name}}, {{caller_risk}}, ...) from a
// numbers.online lookup that always fails open within its budget.
//
//   NUMBERS_ONLINE_API_KEY=... NOL_PUBLIC_KEY=inbound_public.pem RETELL_API_KEY=... \
//     node retell-server.mjs            (PORT, default 8080)
//
// Retell signs each webhook: `x-retell-signature: v=<unix ms>,d=<hex HMAC-SHA256 of the raw
// body followed by the timestamp, keyed with your Retell API key>`. Requests without a valid,
// fresh signature get 401 and cost no lookup.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

import { Client, retellInbound } from 'nol'

const MAX_BODY = 64 * 1024
const MAX_SKEW_MS = 5 * 60 * 1000

/** Whether `header` is Retell's signature of `raw` (a Buffer) with `apiKey`. */
export function verifyRetellSignature(raw, apiKey, header, now = Date.now()) {
  const match = /^v=(\d+),d=([0-9a-f]+)$/i.exec(String(header ?? '').trim())
  if (!match) return false
  const timestamp = match[1]
  if (Math.abs(now - Number(timestamp)) > MAX_SKEW_MS) return false
  const expected = createHmac('sha256', apiKey).update(raw).update(timestamp).digest()
  const given = Buffer.from(match[2], 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** The signature header Retell would send (for tests and local tools). */
export function signRetell(raw, apiKey, now = Date.now()) {
  const d = createHmac('sha256', apiKey).update(raw).update(String(now)).digest('hex')
  return `v=${now},d=${d}`
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function send(res, status, body) {
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** The answer when even the helper could not run: the call goes on, nothing implied. */
const FAIL_OPEN = {
  call_inbound: {
    dynamic_variables: {
      caller_name: '',
      caller_risk: 'unknown',
      caller_line_type: 'unknown',
      caller_on_dnc: 'unknown',
      caller_reassigned: 'unknown',
      receipt_id: '',
    },
  },
}

/**
 * An http.Server answering Retell's inbound webhook at any path.
 * @param {{ client: Client, retellApiKey: string, agentId?: string, log?: (line: string) => void }} options
 */
export function createRetellServer({ client, retellApiKey, agentId, log = () => {} }) {
  if (!retellApiKey) throw new Error('retellApiKey is required to authenticate Retell')
  return createServer(async (req, res) => {
    if (req.method !== 'POST') return send(res, 405, { error: 'POST only' })
    let raw
    try {
      raw = await readBody(req)
    } catch (e) {
      return send(res, e.status ?? 400, { error: 'unreadable body' })
    }
    if (!verifyRetellSignature(raw, retellApiKey, req.headers['x-retell-signature'])) {
      log('rejected a request with a missing or forged x-retell-signature')
      return send(res, 401, { error: 'invalid signature' })
    }
    let body
    try {
      body = JSON.parse(raw.toString('utf8'))
    } catch {
      body = null
    }
    if (body && body.event && body.event !== 'call_inbound') return send(res, 204)
    try {
      // Never rejects and settles within the client's budget: always a valid 200 body.
      const answer = await retellInbound(client, body ?? raw.toString('utf8'), { overrideAgentId: agentId })
      const vars = answer.call_inbound.dynamic_variables
      log(`call_inbound: action=${answer.call_inbound.metadata.action} risk=${vars.caller_risk} receipt=${vars.receipt_id}`)
      send(res, 200, answer)
    } catch (e) {
      log(`retellInbound failed (${e.code ?? 'error'}); answering fail-open`)
      send(res, 200, FAIL_OPEN)
    }
  })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const client = new Client({ budgetMs: Number(process.env.NOL_BUDGET_MS ?? 2000) })
  const server = createRetellServer({
    client,
    retellApiKey: process.env.RETELL_API_KEY,
    agentId: process.env.RETELL_AGENT_ID,
    log: (line) => console.log(line),
  })
  server.listen(Number(process.env.PORT ?? 8080), () => console.log(`retell webhook on :${server.address().port}`))
}
