// Starts the sandbox (the stand-in numbers.online server of nol-cli) for a test file.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

export const SANDBOX_KEY = 'nol_sandbox_standard_key'
export const BUDGET_MS = 300
/** Slack on top of a budget for a busy two-core machine: the precise overshoot is a benchmark. */
export const MARGIN_MS = 400

/** The directory of the sandbox (nol-sandbox/src/directory.rs). */
export const DIRECTORY = {
  business: '+14155551212',
  individual: '+14155550100',
  labelled: '+14155550111',
  elevated: '+14155550122',
  blockCandidate: '+14155550133',
  noRecord: '+14155559999',
  /** A possible number the service answers `result: "invalid_number"` for. */
  invalid: '+15555550100',
}

/** Per-number faults: +141555509NN, NN = 01..16 in this order. */
export const FAULTS = [
  'hang', 'drip', 'slow-body', 'reset', 'close', '500', '503', '429', '401',
  'non-json', 'truncated', 'huge', 'wrong-types', 'bad-signature', 'no-signature', 'redirect',
]
export const faultNumber = (fault) => `+141555509${String(FAULTS.indexOf(fault) + 1).padStart(2, "0")}`

function binary() {
  const bin = process.env.NOL_BIN ?? join(ROOT, 'target', 'debug', 'nol')
  if (!existsSync(bin)) {
    const built = spawnSync('cargo', ['build', '-p', 'nol-cli'], { cwd: ROOT, stdio: 'inherit' })
    if (built.status !== 0) throw new Error('cargo build -p nol-cli failed')
  }
  return bin
}

/**
 * Starts `nol sandbox` on a free loopback port.
 * @param {string} [fault] a fault every lookup suffers (`hang`, ...)
 * @returns {Promise<{url: string, publicKeyPem: string, stop: () => void}>}
 */
export function startSandbox(fault) {
  const args = ['sandbox', '--listen', '127.0.0.1:0', ...(fault ? ['--fault', fault] : [])]
  const child = spawn(binary(), args, { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((ok, fail) => {
    let out = ''
    let url = null
    const timer = setTimeout(() => fail(new Error(`sandbox did not start: ${out}`)), 60_000)
    child.on('exit', (code) => fail(new Error(`sandbox exited ${code}: ${out}`)))
    child.stdout.on('data', (chunk) => {
      out += chunk
      url ??= /sandbox listening on (http:\/\/\S+)/.exec(out)?.[1] ?? null
      const key = /public key: (\S+)/.exec(out)?.[1]
      if (url && key) {
        clearTimeout(timer)
        child.stdout.removeAllListeners('data')
        child.stdout.resume()
        ok({ url, publicKeyPem: readFileSync(key, 'utf8'), stop: () => child.kill() })
      }
    })
  })
}

/** Options for a Client against a sandbox. */
export const clientOptions = (sb, extra = {}) => ({
  apiKey: SANDBOX_KEY,
  baseUrl: sb.url,
  publicKeyPem: sb.publicKeyPem,
  budgetMs: BUDGET_MS,
  circuitBreaker: false,
  ...extra,
})

/** Settles `promise` and says how long it took from `start` (ms). */
export async function timed(promise, start = performance.now()) {
  const value = await promise
  return { value, ms: performance.now() - start }
}

/**
 * Starts Debian's redis-server on a free loopback port, without persistence.
 * @returns {Promise<{url: string, stop: () => void}>}
 */
export async function startRedis() {
  const { createServer, connect } = await import('node:net')
  const port = await new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })
  const server = existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server'
  const child = spawn(server, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const ping = () => new Promise((ok) => {
    const c = connect(port, '127.0.0.1', () => c.write('PING\r\n'))
    c.on('data', (d) => { c.destroy(); ok(d.toString().startsWith('+PONG')) })
    c.on('error', () => ok(false))
  })
  const deadline = Date.now() + 10_000
  while (!(await ping())) {
    if (Date.now() > deadline) throw new Error('redis-server did not start')
    await new Promise((ok) => setTimeout(ok, 50))
  }
  return { url: `redis://127.0.0.1:${port}/0`, stop: () => child.kill() }
}
