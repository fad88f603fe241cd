// Timings of the e2b SDK against paddock serve, as JSON on stdout (run by
// BenchmarkAPI in test/e2e/api_bench_test.go, which sets the same variables
// as the tests). Each figure is whole SDK calls, as a program makes them.
import { Sandbox } from 'e2b'

const template = process.env.PADDOCK_SHELL_TEMPLATE
const runs = Number(process.env.PADDOCK_BENCH_RUNS || 10)

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return { n: s.length, min_ms: s[0], p50_ms: q(0.5), p99_ms: q(0.99), max_ms: s[s.length - 1] }
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
