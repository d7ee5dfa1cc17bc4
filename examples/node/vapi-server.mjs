// Vapi custom-tool server: the assistant calls the `phone_lookup` tool with a number; we
// answer within Vapi's budget with the numbers.online bundle as a JSON string, or a short
// message the agent can speak around when the number is bad or the lookup fails open.
//
//   NUMBERS_ONLINE_API_KEY=... NOL_PUBLIC_KEY=inbound_public.pem VAPI_SECRET=... \
//     node vapi-server.mjs              (PORT, default 8081)
//
// Vapi authenticates itself to a server URL with the secret configured for it, sent as
// `X-Vapi-Secret: <secret>` or, with a bearer credential, `Authorization: Bearer <secret>`.
// Anything else gets 401 and costs no lookup.
import { timingSafeEqual, createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { pathToFileURL } from 'node:url'

import { Client, vapiToolResult } from 'nol'

const MAX_BODY = 256 * 1024

function sameSecret(given, secret) {
  if (typeof given !== 'string') return false
  // Compare digests: equal length, constant time.
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(secret).digest()
  return timingSafeEqual(a, b)
}

/** Whether the request carries Vapi's secret. */
export function isFromVapi(headers, secret) {
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')
  return sameSecret(headers['x-vapi-secret'], secret) || (bearer !== null && sameSecret(bearer[1].trim(), secret))
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
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** The tool calls of a `tool-calls` message, whichever shape Vapi used. */
function toolCalls(message) {
  if (Array.isArray(message?.toolCallList)) return message.toolCallList
  if (Array.isArray(message?.toolWithToolCallList)) {
    return message.toolWithToolCallList.map((t) => t?.toolCall).filter(Boolean)
  }
  return []
}

/**
 * An http.Server answering Vapi's `tool-calls` server messages at any path.
 * @param {{ client: Client, secret: string, toolName?: string, log?: (line: string) => void }} options
 */
export function createVapiServer({ client, secret, toolName = 'phone_lookup', log = () => {} }) {
  if (!secret) throw new Error('secret is required to authenticate Vapi')
  return createServer(async (req, res) => {
    if (req.method !== 'POST') return send(res, 405, { error: 'POST only' })
    let body
    try {
      body = JSON.parse((await readBody(req)).toString('utf8'))
    } catch (e) {
      return send(res, e.status ?? 400, { error: 'expected a JSON body' })
    }
    if (!isFromVapi(req.headers, secret)) {
      log('rejected a request without the Vapi secret')
      return send(res, 401, { error: 'unauthorized' })
    }
    const message = body?.message
    if (message?.type !== 'tool-calls') return send(res, 200, {})
    // Whatever the list holds (null, numbers, other tools' calls), only our calls are answered,
    // and nothing in it can throw out of this handler.
    const calls = toolCalls(message).filter(
      (c) => c !== null && typeof c === 'object' && (c.function?.name ?? c.name) === toolName,
    )
    const answers = await Promise.all(
      calls.map((call) =>
        // Never rejects for the lookup; throws only for a bad argument, answered gracefully.
        Promise.resolve()
          .then(() => vapiToolResult(client, call))
          .catch(() => ({
            results: [{ toolCallId: String(call.id ?? ''), result: JSON.stringify({ message: 'The caller check is not available. Carry on as usual.' }) }],
          })),
      ),
    )
    const results = answers.flatMap((a) => a.results)
    log(`tool-calls: ${results.length} result(s)`)
    send(res, 200, { results })
  })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const client = new Client({ budgetMs: Number(process.env.NOL_BUDGET_MS ?? 2000) })
  const server = createVapiServer({ client, secret: process.env.VAPI_SECRET, log: (line) => console.log(line) })
  server.listen(Number(process.env.PORT ?? 8081), () => console.log(`vapi tool server on :${server.address().port}`))
}
