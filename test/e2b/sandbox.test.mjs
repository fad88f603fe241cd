// The e2b SDK, unmodified, against paddock serve. test/e2e/api_test.go
// starts the server and sets E2B_API_URL and E2B_SANDBOX_URL (both the
// server), E2B_API_KEY (key "a"), PADDOCK_OTHER_KEY (key "b"),
// PADDOCK_TEMPLATE (tiny) and PADDOCK_SHELL_TEMPLATE (debian: commands.run
// runs /bin/bash), and PADDOCK_BIN and PADDOCK_HOME to look at a sandbox
// from paddock's side.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, AuthenticationError, NotFoundError } from 'e2b'

const template = process.env.PADDOCK_TEMPLATE
const other = { apiKey: process.env.PADDOCK_OTHER_KEY }

async function listIds(opts) {
  const ids = []
  const pages = Sandbox.list(opts)
  while (pages.hasNext) {
    for (const s of await pages.nextItems()) ids.push(s.sandboxId)
  }
  return ids
}

test('create with metadata and env vars, get, list by metadata, kill', async () => {
  const sbx = await Sandbox.create(template, {
    metadata: { suite: 'e2b', run: String(process.pid) },
    envs: { GREETING: 'hello' },
    timeoutMs: 120_000,
  })
  const ready = Date.now()
  try {
    const info = await Sandbox.getInfo(sbx.sandboxId)
    assert.equal(info.sandboxId, sbx.sandboxId)
    assert.equal(info.templateId, template)
    assert.equal(info.state, 'running')
    assert.deepEqual(info.metadata, { suite: 'e2b', run: String(process.pid) })
    // The time to live counts from when the sandbox is ready, however
    // long a loaded host took to boot it.
    const ttl = info.endAt.getTime() - ready
    assert.ok(ttl > 100_000 && ttl <= 121_000, `time to live ${ttl} ms`)

    assert.ok((await listIds({ query: { metadata: { run: String(process.pid) } } })).includes(sbx.sandboxId))
    assert.ok(!(await listIds({ query: { metadata: { run: 'someone-else' } } })).includes(sbx.sandboxId))
  } finally {
    assert.equal(await Sandbox.kill(sbx.sandboxId), true)
  }
  assert.equal(await Sandbox.kill(sbx.sandboxId), false)
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), NotFoundError)
})

test('setTimeout: the sandbox is gone after its new deadline', async () => {
  const sbx = await Sandbox.create(template, { timeoutMs: 300_000 })
  await sbx.setTimeout(3_000)
  const info = await Sandbox.getInfo(sbx.sandboxId)
  assert.ok(info.endAt.getTime() - Date.now() < 4_000, `endAt ${info.endAt.toISOString()}`)
  await new Promise((r) => setTimeout(r, 8_000))
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), NotFoundError)
  assert.ok(!(await listIds()).includes(sbx.sandboxId))
})

test('pause and resume keep a file and a running process', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  try {
    await sbx.files.write('kept.txt', 'still here')
    const sleeper = await sbx.commands.run('sleep 600', { background: true })
    assert.equal(await Sandbox.pause(sbx.sandboxId), true)
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'paused')
    assert.ok((await listIds({ query: { state: ['paused'] } })).includes(sbx.sandboxId))
    const back = await Sandbox.connect(sbx.sandboxId)
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'running')
    assert.equal(await back.files.read('kept.txt'), 'still here')
    assert.ok((await back.commands.list()).some((p) => p.pid === sleeper.pid), 'the background process is gone after resume')
  } finally {
    await sbx.kill()
  }
})

test('autoPause: the deadline pauses, connect resumes with the memory kept', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 3_000, lifecycle: { onTimeout: 'pause' } })
  try {
    await sbx.files.write('kept.txt', 'kept')
    let state
    for (let i = 0; i < 100 && state !== 'paused'; i++) {
      await new Promise((r) => setTimeout(r, 200))
      state = (await Sandbox.getInfo(sbx.sandboxId)).state
    }
    assert.equal(state, 'paused')
    const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 120_000 })
    const info = await Sandbox.getInfo(sbx.sandboxId)
    assert.equal(info.state, 'running')
    assert.ok(info.endAt.getTime() - Date.now() > 100_000, `endAt ${info.endAt.toISOString()}`)
    assert.equal(await back.files.read('kept.txt'), 'kept')
  } finally {
    await sbx.kill()
  }
})

test('a wrong key is refused; another key does not see or kill the sandbox', async () => {
  await assert.rejects(Sandbox.create(template, { apiKey: 'e2b_' + '0'.repeat(40) }), AuthenticationError)
  await assert.rejects(listIds({ apiKey: 'e2b_' + '1'.repeat(40) }), AuthenticationError)
  const sbx = await Sandbox.create(template, { timeoutMs: 120_000 })
  try {
    await assert.rejects(Sandbox.getInfo(sbx.sandboxId, other), NotFoundError)
    assert.equal(await Sandbox.kill(sbx.sandboxId, other), false)
    assert.ok(!(await listIds(other)).includes(sbx.sandboxId))
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'running')
  } finally {
    await Sandbox.kill(sbx.sandboxId)
  }
})

test('an unknown template is a clear error', async () => {
  await assert.rejects(Sandbox.create('no-such-template'), /no-such-template/)
})

test('commands.run: output, exit code, env, cwd and user', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { envs: { GREETING: 'hello' }, timeoutMs: 300_000 })
  try {
    const r = await sbx.commands.run('echo "$GREETING from $(whoami)"; echo oops >&2')
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, 'hello from user\n')
    assert.equal(r.stderr, 'oops\n')
    await assert.rejects(sbx.commands.run('echo partial; exit 3'), (e) => e.exitCode === 3 && e.stdout === 'partial\n')
    assert.equal((await sbx.commands.run('id -u', { user: 'root' })).stdout, '0\n')
    // E2B's conventions: the user is user, home and start in /home/user, with sudo.
    assert.equal((await sbx.commands.run('pwd; echo $HOME; sudo -n id -u')).stdout, '/home/user\n/home/user\n0\n')
    assert.equal((await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n')
    assert.equal((await sbx.commands.run('echo $X', { envs: { X: 'y' } })).stdout, 'y\n')
    const seen = []
    await sbx.commands.run('for i in 1 2 3; do echo line$i; done', { onStdout: (d) => seen.push(d) })
    assert.equal(seen.join(''), 'line1\nline2\nline3\n')
  } finally {
    await sbx.kill()
  }
})

test('commands need the sandbox access token', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  try {
    assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
    const token = sbx.envdAccessToken
    sbx.envdAccessToken = 'a'.repeat(32)
    await assert.rejects(sbx.commands.run('echo ok'), /not found/)
    sbx.envdAccessToken = undefined
    await assert.rejects(sbx.commands.run('echo ok'), /not found/)
    sbx.envdAccessToken = token
    assert.equal((await sbx.commands.run('echo ok')).stdout, 'ok\n')
    await assert.rejects(Sandbox.connect(sbx.sandboxId, other), /not found/i)
  } finally {
    await sbx.kill()
  }
})

test('network settings: at create and live with updateNetwork', async () => {
  const { execFileSync } = await import('node:child_process')
  const policy = (id) => execFileSync(process.env.PADDOCK_BIN, ['policy', 'show', id], { encoding: 'utf8' })
  const sbx = await Sandbox.create(template, {
    timeoutMs: 120_000,
    network: { denyOut: ['0.0.0.0/0'], allowOut: ['registry.npmjs.org'] },
  })
  try {
    let p = policy(sbx.sandboxId)
    assert.match(p, /deny-all/)
    assert.match(p, /registry\.npmjs\.org/)
    await sbx.updateNetwork({ allowOut: ['pypi.org', '203.0.113.7'], denyOut: ['0.0.0.0/0'] })
    p = policy(sbx.sandboxId)
    assert.match(p, /pypi\.org/)
    assert.match(p, /203\.0\.113\.7\/32/)
    assert.doesNotMatch(p, /registry\.npmjs\.org/)
  } finally {
    await sbx.kill()
  }
})

test('network.rules: header transforms become the sandbox\'s secrets, replaced by updateNetwork', async () => {
  const { execFileSync } = await import('node:child_process')
  const paddock = (...args) => execFileSync(process.env.PADDOCK_BIN, args, { encoding: 'utf8' })
  const ruleSecrets = (id) => JSON.parse(paddock('secret', 'ls', '--json'))
    .filter((d) => d.sandbox === id)
    .map((d) => `${d.name} ${d.targets.map((t) => `${t.hosts.join(',')} ${t.header}`).join(';')}`)
    .sort()
  const sbx = await Sandbox.create(template, {
    timeoutMs: 120_000,
    network: {
      allowOut: ({ rules }) => [...rules.keys()],
      rules: {
        'api.example.test': [{ transform: { headers: { Authorization: 'Bearer from-rule' } } }],
        '*.models.example.test': [{ transform: () => ({ headers: { 'X-Key': 'k1' } }) }],
      },
    },
  })
  const id = sbx.sandboxId
  try {
    assert.deepEqual(ruleSecrets(id), [
      `${id}-rule-1 *.models.example.test X-Key`,
      `${id}-rule-2 api.example.test Authorization`,
    ])
    // No value is in the sandbox: its variables hold placeholders.
    assert.doesNotMatch(paddock('inspect', id), /from-rule|k1/)
    await sbx.updateNetwork({ allowOut: ['api.example.test'], rules: { 'api.example.test': [{ transform: { headers: { 'X-Other': 'v2' } } }] } })
    assert.deepEqual(ruleSecrets(id), [`${id}-rule-3 api.example.test X-Other`])
    await sbx.updateNetwork({ allowOut: ['api.example.test'] })
    assert.deepEqual(ruleSecrets(id), [])
  } finally {
    await sbx.kill()
  }
})

test('files.write and files.read: text, 10 MiB of bytes, folders made, errors', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  try {
    const info = await sbx.files.write('notes/hello.txt', 'hi from the SDK\n')
    assert.equal(info.name, 'hello.txt')
    assert.equal(info.path, '/home/user/notes/hello.txt')
    assert.equal(await sbx.files.read('notes/hello.txt'), 'hi from the SDK\n')
    assert.equal((await sbx.commands.run('cat /home/user/notes/hello.txt; stat -c %U notes/hello.txt')).stdout, 'hi from the SDK\nuser\n')

    const big = new Uint8Array(10 << 20)
    for (let i = 0, x = 7; i < big.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; big[i] = x >>> 24 }
    await sbx.files.write('/tmp/big.bin', big)
    const back = await sbx.files.read('/tmp/big.bin', { format: 'bytes' })
    assert.equal(back.length, big.length)
    assert.ok(Buffer.from(back).equals(Buffer.from(big)), '10 MiB read back differs')

    await sbx.files.write('/root/secret.txt', 'root only', { user: 'root' })
    await assert.rejects(sbx.files.read('/root/secret.txt'), /permission denied/)
    assert.equal(await sbx.files.read('/root/secret.txt', { user: 'root' }), 'root only')
    await assert.rejects(sbx.files.read('/no/such/file'), /no such file/)
  } finally {
    await sbx.kill()
  }
})

test('files: list, exists, makeDir, rename, remove, getInfo, as the user', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  try {
    assert.equal(await sbx.files.makeDir('proj/src'), true)
    assert.equal(await sbx.files.makeDir('proj/src'), false)
    await sbx.files.write('proj/src/a.txt', 'a')
    await sbx.files.write('proj/README', 'readme')
    const top = await sbx.files.list('proj')
    assert.deepEqual(top.map((e) => [e.name, e.type]).sort(), [['README', 'file'], ['src', 'dir']])
    const deep = await sbx.files.list('proj', { depth: 2 })
    assert.ok(deep.some((e) => e.path === '/home/user/proj/src/a.txt'))
    const info = await sbx.files.getInfo('proj/README')
    assert.equal(info.size, 6)
    assert.equal(info.owner, 'user')
    assert.equal(await sbx.files.exists('proj/README'), true)
    assert.equal(await sbx.files.exists('proj/nope'), false)
    const moved = await sbx.files.rename('proj/README', 'proj/README.md')
    assert.equal(moved.path, '/home/user/proj/README.md')
    assert.equal(await sbx.files.read('proj/README.md'), 'readme')
    await sbx.files.remove('proj/src')
    assert.equal(await sbx.files.exists('proj/src'), false)
    await assert.rejects(sbx.files.makeDir('/root/forbidden'), /permission/i)
    assert.equal(await sbx.files.makeDir('/root/allowed', { user: 'root' }), true)
  } finally {
    await sbx.kill()
  }
})

test('background commands: list, stdin, kill', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  try {
    const sleeper = await sbx.commands.run('sleep 120', { background: true })
    assert.ok(sleeper.pid > 0)
    assert.ok((await sbx.commands.list()).some((p) => p.pid === sleeper.pid))
    assert.equal(await sbx.commands.kill(sleeper.pid), true)
    await assert.rejects(sleeper.wait(), (e) => e.exitCode !== 0)
    assert.ok(!(await sbx.commands.list()).some((p) => p.pid === sleeper.pid))

    const cat = await sbx.commands.run('tr a-z A-Z', { background: true, stdin: true })
    await sbx.commands.sendStdin(cat.pid, 'hello ')
    await sbx.commands.sendStdin(cat.pid, 'stdin\n')
    await sbx.commands.closeStdin(cat.pid)
    const r = await cat.wait()
    assert.equal(r.stdout, 'HELLO STDIN\n')
    await assert.rejects(sbx.commands.sendStdin(999999, 'x'), /not found/)
  } finally {
    await sbx.kill()
  }
})

test('snapshots: a running sandbox is saved; a create from the snapshot forks it', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  let fork
  try {
    await sbx.files.write('state.txt', 'before the snapshot')
    const snap = await sbx.createSnapshot()
    assert.match(snap.snapshotId, /^snap-/)
    await sbx.files.write('state.txt', 'after the snapshot')
    const listed = []
    const pages = Sandbox.listSnapshots()
    while (pages.hasNext) for (const s of await pages.nextItems()) listed.push(s.snapshotId)
    assert.ok(listed.includes(snap.snapshotId), `snapshots: ${listed}`)
    await assert.rejects(Sandbox.create(snap.snapshotId, other), /snap-/)

    fork = await Sandbox.create(snap.snapshotId, { timeoutMs: 120_000 })
    assert.notEqual(fork.sandboxId, sbx.sandboxId)
    assert.equal(await fork.files.read('state.txt'), 'before the snapshot')
    assert.equal(await sbx.files.read('state.txt'), 'after the snapshot')
    assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), true)
    assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), false)
  } finally {
    await sbx.kill()
    if (fork) await fork.kill()
  }
})

test('fork: each fork continues the running sandbox, which goes on', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000, metadata: { role: 'parent' } })
  const forks = []
  try {
    await sbx.files.write('state.txt', 'before the fork')
    const made = await sbx.fork({ count: 2, timeoutMs: 120_000 })
    assert.equal(made.length, 2)
    for (const f of made) {
      assert.ok(!(f instanceof Error), `fork failed: ${f}`)
      forks.push(f)
    }
    assert.notEqual(forks[0].sandboxId, forks[1].sandboxId)
    await forks[0].files.write('state.txt', 'changed in fork 0')
    assert.equal(await forks[1].files.read('state.txt'), 'before the fork')
    assert.equal(await sbx.files.read('state.txt'), 'before the fork')
    assert.equal((await forks[1].commands.run('whoami')).stdout, 'user\n')
    assert.deepEqual((await Sandbox.getInfo(forks[0].sandboxId)).metadata, { role: 'parent' })
    assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'running')
    await assert.rejects(Sandbox.fork(sbx.sandboxId, other), /not found/i)
  } finally {
    await sbx.kill()
    for (const f of forks) await f.kill()
  }
})

test('getMetrics: one sample of CPU, memory and disk', async () => {
  const sbx = await Sandbox.create(template, { timeoutMs: 120_000 })
  try {
    const [m, ...rest] = await sbx.getMetrics()
    assert.equal(rest.length, 0)
    assert.ok(m.cpuCount >= 1, `cpuCount ${m.cpuCount}`)
    assert.ok(m.cpuUsedPct >= 0 && m.cpuUsedPct <= 100, `cpuUsedPct ${m.cpuUsedPct}`)
    assert.ok(m.memTotal > 100 << 20 && m.memUsed > 0 && m.memUsed < m.memTotal, `memory ${m.memUsed}/${m.memTotal}`)
    assert.ok(m.diskTotal > 0 && m.diskUsed > 0 && m.diskUsed < m.diskTotal, `disk ${m.diskUsed}/${m.diskTotal}`)
    assert.ok(Math.abs(m.timestamp.getTime() - Date.now()) < 60_000, `timestamp ${m.timestamp}`)
  } finally {
    await sbx.kill()
  }
})

test('files.watchDir: create, write, rename, remove, in sub-folders too', async () => {
  const sbx = await Sandbox.create(process.env.PADDOCK_SHELL_TEMPLATE, { timeoutMs: 300_000 })
  try {
    await sbx.files.makeDir('w')
    const seen = []
    const handle = await sbx.files.watchDir('w', (e) => seen.push(`${e.type} ${e.name}`), { recursive: true })
    await sbx.files.write('w/a.txt', 'x')
    await sbx.commands.run('mv w/a.txt w/b.txt; mkdir w/sub; sleep 0.5; touch w/sub/deep; rm w/b.txt')
    const want = ['create a.txt', 'write a.txt', 'rename a.txt', 'create b.txt', 'create sub', 'create sub/deep', 'remove b.txt']
    for (let i = 0; i < 100 && !want.every((w) => seen.includes(w)); i++) await new Promise((r) => setTimeout(r, 100))
    await handle.stop()
    for (const w of want) assert.ok(seen.includes(w), `no "${w}" in ${JSON.stringify(seen)}`)
    await assert.rejects(sbx.files.watchDir('no-such-folder', () => {}), /not found|no such/i)
  } finally {
    await sbx.kill()
  }
})
