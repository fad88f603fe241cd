// Timings of the e2b SDK against paddock serve, as JSON on stdout (run by
// BenchmarkAPI in test/e2e/api_bench_test.go, which sets the same variables
// as the tests). Each figure is whole SDK calls, as a program makes them.
// With PADDOCK_BENCH_WARM=1 serve runs with --warm TEMPLATE=1 and only
// creates are timed, each once the pool has an idle clone again (untimed).
import { execFileSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { Sandbox } from 'e2b'

const template = process.env.PADDOCK_SHELL_TEMPLATE
const runs = Number(process.env.PADDOCK_BENCH_RUNS || 10)

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return { n: s.length, min_ms: s[0], p50_ms: q(0.5), p99_ms: q(0.99), max_ms: s[s.length - 1] }
}

// idle lists the pool's idle clones (paddock ls --json).
function idle() {
  const all = JSON.parse(execFileSync(process.env.PADDOCK_BIN, ['ls', '--json']))
  return all.filter((s) => s.pool && s.status === 'running').map((s) => s.name)
}

if (process.env.PADDOCK_BENCH_WARM === '1') {
  const createToOutput = []
  let claimed = 0
  for (let i = 0; i < runs; i++) {
    let names = idle()
    for (let w = 0; names.length === 0; w++) {
      if (w > 1200) throw new Error('the warm pool did not refill within 2 min')
      await sleep(100)
      names = idle()
    }
    await sleep(500) // the new clone's supervisor settles
    const t0 = performance.now()
    const s = await Sandbox.create(template, { timeoutMs: 300_000 })
    const r = await s.commands.run('echo ready')
    if (r.stdout !== 'ready\n') throw new Error(`first output ${JSON.stringify(r.stdout)}`)
    createToOutput.push(performance.now() - t0)
    if (names.includes(s.sandboxId)) claimed++
    await s.kill()
  }
  console.log(JSON.stringify({ create_to_first_output_warm: { ...stats(createToOutput), claimed } }))
  process.exit(0)
}


const createToOutput = []
let sbx
for (let i = 0; i < runs; i++) {
  const t0 = performance.now()
  const s = await Sandbox.create(template, { timeoutMs: 300_000 })
  const r = await s.commands.run('echo ready')
  if (r.stdout !== 'ready\n') throw new Error(`first output ${JSON.stringify(r.stdout)}`)
  createToOutput.push(performance.now() - t0)
  if (i === runs - 1) sbx = s
  else await s.kill()
}

const runTrue = []
for (let i = 0; i < runs * 3; i++) {
  const t0 = performance.now()
  await sbx.commands.run('true')
  runTrue.push(performance.now() - t0)
}
await sbx.kill()

console.log(JSON.stringify({
  template,
  create_to_first_output: stats(createToOutput),
  commands_run_true: stats(runTrue),
}))
