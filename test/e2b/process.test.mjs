// Commands that outlive their client, through the e2b SDK unmodified:
// background commands and reconnects, input and kills by pid, the list,
// and PTYs. Environment as in sandbox.test.mjs; these run on
// PADDOCK_SHELL_TEMPLATE (debian), as the SDK runs commands in /bin/bash.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, CommandExitError } from 'e2b'

const template = process.env.PADDOCK_SHELL_TEMPLATE
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// until polls f until it returns a true value, for up to ms.
async function until(f, ms, what) {
  const end = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

// envd is a raw Connect client of the sandbox's process service, for what
// the SDK does not expose (tags).
function envd(sbx) {
  const headers = {
    'E2b-Sandbox-Id': sbx.sandboxId,
    'X-Access-Token': sbx.envdAccessToken,
    Authorization: 'Basic ' + Buffer.from('user:').toString('base64'),
  }
  const url = (m) => `${process.env.E2B_SANDBOX_URL}/process.Process/${m}`
  return {
    // stream calls a server-streaming method and returns its messages as
    // they come, and a way to hang up.
    stream(method, msg) {
      const ctl = new AbortController()
      const body = Buffer.from(JSON.stringify(msg))
      const head = Buffer.alloc(5)
      head.writeUInt32BE(body.length, 1)
      const res = fetch(url(method), {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/connect+json' },
        body: Buffer.concat([head, body]),
        signal: ctl.signal,
      })
      async function* messages() {
        const r = await res
        let buf = Buffer.alloc(0)
        for await (const chunk of r.body) {
          buf = Buffer.concat([buf, chunk])
          while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
            const n = buf.readUInt32BE(1)
            const m = JSON.parse(buf.subarray(5, 5 + n).toString())
            const end = buf[0] & 2
            buf = buf.subarray(5 + n)
            if (end) {
              if (m.error) throw new Error(`${m.error.code}: ${m.error.message}`)
              return
            }
            yield m
          }
        }
      }
      return { messages: messages(), hangUp: () => ctl.abort() }
    },
  }
}

test('background command: output made while disconnected reaches a reconnect by pid', async () => {
  const sbx = await Sandbox.create(template, { timeoutMs: 300_000 })
  try {
    const seen = []
    const h = await sbx.commands.run('echo one; while [ ! -e /tmp/go ]; do sleep 0.2; done; echo two; exit 5', {
      background: true,
      onStdout: (d) => seen.push(d),
    })
    await until(() => seen.join('').includes('one\n'), 30_000, 'the first line')
    await h.disconnect()
    await sleep(1_500) // the server lets go of the stream
    await sbx.commands.run('touch /tmp/go')
    // It ends while nobody listens; its output and exit status wait.
    await until(async () => !(await sbx.commands.list()).some((p) => p.pid === h.pid), 30_000, 'the command to end')
    assert.ok(!seen.join('').includes('two'), 'output reached a disconnected handle')

    const again = await sbx.commands.connect(h.pid)
    assert.equal(again.pid, h.pid)
    await assert.rejects(again.wait(), (e) => e instanceof CommandExitError && e.exitCode === 5 && e.stdout === 'two\n')
  } finally {
    await sbx.kill()
  }
})

test('reconnect by tag, stdin by pid after the stream closed, kill, list', async () => {
  const sbx = await Sandbox.create(template, { timeoutMs: 300_000 })
  try {
    // Tags are not in the SDK's commands API; envd's Start and Connect take them.
    const api = envd(sbx)
    const first = api.stream('Start', { process: { cmd: '/bin/bash', args: ['-c', 'read a; echo "got $a"; sleep 300'] }, tag: 'worker', stdin: true })
    const start = (await first.messages.next()).value
    const pid = start.event.start.pid
    assert.ok(pid > 0, JSON.stringify(start))
    first.hangUp()

    const listed = await until(async () => (await sbx.commands.list()).find((p) => p.pid === pid), 10_000, 'the tagged command in the list')
    assert.equal(listed.tag, 'worker')
    assert.equal(listed.cmd, '/bin/bash')
    assert.deepEqual(listed.args, ['-c', 'read a; echo "got $a"; sleep 300'])

    await sbx.commands.sendStdin(pid, 'hello\n')
    const byTag = api.stream('Connect', { process: { tag: 'worker' } })
    let out = ''
    for await (const m of byTag.messages) {
      if (m.event?.start) assert.equal(m.event.start.pid, pid)
      if (m.event?.data?.stdout) out += Buffer.from(m.event.data.stdout, 'base64').toString()
      if (out.includes('\n')) break
    }
    byTag.hangUp()
    assert.equal(out, 'got hello\n')

    const h = await sbx.commands.connect(pid)
    assert.equal(await sbx.commands.kill(pid), true)
    await assert.rejects(h.wait(), (e) => e instanceof CommandExitError && e.exitCode === 137)
    assert.ok(!(await sbx.commands.list()).some((p) => p.pid === pid))
    assert.equal(await sbx.commands.kill(pid), false)
    await assert.rejects(sbx.commands.connect(999999), /not found/)
  } finally {
    await sbx.kill()
  }
})

test('pty: create, write, resize, output, exit and kill', async () => {
  const sbx = await Sandbox.create(template, { timeoutMs: 300_000 })
  try {
    const dec = new TextDecoder()
    let out = ''
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { out += dec.decode(d) } })
    const enc = new TextEncoder()
    await sbx.pty.sendInput(term.pid, enc.encode('stty size; echo "term=$TERM"\n'))
    await until(() => out.includes('24 80') && out.includes('term=xterm-256color'), 30_000, `stty size 24 80 in ${JSON.stringify(out)}`)
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 })
    await sbx.pty.sendInput(term.pid, enc.encode('stty size\n'))
    await until(() => out.includes('30 100'), 30_000, `stty size 30 100 in ${JSON.stringify(out)}`)
    assert.ok((await sbx.commands.list()).some((p) => p.pid === term.pid))
    await sbx.pty.sendInput(term.pid, enc.encode('exit 3\n'))
    await assert.rejects(term.wait(), (e) => e instanceof CommandExitError && e.exitCode === 3)

    const second = await sbx.pty.create({ cols: 40, rows: 10, onData: () => {} })
    assert.equal(await sbx.pty.kill(second.pid), true)
    await assert.rejects(second.wait(), (e) => e instanceof CommandExitError && e.exitCode === 137)
    assert.equal(await sbx.pty.kill(second.pid), false)
  } finally {
    await sbx.kill()
  }
})
