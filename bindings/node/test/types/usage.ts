// Compiled with `tsc --noEmit --strict` (npm run typecheck): the generated index.d.ts describes
// the API as the tests and the README use it.
import { Client, SETTINGS, normalize, parseVerstat, retellInbound, vapiToolResult, verifyResponse } from '../../index.js'
import type { Decision, Setting, Stir } from '../../index.js'

const e164: string | null = normalize('+14155551212', 'US')
const stir: Stir = parseVerstat('TN-Validation-Passed-A')
const ok: boolean = verifyResponse(Buffer.from('{}'), '-----BEGIN PUBLIC KEY-----')

async function main(): Promise<void> {
  const client = new Client({ budgetMs: 800, circuitBreaker: false, policy: { block: false, riskTag: 'Spam?', riskThreshold: 70 } })
  const d: Decision = await client.lookup('+14155551212', { verstat: 'TN-Validation-Passed', context: 'inbound_voice' })
  const name: string | null = d.callerName
  const reason: string | null = d.failOpen
  const code: number = d.sipCode
  const agi: Record<string, string> = d.agiVariables
  const json: string = d.json
  const ttl: number | null = d.ttlSeconds
  const age: number | null = d.cacheAgeMs
  const retell = await retellInbound(client, { event: 'call_inbound', call_inbound: { from_number: '+14155551212' } })
  const vars: Record<string, string> = retell.call_inbound.dynamic_variables
  const vapi = await vapiToolResult(client, { id: 'x', function: { name: 'phone_lookup', arguments: { number: '+1' } } })
  const result: string = vapi.results[0].result
  const stats = client.stats()
  const p99: number = stats.latencyP99Ms
  const precall = await client.precall('+14155551212', '+14155550100')
  const dnc: string = precall.dnc
  const enrolled: boolean = (await client.enroll('+14155551212')).enrolled
  const budget: Setting | undefined = SETTINGS.find((s) => s.name === 'budget_ms')
  const max: number | null = budget?.max ?? null
  const breaker = new Client({ circuitBreaker: { failures: 3 }, rateLimitPerMinute: 0 })
  console.log(e164, stir, ok, name, reason, code, agi, json, ttl, age, max, breaker, vars, result, p99, dnc, enrolled, client.budgetMs)
}

void main()
