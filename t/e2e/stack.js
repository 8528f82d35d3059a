'use strict';
/*
 * The real geostream stack for browser tests and benchmarks: a dev broker
 * (build/tools/geostream-devbroker) and nginx with the module, configured
 * from conf/geostream-dev.conf.in as tools/geostream-run does, on a free
 * loopback port, in a temporary prefix directory.  Also: bounded polling,
 * a headless Debian chromium through playwright-core, and small HTTP
 * helpers.  Every wait has a deadline.
 */

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const NGINX = process.env.NGINX_BIN || '/usr/sbin/nginx';
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run'
];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/* Polls fn() until it returns something truthy; throws after timeoutMs. */
async function waitFor(what, fn, { timeoutMs = 10000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/* The preferred port if it is free, else the next free one after it. */
async function freePort(preferred) {
  for (let port = preferred; port < preferred + 100; port++) {
    if (await portFree(port)) return port;
  }
  throw new Error(`no free port in ${preferred}..${preferred + 99}`);
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child, signal = 'SIGTERM', timeoutMs = 10000) {
  if (!child || exited(child)) return;
  const done = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs, 'timeout'));
  if (await Promise.race([done, timer]) === 'timeout') {
    child.kill('SIGKILL');
    await done;
  }
}

/* nginx reads a variable NGINX as inherited sockets (binary upgrade) and
 * then neither binds as configured nor daemonizes: never pass one on. */
function nginxEnv() {
  const env = { ...process.env };
  delete env.NGINX;
  return env;
}

/* The "user" line that lets nginx's workers read html/ wherever the
 * checkout is (tools/geostream-nginx-user, as make run uses it); throws
 * with what it says when they could not. */
function nginxUserLine() {
  try {
    return execFileSync(path.join(ROOT, 'tools/geostream-nginx-user'),
                        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    throw new Error(String(e.stderr || e.message).trim());
  }
}

class Stack {
  /* topics: ["name:partitions", ...] created on the broker up front;
   * conf: the template, conf/geostream-dev.conf.in by default; vars: more
   * @NAME@ placeholders of the template, each a string or a function of
   * the stack (called once the work directory exists); auth: {user,
   * password} that the stack's own requests send (Basic). */
  constructor({ topics = [], port = Number(process.env.GEOSTREAM_E2E_PORT) || 18480,
                workers = 1, conf = 'conf/geostream-dev.conf.in', vars = {}, auth = null } = {}) {
    this.topics = topics;
    this.preferredPort = port;
    this.workers = workers;
    this.conf = conf;
    this.vars = vars;
    this.auth = auth;
    this.work = null;
    this.broker = null;
    this.nginx = null;
  }

  /* headers for the stack's own requests */
  headers(extra = {}) {
    if (!this.auth) return extra;
    const basic = Buffer.from(`${this.auth.user}:${this.auth.password}`).toString('base64');
    return { ...extra, Authorization: `Basic ${basic}` };
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const user = nginxUserLine();
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), 'geostream-e2e.'));
    /* nginx's workers (not necessarily this user) reach their sockets and
     * temporary files in it */
    fs.chmodSync(this.work, 0o755);
    for (const d of ['conf', 'logs', 'temp']) fs.mkdirSync(path.join(this.work, d));

    const bootstrap = path.join(this.work, 'bootstrap');
    const brokerLog = fs.openSync(path.join(this.work, 'broker.log'), 'w');
    const args = ['--bootstrap-file', bootstrap];
    for (const t of this.topics) args.push('--topic', t);
    this.broker = spawn(path.join(ROOT, 'build/tools/geostream-devbroker'), args,
                        { stdio: ['ignore', brokerLog, brokerLog] });
    fs.closeSync(brokerLog);
    await waitFor('the dev broker', () => {
      if (exited(this.broker)) throw new Error('the dev broker exited: ' + this.log('broker.log'));
      return fs.existsSync(bootstrap) && fs.readFileSync(bootstrap, 'utf8').trim();
    });
    this.brokers = fs.readFileSync(bootstrap, 'utf8').trim();

    this.port = await freePort(this.preferredPort);
    const template = fs.readFileSync(path.join(ROOT, this.conf), 'utf8');
    const vars = {
      MODULE: path.join(ROOT, 'build/nginx/ngx_http_geostream_module.so'),
      BROKERS: this.brokers,
      PORT: String(this.port),
      HTML: path.join(ROOT, 'html'),
      CONF: path.join(ROOT, 'conf'),
      RUN: this.work,
      USER: user
    };
    for (const [name, value] of Object.entries(this.vars)) {
      vars[name] = typeof value === 'function' ? value(this) : value;
    }
    let conf = template.replace(/@([A-Z_]+)@/g, (all, name) => {
      if (!(name in vars)) throw new Error(`${this.conf}: no value for ${all}`);
      return vars[name];
    });
    /* geostream_status reports the worker that answers: with one worker
     * it is also the one that serves the page's stream. */
    if (!/^worker_processes\s+\S+;/m.test(conf)) {
      throw new Error(`${this.conf} has no worker_processes line`);
    }
    conf = conf.replace(/^worker_processes\s+\S+;/m, `worker_processes  ${this.workers};`);
    fs.writeFileSync(path.join(this.work, 'conf/nginx.conf'), conf);

    const env = nginxEnv();
    execFileSync(NGINX, this.nginxArgs('-t', '-q'), { env, stdio: 'pipe' });
    /* the template says "daemon off": nginx stays this process's child */
    this.nginx = spawn(NGINX, this.nginxArgs(), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.nginxStderr = '';
    this.nginx.stderr.on('data', (d) => { this.nginxStderr += d; });
    await waitFor('nginx to answer', async () => {
      if (exited(this.nginx)) {
        throw new Error('nginx exited: ' + this.nginxStderr + this.log('logs/error.log'));
      }
      return (await this.status()) !== null;
    });
    return this;
  }

  /* -e: the log of nginx's start, otherwise /var/log/nginx/error.log */
  nginxArgs(...extra) {
    return ['-p', this.work + '/', '-e', 'logs/error.log', '-c', 'conf/nginx.conf', ...extra];
  }

  reload() {
    execFileSync(NGINX, this.nginxArgs('-s', 'reload'), { env: nginxEnv(), stdio: 'pipe' });
  }

  log(name) {
    try {
      return fs.readFileSync(path.join(this.work, name), 'utf8');
    } catch (e) {
      return '';
    }
  }

  async status() {
    try {
      const res = await fetch(this.base + '/geostream/status',
                              { headers: this.headers(), signal: AbortSignal.timeout(2000) });
      return res.ok ? await res.json() : null;
    } catch (e) {
      return null;
    }
  }

  /* The status endpoint's entry for a topic, when it is ready and has a
   * subscriber (and, given, the worker is not oldPid), else null. */
  async topicReady(topic, { notPid } = {}) {
    const s = await this.status();
    if (!s || (notPid !== undefined && s.pid === notPid)) return null;
    const t = (s.consumer.topics || []).find((x) => x.topic === topic);
    return t && t.ready && t.subscribers >= 1 ? { ...t, pid: s.pid } : null;
  }

  async produce(topic, position) {
    const res = await fetch(`${this.base}/producer/${encodeURIComponent(topic)}`, {
      method: 'POST',
      headers: this.headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(position),
      signal: AbortSignal.timeout(5000)
    });
    const body = await res.text();
    if (res.status !== 202) throw new Error(`POST ${topic}: ${res.status} ${body}`);
    return JSON.parse(body);
  }

  async stop() {
    await stopChild(this.nginx, 'SIGTERM');
    await stopChild(this.broker, 'SIGTERM');
    if (this.work) fs.rmSync(this.work, { recursive: true, force: true });
    this.work = null;
  }
}

/* Headless Debian chromium with a fresh profile; close() removes it. */
async function launchBrowser(options = {}) {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    ({ chromium } = require(path.join(__dirname, 'node_modules', 'playwright-core')));
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'geostream-chromium.'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    ...options
  });
  const close = async () => {
    try {
      await context.close();
    } finally {
      fs.rmSync(profile, { recursive: true, force: true });
    }
  };
  return { context, close };
}

module.exports = { ROOT, Stack, launchBrowser, waitFor, sleep, freePort };
