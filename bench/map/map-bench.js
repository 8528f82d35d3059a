#!/usr/bin/env node
'use strict';
/*
 * Map drawing benchmark: ENTITIES entities each report once a second for
 * SECONDS seconds into the page in headless chromium, fed in-page through
 * the page's own message handler (window.geostream.ingest, the path the
 * EventSource handler takes), so that what is measured is parsing and
 * drawing.  The same feed goes, in the same run, into a reproduction of
 * the prototype's drawing (a new polyline per event, bench/map/prototype.js).
 *
 * Measured per variant, from Chrome's own counters (CDP Performance, in
 * thread time): main-thread CPU time (TaskDuration, of it ScriptDuration)
 * per 10 s and in all, as a share of wall time; frames drawn
 * (requestAnimationFrame callbacks) and frames later than 50 ms, and the
 * JS heap after a forced garbage collection at the end.
 *
 *   bench/map/run [SECONDS [ENTITIES]]        (defaults: 60 1000)
 *
 * The page itself runs against the real stack (dev broker, nginx with the
 * module, an idle topic), as in t/e2e.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { ROOT, Stack, launchBrowser, waitFor } = require('../../t/e2e/stack');

const SECONDS = Number(process.argv[2] || 60);
const ENTITIES = Number(process.argv[3] || 1000);
const TOPIC = 'bench-map';
const WINDOW_S = 10;

const VARIANTS = [
  { name: 'page, trail cap 500 (default)', path: `/?topic=${TOPIC}&tiles=none&since=none`,
    sink: 'geostream' },
  { name: 'page, trail cap 30 (?trail=30)', path: `/?topic=${TOPIC}&tiles=none&since=none&trail=30`,
    sink: 'geostream' },
  { name: 'prototype: a new polyline per event', path: '/bench-map/prototype.html',
    sink: 'prototypeMap' }
];

/* Runs in the page: feeds the entities, counts frames.  Feeding goes by
 * the clock: each 100 ms slot feeds a tenth of the entities, and slots a
 * busy main thread missed are fed late (so every variant gets the same
 * ENTITIES x SECONDS events). */
function installFeeder({ sinkName, topic, entities, seconds }) {
  const sink = window[sinkName];
  let seed = 42;
  const rnd = () => {                       /* mulberry32 */
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const ents = [];
  for (let i = 0; i < entities; i++) {
    ents.push({ name: `veh-${i}`, lat: 52.52 + (rnd() - 0.5) * 0.2, lon: 13.405 + (rnd() - 0.5) * 0.35,
                dlat: (rnd() - 0.5) * 0.0008, dlon: (rnd() - 0.5) * 0.0012 });
  }
  const b = window.__bench = { fed: 0, frames: 0, late: 0, maxGapMs: 0, done: false,
                               frameMarks: [] };
  let offset = 0;
  let slot = 0;
  const slots = seconds * 10;
  const t0 = performance.now();
  let lastFrame = t0;
  function frame(t) {
    b.frames++;
    const gap = t - lastFrame;
    if (gap > 50) b.late++;
    if (gap > b.maxGapMs) b.maxGapMs = gap;
    lastFrame = t;
    if (!b.done) requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
  function feed() {
    const due = Math.min(slots, Math.floor((performance.now() - t0) / 100) + 1);
    for (; slot < due; slot++) {
      for (let i = slot % 10; i < entities; i += 10) {
        const e = ents[i];
        e.dlat += (rnd() - 0.5) * 0.0002;
        e.dlon += (rnd() - 0.5) * 0.0003;
        e.lat += e.dlat;
        e.lon += e.dlon;
        offset++;
        sink.ingest(topic, `0:${offset}`, JSON.stringify({
          topic, name: e.name, message_id: String(offset),
          lat: +e.lat.toFixed(6), lon: +e.lon.toFixed(6) }));
        b.fed++;
      }
    }
    if (slot >= slots) {
      b.done = true;
      b.elapsedMs = performance.now() - t0;
      return;
    }
    setTimeout(feed, Math.max(0, t0 + slot * 100 - performance.now()));
  }
  feed();
}

async function metrics(cdp) {
  const { metrics: list } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(list.map((m) => [m.name, m.value]));
}

async function runVariant(stack, context, variant) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const cdp = await context.newCDPSession(page);
  /* thread time: what the main thread itself ran, whatever else the
   * machine does */
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
  await page.goto(stack.base + variant.path);
  await waitFor(`${variant.sink} on the page`, () =>
    page.evaluate((s) => window[s] !== undefined, variant.sink));
  if (variant.sink === 'geostream') {
    await waitFor('the page live', () => page.evaluate(() => window.geostream.status === 'live'));
    /* as if the user had touched the map: no automatic fit to the data */
    await page.evaluate(() => window.geostream.map.getContainer()
      .dispatchEvent(new Event('keydown')));
  }
  await page.evaluate((s) => window[s].map.setView([52.52, 13.405], 12, { animate: false }),
                      variant.sink);

  const load0 = os.loadavg()[0];
  const start = await metrics(cdp);
  await page.evaluate(installFeeder, { sinkName: variant.sink, topic: TOPIC,
                                       entities: ENTITIES, seconds: SECONDS });
  const windows = [];
  let prev = start;
  let prevFrames = 0;
  let prevWall = Date.now();
  const deadline = Date.now() + (SECONDS * 4 + 60) * 1000;
  for (;;) {
    const done = await page.evaluate(() => window.__bench.done);
    const now = Date.now();
    if (done || now - prevWall >= WINDOW_S * 1000) {
      const m = await metrics(cdp);
      const frames = await page.evaluate(() => window.__bench.frames);
      const wall = (now - prevWall) / 1000;
      windows.push({ busy: (m.TaskDuration - prev.TaskDuration) / wall,
                     fps: (frames - prevFrames) / wall });
      prev = m;
      prevFrames = frames;
      prevWall = now;
    }
    if (done) break;
    if (now > deadline) throw new Error(`${variant.name}: the feed did not finish in time`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const end = await metrics(cdp);
  const bench = await page.evaluate(() => window.__bench);
  await page.evaluate((s) => (s === 'geostream' ? window.geostream.flush() : null), variant.sink);
  await cdp.send('HeapProfiler.collectGarbage');
  const afterGc = await metrics(cdp);
  /* layers on the map: a trail and a head per entity, or every segment */
  const layers = await page.evaluate((s) => {
    const map = window[s].map;
    let n = 0;
    map.eachLayer(() => { n++; });
    return n;
  }, variant.sink);
  const points = variant.sink === 'geostream'
    ? await page.evaluate(() => window.geostream.entities.reduce((a, e) => a + e.points, 0))
    : null;
  await page.screenshot({ path: path.join(ROOT, 'build/e2e', `bench-map-${VARIANTS.indexOf(variant)}.png`) });
  await page.close();

  const wall = bench.elapsedMs / 1000;
  return {
    name: variant.name,
    fed: bench.fed,
    wall,
    busy: (end.TaskDuration - start.TaskDuration) / wall,
    script: (end.ScriptDuration - start.ScriptDuration) / wall,
    fps: bench.frames / wall,
    late: bench.late,
    maxGapMs: bench.maxGapMs,
    heapMB: afterGc.JSHeapUsedSize / 1048576,
    windows,
    layers,
    points,
    load: [load0, os.loadavg()[0]],
    errors
  };
}

function machine() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) || [])[1];
  const memKb = +(fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s*(\d+)/m) || [])[1];
  return { nproc: os.cpus().length, cpu, memGiB: (memKb / 1048576).toFixed(1),
           node: process.version, nproc_cmd: execFileSync('nproc').toString().trim() };
}

async function main() {
  const stack = new Stack({ topics: [`${TOPIC}:4`] });
  let browser = null;
  const results = [];
  try {
    await stack.start();
    browser = await launchBrowser();
    const { context } = browser;
    await context.route(`${stack.base}/bench-map/*`, (route) => {
      const file = path.join(__dirname, path.basename(new URL(route.request().url()).pathname));
      return route.fulfill({ path: file });
    });
    fs.mkdirSync(path.join(ROOT, 'build/e2e'), { recursive: true });
    const version = context.browser() ? context.browser().version() : '';
    for (const v of VARIANTS) {
      process.stderr.write(`bench/map: ${v.name} (${SECONDS} s)...\n`);
      results.push(await runVariant(stack, context, v));
    }
    report(results, version);
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stack.stop().catch(() => {});
  }
}

function report(results, version) {
  const m = machine();
  const chromium = version || execFileSync('/usr/bin/chromium', ['--version']).toString().trim();
  const out = [];
  out.push(`${ENTITIES} entities x 1 position/s x ${SECONDS} s, fed in-page; ` +
           `1280x800 headless ${chromium}, --disable-gpu (software canvas).`);
  out.push(`Machine: nproc ${m.nproc_cmd}, ${m.cpu}, ${m.memGiB} GiB; node ${m.node}.`);
  out.push('');
  out.push('| variant | events | main thread CPU | of it script | frames/s | frames > 50 ms | longest frame | JS heap after GC | layers | trail points | load avg before/after |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    out.push(`| ${r.name} | ${r.fed} | ${(r.busy * 100).toFixed(1)} % | ${(r.script * 100).toFixed(1)} % | ` +
             `${r.fps.toFixed(1)} | ${r.late} | ${Math.round(r.maxGapMs)} ms | ` +
             `${r.heapMB.toFixed(1)} MB | ${r.layers} | ${r.points === null ? '-' : r.points} | ` +
             `${r.load.map((l) => l.toFixed(1)).join(' / ')} |`);
  }
  out.push('');
  out.push(`Main thread CPU per ${WINDOW_S} s (% of wall time), first to last:`);
  out.push('');
  for (const r of results) {
    out.push(`- ${r.name}: ${r.windows.map((w) => (w.busy * 100).toFixed(0)).join(', ')}` +
             ` (frames/s: ${r.windows.map((w) => w.fps.toFixed(0)).join(', ')})`);
  }
  for (const r of results) {
    if (r.errors.length) out.push(`- page errors in ${r.name}: ${r.errors.join('; ')}`);
  }
  console.log(out.join('\n'));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e && e.stack || e);
    process.exitCode = 1;
  });
}

module.exports = { installFeeder, TOPIC };
