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
  return all.filter((s) => s.pool && s.state === 'running').map((s) => s.name)
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

// files.write then files.read of 1 MiB, bytes compared.
const mib = new Uint8Array(1 << 20)
for (let i = 0; i < mib.length; i++) mib[i] = (i * 2654435761) >>> 24
const writeRead = []
for (let i = 0; i < runs; i++) {
  const t0 = performance.now()
  await sbx.files.write('/tmp/one.bin', mib)
  const back = await sbx.files.read('/tmp/one.bin', { format: 'bytes' })
  writeRead.push(performance.now() - t0)
  if (!Buffer.from(back).equals(Buffer.from(mib))) throw new Error('1 MiB read back differs')
}

// Download of 100 MiB (files.read), as MiB/s.
await sbx.commands.run('head -c 104857600 /dev/urandom > /tmp/big.bin')
const download = []
for (let i = 0; i < 3; i++) {
  const t0 = performance.now()
  const b = await sbx.files.read('/tmp/big.bin', { format: 'bytes' })
  const s = (performance.now() - t0) / 1000
  if (b.length !== 100 << 20) throw new Error(`downloaded ${b.length} bytes`)
  download.push(100 / s)
}
await sbx.kill()

// 50 creates and runs at once from one client.
const concurrent = Number(process.env.PADDOCK_BENCH_CONCURRENT || 50)
const each = []
let errors = 0
const t0 = performance.now()
await Promise.all(Array.from({ length: concurrent }, async () => {
  const t = performance.now()
  try {
    const s = await Sandbox.create(template, { timeoutMs: 600_000 })
    const r = await s.commands.run('echo ok')
    if (r.stdout !== 'ok\n') throw new Error(`output ${JSON.stringify(r.stdout)}`)
    each.push(performance.now() - t)
    await s.kill()
  } catch (e) {
    errors++
    console.error(`concurrent create: ${e}`)
  }
}))
const wall = performance.now() - t0

const sorted = [...download].sort((a, b) => a - b)
console.log(JSON.stringify({
  template,
  create_to_first_output: stats(createToOutput),
  commands_run_true: stats(runTrue),
  files_write_read_1mib: stats(writeRead),
  download_100mib_mib_per_s: { n: sorted.length, min: sorted[0], median: sorted[1], max: sorted[2] },
  concurrent_create_to_output: { ...stats(each), concurrent, errors, wall_ms: wall },
}))
