#!/usr/bin/env node
'use strict';
/*
 * Browser test of the live map (html/) against the real stack: a dev
 * broker, nginx with the module on a free port (18480 or the next free
 * one), and headless Debian chromium driven by playwright-core.  Prints
 * TAP; exits non-zero when a check fails.  Writes build/e2e/map.png.
 *
 * Every wait polls for a condition and has a deadline.
 */

const fs = require('fs');
const path = require('path');
const { ROOT, Stack, launchBrowser, waitFor } = require('./stack');

const TOPIC = 'e2e-map';
const OTHER = 'e2e-other';
const ALICE = 'e2e-alice';
const BOB = 'e2e-bob';
const XSS = '<img src=x onerror=alert(1)>';
const SCREENSHOT = path.join(ROOT, 'build/e2e/map.png');

/* ---- TAP ---------------------------------------------------------------- */

let count = 0;
let failed = 0;

function ok(cond, name, diag) {
  count++;
  if (cond) {
    console.log(`ok ${count} - ${name}`);
  } else {
    failed++;
    console.log(`not ok ${count} - ${name}`);
    if (diag !== undefined) {
      const text = typeof diag === 'string' ? diag : JSON.stringify(diag, null, 1);
      for (const line of text.split('\n')) console.log(`#   ${line}`);
    }
  }
  return cond;
}

/* JSON with object keys sorted: entities arrive in any order */
function canonical(v) {
  return JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.keys(x).sort().map((key) => [key, x[key]])) : x));
}

function same(got, want, name) {
  const g = canonical(got);
  const w = canonical(want);
  return ok(g === w, name, `got:  ${g}\nwant: ${w}`);
}

/* ---- the page, through its test hook ------------------------------------ */

function hook(page, expr) {
  return page.evaluate(`(() => { const g = window.geostream; return (${expr}); })()`);
}

async function counts(page, topic = TOPIC) {
  const list = await hook(page, 'g.entities.map(e => [e.topic, e.name, e.points])');
  const out = {};
  for (const [t, name, n] of list) if (t === topic) out[name] = n;
  return out;
}

/* Is something drawn on the trail canvas around each of these points? */
function trailPixels(page, points) {
  return page.evaluate((pts) => {
    const map = window.geostream.map;
    const canvas = document.querySelector('.leaflet-overlay-pane canvas');
    if (!canvas) return null;
    const ctx = canvas.getContext('2d');
    const c = canvas.getBoundingClientRect();
    const m = map.getContainer().getBoundingClientRect();
    const sx = canvas.width / c.width;
    const sy = canvas.height / c.height;
    return pts.map(([lat, lon]) => {
      const p = map.latLngToContainerPoint([lat, lon]);
      const x = Math.round((p.x + m.left - c.left) * sx);
      const y = Math.round((p.y + m.top - c.top) * sy);
      if (x < 2 || y < 2 || x > canvas.width - 3 || y > canvas.height - 3) return false;
      const d = ctx.getImageData(x - 2, y - 2, 5, 5).data;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
      return false;
    });
  }, points);
}

function viewContains(page, points) {
  return page.evaluate((pts) => {
    const b = window.geostream.map.getBounds();
    return pts.every(([lat, lon]) => b.contains([lat, lon]));
  }, points);
}

/* ---- the test ------------------------------------------------------------ */

async function run(stack, browser) {
  const { context } = browser;
  const page = await context.newPage();
  const dialogs = [];
  const pageErrors = [];
  const foreign = [];
  const streamRequests = [];

  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/consumer/')) streamRequests.push(u.pathname + u.search);
  });
  /* nothing leaves this machine: anything not for the test nginx fails */
  await context.route((url) => url.host !== `127.0.0.1:${stack.port}`, (route) => {
    foreign.push(route.request().url());
    return route.abort();
  });

  /* -- the page opens and subscribes -- */
  await page.goto(`${stack.base}/?topic=${TOPIC}&tiles=none`);
  await waitFor('the test hook', () => hook(page, 'g !== undefined'));
  const firstUrl = await waitFor('a stream request', () => streamRequests[0]);
  same(firstUrl, `/consumer/${TOPIC}?since=5m`, 'first connection asks for since=5m');
  await waitFor('badge live', async () => (await hook(page, 'g.status')) === 'live');
  ok(await page.textContent('#gs-status') === 'live', 'status badge says live');
  const ready = await waitFor('topic ready with a subscriber', () => stack.topicReady(TOPIC));
  ok(ready.subscribers === 1, 'status endpoint: topic ready, one subscriber', ready);

  /* -- three entities, 4, 5 and 6 points -- */
  const plan = { 'bus-1': 4, 'tram-2': 5, [XSS]: 6 };
  const start = { 'bus-1': [52.500, 13.370], 'tram-2': [52.530, 13.420], [XSS]: [52.510, 13.450],
                  'ferry-7': [52.490, 13.390] };
  const posted = {};
  let seq = 0;
  /* an entity's next position, a little north-east of the last */
  const nextPosition = (name) => {
    const k = (posted[name] || []).length;
    return [+(start[name][0] + k * 0.0021).toFixed(5),
            +(start[name][1] + k * (k % 2 ? 0.0017 : 0.0031)).toFixed(5)];
  };
  async function post(topic, name, n) {
    for (let i = 0; i < n; i++) {
      const pos = nextPosition(name);
      (posted[name] = posted[name] || []).push(pos);
      seq++;
      const answer = await stack.produce(topic, { name, message_id: `m${seq}`, lat: pos[0], lon: pos[1] });
      if (answer.name !== name) throw new Error('producer answered ' + JSON.stringify(answer));
    }
  }
  for (let round = 0; round < 6; round++) {
    for (const [name, n] of Object.entries(plan)) if (round < n) await post(TOPIC, name, 1);
  }
  await waitFor('15 points drawn', async () => (await hook(page, 'g.drawn')) >= 15);
  same(await counts(page), plan, 'three trails with exactly 4, 5 and 6 points');
  const ents = await hook(page, 'g.entities');
  const trails = {};
  for (const e of ents) trails[e.name] = e.trail;
  same(trails, posted, 'each trail holds the posted positions, in order');
  const colours = ents.map((e) => e.colour);
  ok(new Set(colours).size === 3 && colours.every((c) => /^hsl\(/.test(c)),
     'three distinct colours', colours);

  /* colours are derived from the name: a fresh page agrees */
  const again = await context.newPage();
  await again.goto(`${stack.base}/?topic=${TOPIC}&tiles=none&since=none`);
  await waitFor('second page hook', () => hook(again, 'g !== undefined'));
  await waitFor('second page live', async () => (await hook(again, 'g.status')) === 'live');
  await waitFor('two subscribers', async () => {
    const t = await stack.topicReady(TOPIC);
    return t && t.subscribers === 2;
  });
  await post(TOPIC, 'bus-1', 1);
  plan['bus-1']++;
  const colour2 = await waitFor('bus-1 on the second page', () =>
    hook(again, 'g.entities.filter(e => e.name === "bus-1").map(e => e.colour)[0]'));
  ok(colour2 === ents.find((e) => e.name === 'bus-1').colour, 'the colour is stable per name');
  await again.close();
  await waitFor('bus-1 has 5 points', async () => (await counts(page))['bus-1'] === 5);

  /* -- message values are text, never HTML -- */
  const rowNames = await page.$$eval('#gs-list .gs-row-name', (els) => els.map((e) => e.textContent));
  ok(rowNames.includes(XSS), 'the panel shows the name literally', rowNames);
  const labels = await page.$$eval('.gs-tooltip', (els) => els.map((e) => e.textContent));
  ok(labels.includes(XSS), 'the map label shows the name literally', labels);
  ok(await page.$$eval('img[src="x"]', (els) => els.length) === 0, 'no <img> was created');
  same(dialogs, [], 'no dialog opened');
  same(foreign, [], 'no request went anywhere but the test nginx (none for "x")');

  /* -- the panel: point counts, last seen, search -- */
  const rowsRight = (metas) => metas.length === 3 && metas.every(([name, meta]) =>
    new RegExp(`^${plan[name]} points \u00b7 (now|\\d+ s ago)$`).test(meta));
  let metas;
  try {
    await waitFor('rows with point counts', async () => {
      metas = await page.$$eval('#gs-list .gs-row', (rows) => rows.map((r) => [
        r.querySelector('.gs-row-name').textContent, r.querySelector('.gs-row-meta').textContent]));
      return rowsRight(metas);
    });
  } catch (e) { /* reported below */ }
  ok(rowsRight(metas), 'rows show point count and last seen', metas);
  ok(await page.textContent('#gs-entity-count') === '3', 'entity count 3');
  await page.fill('#gs-search', 'TRAM');
  same(await page.$$eval('#gs-list .gs-row-name', (els) => els.map((e) => e.textContent)),
       ['tram-2'], 'search filters the list (case-insensitive)');
  await page.fill('#gs-search', '');
  await waitFor('all rows back', async () =>
    (await page.$$eval('#gs-list .gs-row', (els) => els.length)) === 3);

  /* -- zoom to an entity, then zoom out and in: the trails stay -- */
  const overview = await hook(page, 'g.map.getZoom()');
  await page.click('#gs-list .gs-row:has(.gs-row-name:text-is("tram-2")) .gs-row-main');
  await waitFor('view on tram-2', () => viewContains(page, posted['tram-2']));
  const zoomed = await hook(page, 'g.map.getZoom()');
  ok(zoomed > overview && !(await viewContains(page, posted['bus-1'])),
     'clicking a row zooms to its trail', { overview, zoomed });
  await waitFor('tram-2 drawn', async () =>
    (await trailPixels(page, posted['tram-2'])).every(Boolean));
  ok(true, 'tram-2 trail pixels drawn at its positions');

  const before = await hook(page, 'g.entities.map(e => [e.name, e.points, e.onMap])');
  /* the zoom buttons animate: wait for each zoom to end */
  const zoomButton = async (which, want) => {
    await page.click(`.leaflet-control-zoom-${which}`);
    await waitFor(`zoom ${want}`, () => page.evaluate((z) => window.geostream.map.getZoom() === z &&
      !document.querySelector('.leaflet-zoom-anim'), want));
  };
  await page.evaluate(() => window.geostream.map.setZoom(3, { animate: false }));
  await zoomButton('in', 4);
  await page.evaluate(() => window.geostream.map.setZoom(17, { animate: false }));
  await zoomButton('out', 16);
  await page.click('#gs-fit');
  await waitFor('view fits all', () => viewContains(page, Object.values(posted).flat()));
  same(await hook(page, 'g.entities.map(e => [e.name, e.points, e.onMap])'), before,
       'zooming out and in keeps every trail, on the map');
  const drawnAll = await waitFor('all trails drawn after zooming', async () => {
    const px = await trailPixels(page, Object.values(posted).flat());
    return px && px.every(Boolean) ? px : null;
  });
  ok(drawnAll.length === 16, 'every position is drawn after zooming and fit-to-data');

  /* -- follow -- */
  await page.click('#gs-list .gs-row:has(.gs-row-name:text-is("bus-1")) .gs-follow');
  ok(await hook(page, 'g.following') === 'bus-1', 'follow button follows bus-1');
  /* at zoom 15 the next position is some 100 px from the current one */
  await page.evaluate(() => window.geostream.map.setZoom(15, { animate: false }));
  const offCentre = ([lat, lon]) => page.evaluate(([la, lo]) => {
    const map = window.geostream.map;
    if (map.getZoom() !== 15) return null;
    const c = map.latLngToContainerPoint(map.getCenter());
    const p = map.latLngToContainerPoint([la, lo]);
    return Math.hypot(c.x - p.x, c.y - p.y);
  }, [lat, lon]);
  const far = nextPosition('bus-1');
  ok(await offCentre(far) > 50, 'the next position is off centre before it arrives');
  await post(TOPIC, 'bus-1', 1);
  plan['bus-1']++;
  await waitFor('bus-1 drawn', async () => (await counts(page))['bus-1'] === plan['bus-1']);
  await waitFor('the view to follow bus-1', async () => {
    const d = await offCentre(far);
    return d !== null && d < 5;
  });
  ok(true, 'the view centres on the followed entity as it moves');
  await page.click('#gs-list .gs-following .gs-follow');
  ok(await hook(page, 'g.following') === null, 'a second click stops following');

  /* -- pause and resume -- */
  await page.click('#gs-pause');
  ok(await hook(page, 'g.paused') && (await page.textContent('#gs-pause')) === 'Resume',
     'pause');
  const received = await hook(page, 'g.received');
  await post(TOPIC, 'tram-2', 2);
  await waitFor('2 updates queued while paused', async () => {
    const now = await hook(page, '[g.received, g.queued, g.duplicates, g.ignored, g.drawn, g.streams]');
    if (now[0] === received + 2 && now[1] === 2) return true;
    throw new Error(JSON.stringify({ received, now }));
  });
  ok((await counts(page))['tram-2'] === 5, 'nothing is drawn while paused');
  await waitFor('the paused note', async () =>
    /2 updates waiting/.test(await page.textContent('#gs-paused')));
  ok(true, 'the panel says what waits');
  await page.click('#gs-pause');
  plan['tram-2'] += 2;
  await waitFor('tram-2 drawn after resume', async () => (await counts(page))['tram-2'] === 7);
  same(await counts(page), plan, 'resume draws what came meanwhile');

  /* -- de-duplication by cursor (events injected the stream's way) -- */
  const lastId = (await hook(page, 'g.streams'))[0].lastId;
  ok(/^\d+:\d+(,\d+:\d+)*$/.test(lastId), 'the stream keeps the last cursor', lastId);
  const older = lastId.split(',').map((pp) => {
    const [p, off] = pp.split(':').map(Number);
    return [p, off];
  });
  const maxPart = older.reduce((a, b) => (b[1] > a[1] ? b : a));
  maxPart[1] -= 1;
  const olderId = older.map(([p, o]) => `${p}:${o}`).join(',');
  const replay = JSON.stringify({ topic: TOPIC, name: 'bus-1', message_id: 'x', lat: 1, lon: 1 });
  const injected = await page.evaluate(([t, a, b, d]) =>
    [window.geostream.ingest(t, a, d), window.geostream.ingest(t, b, d)],
  [TOPIC, lastId, olderId, replay]);
  await hook(page, 'g.flush()');
  same(injected, [false, false], 'replayed cursors (the last and an older one) are dropped');
  ok(await hook(page, 'g.duplicates') === 2, 'duplicates counted');
  same(await counts(page), plan, 'no point added by the replays');

  /* -- a new page opens with the last 5 minutes (a bad since= falls back) --
   * (before the reload: the worker's history ring has the topic from its
   * start; see the report on since= after a reload) */
  const late = await context.newPage();
  const lateRequests = [];
  late.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/consumer/')) lateRequests.push(u.pathname + u.search);
  });
  await late.goto(`${stack.base}/?topic=${TOPIC}&tiles=none&since=${encodeURIComponent('5 minutes!')}`);
  const soFar = Object.values(plan).reduce((a, b) => a + b, 0);
  await waitFor(`${soFar} points of history`, async () =>
    (await hook(late, 'g.drawn')) >= soFar);
  same(lateRequests.slice(0, 1), [`/consumer/${TOPIC}?since=5m`],
       'an invalid since= is not sent: the default 5m is');
  same(await hook(late, 'g.entities.map(e => [e.name, e.trail])').then(Object.fromEntries),
       posted, 'since=5m: a new page shows every trail so far, exactly');
  await late.close();

  /* -- nginx -s reload: the page reconnects and resumes, no duplicate -- */
  await page.evaluate(() => {
    window.__badge = [];
    const badge = document.getElementById('gs-status');
    new MutationObserver(() => window.__badge.push(badge.textContent))
      .observe(badge, { childList: true, characterData: true, subtree: true });
  });
  const oldPid = (await stack.status()).pid;
  const connects = (await hook(page, 'g.streams'))[0].connects;
  const idBefore = (await hook(page, 'g.streams'))[0].lastId;
  const nRequests = streamRequests.length;
  stack.reload();
  /* positions sent while the page is away come with the resume */
  await waitFor('the page to notice', async () =>
    (await hook(page, 'g.streams'))[0].status === 'reconnecting', { intervalMs: 10 });
  for (const name of Object.keys(plan)) {
    await post(TOPIC, name, 1);
    plan[name] += 1;
  }
  await waitFor('the page to reconnect and be live', async () => {
    const s = (await hook(page, 'g.streams'))[0];
    const live = s.connects > connects && s.status === 'live' &&
      (await hook(page, 'g.status')) === 'live';
    if (!live) throw new Error(JSON.stringify({ stream: s, badge: await page.textContent('#gs-status') }));
    return live;
  }, { timeoutMs: 15000 });
  const badge = await page.evaluate(() => window.__badge);
  ok(badge.includes('reconnecting') && badge[badge.length - 1] === 'live',
     'badge: reconnecting, then live again', badge);
  same(streamRequests.slice(nRequests, nRequests + 1),
       [`/consumer/${TOPIC}?last_event_id=${idBefore}`],
       'the reconnect carries last_event_id=<last id>, not since=');
  await waitFor('the new worker ready with the subscriber', () =>
    stack.topicReady(TOPIC, { notPid: oldPid }), { timeoutMs: 15000 });
  for (const name of Object.keys(plan)) {
    await post(TOPIC, name, 2);
    plan[name] += 2;
  }
  const total = Object.values(plan).reduce((a, b) => a + b, 0);
  await waitFor(`${total} points drawn`, async () => (await hook(page, 'g.drawn')) >= total);
  same(await counts(page), plan,
       'after the reload the counts add up exactly: 1 sent while away + 2 after, each');
  same(await hook(page, 'g.entities.map(e => [e.name, e.trail])').then(Object.fromEntries),
       posted, 'every trail is the posted positions, in order, none twice');
  ok(await hook(page, 'g.duplicates') === 2, 'no duplicate arrived over the stream');
  ok(await hook(page, 'g.gaps') === 0 && await page.isHidden('#gs-gap'), 'no gap reported');


  /* -- several topics -- */
  await page.fill('#gs-topic-input', 'bad topic!');
  await page.click('#gs-topic-form button');
  ok(!(await page.isHidden('#gs-topic-error')), 'an invalid topic name is refused');
  await page.fill('#gs-topic-input', OTHER);
  await page.click('#gs-topic-form button');
  await waitFor(`${OTHER} live`, async () => {
    const s = (await hook(page, 'g.streams')).find((x) => x.topic === OTHER);
    return s && s.status === 'live';
  });
  await waitFor(`${OTHER} ready with a subscriber`, () => stack.topicReady(OTHER));
  await post(OTHER, 'ferry-7', 3);
  await waitFor('ferry-7 drawn', async () => (await counts(page, OTHER))['ferry-7'] === 3);
  same(await counts(page), plan, 'the first topic is unchanged by the second');
  ok(new URL(page.url()).searchParams.get('topic') === `${TOPIC},${OTHER}`,
     'the address lists both topics', page.url());
  const topicLabels = await page.$$eval('#gs-topics .gs-topic-name', (els) => els.map((e) => e.textContent));
  same(topicLabels, [TOPIC, OTHER], 'the panel lists both topics');
  /* one connection for both (a browser opens at most 6 to one server):
   * the first topic resumes from its cursor, the new one starts by since */
  const both = streamRequests[streamRequests.length - 1];
  const bothUrl = new URL(both, stack.base);
  ok(bothUrl.pathname === `/consumer/${TOPIC},${OTHER}`
     && new RegExp(`^${TOPIC}=\\d+:\\d+(,\\d+:\\d+)*$`).test(bothUrl.searchParams.get('last_event_id') || '')
     && bothUrl.searchParams.get('since') === '5m',
     'both topics come over one stream, which resumes the first and starts the second by since', both);

  /* -- viewport subscription -- */
  const nBefore = streamRequests.length;
  await page.check('#gs-viewport');
  const bboxUrls = await waitFor('the stream resubscribed with bbox', () => {
    const urls = streamRequests.slice(nBefore).filter((u) => /[?&]bbox=/.test(u));
    return urls.length >= 1 ? urls : null;
  });
  const view = await page.evaluate(() => {
    const b = window.geostream.map.getBounds();
    return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  });
  const bboxOk = bboxUrls.every((u) => {
    const m = /[?&]bbox=(-?[\d.]+),(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)(&|$)/.exec(u);
    if (!m) return false;
    const [w, s, e, n] = m.slice(1, 5).map(Number);
    return w <= view[0] && s <= view[1] && e >= view[2] && n >= view[3] && /last_event_id=/.test(u);
  });
  ok(bboxOk, 'bbox=west,south,east,north covers the view; streams resume', { bboxUrls, view });
  await waitFor('live again', async () => (await hook(page, 'g.status')) === 'live');
  await page.uncheck('#gs-viewport');
  await waitFor('resubscribed without bbox', () =>
    streamRequests.slice(-1).every((u) => !/bbox=/.test(u)) && streamRequests.length >= nBefore + 2);
  ok(true, 'unchecking drops the bbox');

  /* -- removing a topic removes its entities -- */
  await page.click(`#gs-topics .gs-topic:has(.gs-topic-name:text-is("${OTHER}")) .gs-topic-remove`);
  ok((await hook(page, 'g.streams')).length === 1 &&
     !(await hook(page, 'g.entities')).some((e) => e.topic === OTHER),
     'removing a topic closes its stream and clears its entities');

  /* -- more topics than a browser opens connections to one server (6) -- */
  const many = [1, 2, 3, 4, 5, 6, 7].map((i) => `e2e-many-${i}`);
  const eighth = many[many.length - 1];
  await page.fill('#gs-topic-input', many.join(','));
  await page.click('#gs-topic-form button');
  await waitFor(`${eighth} ready with a subscriber`, () => stack.topicReady(eighth));
  await stack.produce(eighth, { name: 'far-8', lat: 1, lon: 1 });
  const farDrawn = await waitFor('the eighth topic drawn',
    async () => (await counts(page, eighth))['far-8'] === 1);
  ok(farDrawn && (await hook(page, 'g.streams')).every((x) => x.status === 'live'),
     'with eight topics, the eighth is live and drawn too');
  for (const t of many) {
    await page.click(`#gs-topics .gs-topic:has(.gs-topic-name:text-is("${t}")) .gs-topic-remove`);
  }
  ok((await hook(page, 'g.streams')).length === 1, 'and they go again');

  /* -- screenshot -- */
  await waitFor('live', async () => (await hook(page, 'g.status')) === 'live');
  await page.click('#gs-fit');
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  ok(fs.statSync(SCREENSHOT).size > 10000, `screenshot written to ${path.relative(ROOT, SCREENSHOT)}`);

  same(pageErrors, [], 'no script error on the page');
  same(dialogs, [], 'no dialog at all');
  await page.close();

  /* -- tiles: OpenStreetMap by default; trails alone when tiles fail -- */
  const tiles = [];
  const tilePage = await context.newPage();
  await tilePage.route('https://tile.openstreetmap.org/**', (route) => {
    tiles.push(route.request().url());
    return route.fulfill({ status: 200, contentType: 'image/png', body: TILE_PNG });
  });
  await tilePage.goto(`${stack.base}/?topic=${TOPIC}&since=none`);
  await waitFor('tiles requested', () => tiles.length > 0);
  ok(tiles.every((u) => /^https:\/\/tile\.openstreetmap\.org\/\d+\/\d+\/\d+\.png$/.test(u)),
     'default tiles come from OpenStreetMap', tiles.slice(0, 3));
  ok(/OpenStreetMap/.test(await tilePage.textContent('.leaflet-control-attribution')),
     'the attribution names OpenStreetMap');
  await waitFor('tiles loaded', () => tilePage.$$eval('.leaflet-tile-loaded', (els) => els.length));
  ok(await tilePage.isHidden('#gs-tile-note'), 'no tile note when tiles load');
  await tilePage.close();

  const offline = await context.newPage();
  await offline.goto(`${stack.base}/?topic=${TOPIC}&since=none`);
  await waitFor('tile note', async () => !(await offline.isHidden('#gs-tile-note')));
  ok(/unavailable/.test(await offline.textContent('#gs-tile-note')),
     'failing tiles: a note, the map goes on');
  await waitFor('offline page live', async () => (await hook(offline, 'g.status')) === 'live');
  await waitFor('offline page subscribed', () => stack.topicReady(TOPIC));
  await stack.produce(TOPIC, { name: 'solo', lat: 10, lon: 10 });
  await waitFor('solo drawn without tiles', async () =>
    (await counts(offline))['solo'] === 1);
  ok(true, 'positions are drawn without tiles');

  /* a hidden tab gets no animation frames: trails still keep up */
  await offline.evaluate(() => {
    Object.defineProperty(document, 'hidden', { get: () => true });
    window.requestAnimationFrame = () => 0;
  });
  await stack.produce(TOPIC, { name: 'solo', lat: 10.001, lon: 10.001 });
  await waitFor('solo updated while hidden', async () =>
    (await counts(offline))['solo'] === 2);
  ok(await hook(offline, 'g.queued') === 0, 'a hidden page applies updates without frames');
  await offline.close();
}

/* ---- the map behind nginx's access control ------------------------------ */

/* conf/geostream-access.conf.in: auth_basic for everything, and
 * auth_request allowing alice her topic (and it with bob's in one stream),
 * bob his.  The page gets alice's credentials the way a browser does, as
 * the answer to nginx's 401. */
async function runAccess() {
  const crypto = require('crypto');
  const users = { alice: 'alice-pw', bob: 'bob-pw' };
  const basic = (user, pw = users[user]) =>
    ({ Authorization: 'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64') });
  const stack = new Stack({
    conf: 'conf/geostream-access.conf.in',
    topics: [`${ALICE}:2`, `${BOB}:1`],
    auth: { user: 'alice', password: users.alice },
    vars: {
      HTPASSWD: (st) => {
        const file = path.join(st.work, 'htpasswd');
        fs.writeFileSync(file, Object.entries(users).map(([u, pw]) =>
          `${u}:{SHA}${crypto.createHash('sha1').update(pw).digest('base64')}\n`).join(''));
        return file;
      },
      TOPICS: [`"alice:${ALICE}" 1;`, `"alice:${ALICE},${BOB}" 1;`, `"bob:${BOB}" 1;`].join(' ')
    }
  });
  let browser = null;
  try {
    await stack.start();
    ok(true, `nginx with auth_basic and auth_request on 127.0.0.1:${stack.port}`);

    const get = async (url, headers = {}) => {
      const res = await fetch(stack.base + url, { headers, signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      let error = null;
      try { error = JSON.parse(text).error; } catch (e) { /* HTML */ }
      return { status: res.status, error, www: res.headers.get('www-authenticate') };
    };
    same(await get('/'), { status: 401, error: null, www: 'Basic realm="geostream"' },
         'without credentials the map is refused (401)');
    same(await get(`/consumer/${ALICE}`), { status: 401, error: 'unauthorized', www: 'Basic realm="geostream"' },
         'and so is a stream, as JSON');
    same(await get(`/consumer/${ALICE}`, basic('bob')), { status: 403, error: 'forbidden', www: null },
         'a stream of a topic the user may not use: 403');
    same(await get(`/consumer/${ALICE}`, basic('alice', 'wrong')),
         { status: 401, error: 'unauthorized', www: 'Basic realm="geostream"' },
         'a wrong password: 401');
    ok((await stack.status()).instance.subscribers === 0, 'no refused stream subscribed');

    browser = await launchBrowser({ httpCredentials: { username: 'alice', password: users.alice } });
    const page = await browser.context.newPage();
    const streams = [];
    const pageErrors = [];
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/consumer/')) streams.push([u.pathname, r.status()]);
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const res = await page.goto(`${stack.base}/?topic=${ALICE}&tiles=none`);
    ok(res.status() === 200, 'with alice\'s credentials the map loads', res.status());
    await waitFor('the test hook', () => hook(page, 'g !== undefined'));
    await waitFor('badge live', async () => (await hook(page, 'g.status')) === 'live');
    await waitFor(`${ALICE} ready with a subscriber`, () => stack.topicReady(ALICE));
    ok(streams.some(([p, st]) => p === `/consumer/${ALICE}` && st === 200),
       'its stream is let through auth_request', streams);
    await stack.produce(ALICE, { name: 'alice-car', message_id: 'a1', lat: 48.85, lon: 2.35 });
    await stack.produce(ALICE, { name: 'alice-car', message_id: 'a2', lat: 48.86, lon: 2.36 });
    await waitFor('alice-car drawn', async () => (await counts(page, ALICE))['alice-car'] === 2);
    same(await hook(page, 'g.entities.map(e => [e.name, e.trail])'),
         [['alice-car', [[48.85, 2.35], [48.86, 2.36]]]],
         'the positions alice posts are drawn on her map');

    /* bob's topic alone is not alice's: its stream is refused, and the
     * page says it is not live */
    const other = await browser.context.newPage();
    const refused = [];
    other.on('response', (r) => {
      if (new URL(r.url()).pathname === `/consumer/${BOB}`) refused.push(r.status());
    });
    await other.goto(`${stack.base}/?topic=${BOB}&tiles=none`);
    await waitFor(`the answer to /consumer/${BOB}`, () => refused.length > 0);
    same(refused.slice(0, 1), [403], 'a map of a topic alice may not use gets 403 for its stream');
    ok(await hook(other, 'g.status') !== 'live', 'and is not live');
    ok((await stack.status()).instance.subscribers === 1, 'and does not subscribe');
    await other.close();
    same(pageErrors, [], 'no script error on the page');
    await page.close();
  } catch (e) {
    console.log('# nginx error.log (tail), with access control:');
    for (const line of stack.log('logs/error.log').split('\n').slice(-20)) console.log(`#   ${line}`);
    throw e;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stack.stop().catch(() => {});
  }
}

/* A 256x256 light grey PNG tile, made with zlib (no image library). */
const TILE_PNG = (() => {
  const zlib = require('zlib');
  const row = Buffer.alloc(1 + 256 * 3, 0xe9);
  row[0] = 0;
  const raw = Buffer.concat(Array.from({ length: 256 }, () => row));
  function chunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(256, 0);
  ihdr.writeUInt32BE(256, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
                        chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
})();

async function main() {
  const stack = new Stack({ topics: [`${TOPIC}:4`, `${OTHER}:2`] });
  let browser = null;
  let stopping = false;
  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    if (browser) await browser.close().catch(() => {});
    await stack.stop().catch(() => {});
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { cleanup().finally(() => process.exit(1)); });
  }

  try {
    await stack.start();
    ok(true, `dev broker and nginx on 127.0.0.1:${stack.port}`);
    browser = await launchBrowser();
    ok(true, 'headless chromium started');
    await run(stack, browser);
    await browser.close();
    browser = null;
    await stack.stop();
    await runAccess();
  } catch (e) {
    ok(false, 'the test ran to the end', String(e && e.stack || e));
    if (stack.work) {
      console.log('# nginx error.log (tail):');
      for (const line of stack.log('logs/error.log').split('\n').slice(-20)) console.log(`#   ${line}`);
    }
  } finally {
    await cleanup();
  }
  console.log(`1..${count}`);
  process.exitCode = failed ? 1 : 0;
}

main();
