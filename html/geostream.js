/*
 * geostream live map.
 *
 * Subscribes to the module's Server-Sent-Events stream at /consumer/<topics>
 * (one EventSource for all selected topics) and draws, per entity, one trail
 * (a polyline extended in place) and one head marker with its name, on
 * Leaflet's canvas renderer.  Plain script, no framework, no build step:
 * nginx serves this directory as-is and Leaflet from /leaflet/.
 *
 * Page arguments and data attributes: see index.html.
 *
 * Data path:  EventSource message -> ingest() (parse, de-duplicate by
 * cursor, queue) -> flush() at most every FLUSH_MS (less often when
 * drawing is slow) on an animation frame, unless paused -> one layer
 * update per entity that moved.
 *
 * Everything that comes from a stream (names, ids, values, topics) is
 * rendered as text (textContent, DOM nodes), never as HTML.
 *
 * Test and benchmark hook: window.geostream (see exposeHook).
 */
(function () {
  'use strict';

  /* ---- configuration ------------------------------------------------- */

  var TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
  var TILE_ATTRIBUTION =
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';
  var TILE_MAX_ZOOM = 19;

  var DEFAULT_TOPIC = 'geostream';
  var DEFAULT_SINCE = '5m';
  var CONSUMER_PATH = '/consumer/';
  var TOPIC_RE = /^[A-Za-z0-9._-]{1,249}$/;   /* Kafka's topic names */
  /* what the server takes as since=: latest, beginning, ms since the
   * epoch, or an nginx duration such as 90s, 5m, 1h30m */
  var SINCE_RE = /^(latest|beginning|\d{1,19}|(\d+(ms|s|m|h|d|w|M|y))+)$/;

  var TRAIL_POINTS = 500;          /* points kept per entity */
  var MAX_TRAIL_POINTS = 100000;
  var FLUSH_MS = 250;              /* draw at most this often, */
  var DRAW_SHARE = 4;              /* and at most 1/N of the time */
  var MAX_QUEUE = 200000;          /* updates held while paused */
  var FIT_FLUSHES = 20;            /* fit the view to the data during the */
  var FIT_MS = 3000;               /* first N draws and T ms of data */
  var FIT_MAX_ZOOM = 16;
  var LABEL_LIMIT = 50;            /* permanent name labels for the first N */
  var LIST_LIMIT = 200;            /* rows in the entity list */
  var HEAD_RADIUS = 5;
  var TRAIL_WEIGHT = 3;
  var RECONNECT_MIN_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var OFFLINE_AFTER_MS = 15000;    /* failing this long: "offline" */
  var RATE_WINDOW_MS = 5000;       /* events per second over this window */
  var BBOX_PAD = 0.25;             /* viewport subscription: margin around the view */
  var BBOX_DEBOUNCE_MS = 400;
  var INITIAL_VIEW = { lat: 52.52, lon: 13.405, zoom: 12 };

  /* ---- state ---------------------------------------------------------- */

  var state = {
    map: null,
    trailPoints: TRAIL_POINTS,
    trailMs: 0,
    since: DEFAULT_SINCE,
    streams: new Map(),          /* topic -> stream (see createStream) */
    entities: new Map(),         /* topic + "\n" + name -> entity */
    queue: [],                   /* updates waiting for the next flush */
    flushTimer: 0,
    flushFrame: 0,
    lastFlush: 0,
    drawMs: 0,                   /* what the last draw took, until painted */
    paused: false,
    dropped: 0,                  /* updates dropped while paused past MAX_QUEUE */
    received: 0,                 /* new events accepted */
    duplicates: 0,               /* events dropped as already seen */
    gaps: 0,                     /* "gap" events: history did not reach back */
    ignored: 0,                  /* events that were not positions */
    drawn: 0,                    /* points added to trails */
    rateSamples: [],             /* [time, received] once a second */
    rate: 0,
    status: 'connecting',
    follow: null,                /* entity the view follows */
    userMoved: false,
    flushes: 0,
    firstDataAt: 0,
    viewport: false,
    bbox: null,                  /* subscribed [w, s, e, n] */
    bboxTimer: 0,
    listTimer: 0
  };

  var ui = {};

  /* ---- small helpers -------------------------------------------------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function positiveInt(value, fallback, max) {
    var n = parseInt(value, 10);
    return (isFinite(n) && n > 0) ? Math.min(n, max) : fallback;
  }

  function positiveNumber(value, fallback) {
    var n = parseFloat(value);
    return (isFinite(n) && n > 0) ? n : fallback;
  }

  function isOn(value) {
    return value === '1' || value === 'true' || value === 'on' || value === 'yes';
  }

  /* Query argument values keep ':' and ',' literal (cursors, bbox). */
  function queryValue(v) {
    return encodeURIComponent(v).replace(/%3A/gi, ':').replace(/%2C/gi, ',');
  }

  /* FNV-1a 32-bit with a final avalanche (murmur3 fmix32): a stable,
   * well mixed hash of the entity name. */
  function hashString(s) {
    var h = 0x811c9dc5;
    for (var i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /* Stable colour per name: the high hash bits pick the hue anywhere on
   * the wheel, the low bits vary saturation and lightness a little so that
   * neighbouring hues still differ.  Lightness stays low enough to read on
   * light tiles and on the plain background; yellow to cyan, which look
   * brightest at the same lightness, get darker. */
  function colourFor(name) {
    var h = hashString(name);
    var hue = Math.floor(h / 4294967296 * 360);
    var sat = 65 + (h & 3) * 7;               /* 65..86 % */
    var light = 36 + ((h >>> 2) % 3) * 5;     /* 36..46 % */
    if (hue >= 45 && hue < 200) light -= 8;
    return 'hsl(' + hue + ', ' + sat + '%, ' + light + '%)';
  }

  function formatCoord(v) {
    return Number(v).toFixed(5);
  }

  function formatAge(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 2) return 'now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  /* ---- configuration from the page ------------------------------------ */

  function splitTopics(value) {
    var topics = [];
    String(value || '').split(',').forEach(function (t) {
      t = t.trim();
      if (TOPIC_RE.test(t) && topics.indexOf(t) < 0) topics.push(t);
    });
    return topics;
  }

  function readConfig(container) {
    var params = new URLSearchParams(window.location.search);
    var data = container.dataset;
    function arg(name, attr) {
      return params.has(name) ? params.get(name) : data[attr];
    }

    var topics = splitTopics(arg('topic', 'topic'));
    if (!topics.length) topics = [DEFAULT_TOPIC];

    var tileUrl = (data.tileUrl !== undefined) ? data.tileUrl : TILE_URL;
    if (tileUrl === 'none' || params.get('tiles') === 'none') tileUrl = '';

    var since = arg('since', 'since');
    if (since === undefined || since === null) since = DEFAULT_SINCE;
    if (since === 'none') since = '';
    if (since && !SINCE_RE.test(since)) {
      window.console.warn('geostream: ignoring since=' + JSON.stringify(since) +
                          ', using ' + DEFAULT_SINCE);
      since = DEFAULT_SINCE;
    }

    var trailMinutes = arg('trail_minutes', 'trailMinutes');
    return {
      topics: topics,
      trailPoints: positiveInt(arg('trail', 'trailCap'), TRAIL_POINTS, MAX_TRAIL_POINTS),
      trailMs: positiveNumber(trailMinutes, 0) * 60000,
      since: since,
      viewport: isOn(arg('viewport', 'viewport')),
      tileUrl: tileUrl,
      /* trusted HTML: only ever from the page's own markup */
      tileAttribution: (data.tileAttribution !== undefined)
        ? data.tileAttribution : TILE_ATTRIBUTION
    };
  }

  /* ---- map ------------------------------------------------------------ */

  function createMap(container) {
    var map = L.map(container, {
      preferCanvas: true,
      worldCopyJump: true,
      zoomControl: false          /* top left is the panel's tab */
    }).setView([INITIAL_VIEW.lat, INITIAL_VIEW.lon], INITIAL_VIEW.zoom);
    L.control.zoom({ position: 'topright' }).addTo(map);

    /* Once the user pans or zooms, stop fitting the view to the data. */
    ['mousedown', 'wheel', 'touchstart', 'keydown', 'dblclick'].forEach(function (type) {
      container.addEventListener(type, function () { state.userMoved = true; },
                                 { passive: true });
    });
    map.on('dragstart', function () { setFollow(null); });
    map.on('moveend', scheduleBboxCheck);
    return map;
  }

  function addTiles(map, config) {
    if (!config.tileUrl) {
      showTileNote('No map tiles configured: showing trails only.');
      return null;
    }
    var loads = 0;
    var layer = L.tileLayer(config.tileUrl, {
      maxZoom: TILE_MAX_ZOOM,
      attribution: config.tileAttribution
    });
    layer.on('tileerror', function () {
      if (loads === 0) showTileNote('Map tiles unavailable (offline?): showing trails only.');
    });
    layer.on('tileload', function () {
      loads++;
      ui.tileNote.hidden = true;
    });
    layer.addTo(map);
    return layer;
  }

  function showTileNote(text) {
    ui.tileNote.textContent = text;
    ui.tileNote.hidden = false;
  }

  /* Fit to all data for the first few draws and seconds, then leave the
   * view alone; stop as soon as the user pans, zooms or picks an entity. */
  function autoFitting() {
    if (state.userMoved || state.follow) return false;
    return state.flushes <= FIT_FLUSHES || Date.now() - state.firstDataAt < FIT_MS;
  }

  function dataBounds() {
    var bounds = L.latLngBounds([]);
    state.entities.forEach(function (entity) {
      bounds.extend(entity.head.getLatLng());
      if (entity.times.length) bounds.extend(entity.line.getBounds());
    });
    return bounds;
  }

  function fitBounds(bounds) {
    if (!bounds.isValid()) return;
    if (bounds.getNorthEast().equals(bounds.getSouthWest())) {
      state.map.setView(bounds.getCenter(), Math.max(state.map.getZoom(), FIT_MAX_ZOOM - 1),
                        { animate: false });
    } else {
      /* Some room around the data: entities keep moving after the fit. */
      state.map.fitBounds(bounds.pad(0.1), { padding: [30, 30], maxZoom: FIT_MAX_ZOOM,
                                             animate: false });
    }
  }

  function fitToData() {
    fitBounds(dataBounds());
  }

  /* ---- entities ------------------------------------------------------- */

  function entityKey(topic, name) {
    return topic + '\n' + name;
  }

  function detailsElement(entity) {
    var box = el('div', 'gs-details');
    var title = el('div', 'gs-details-name', entity.name);
    title.style.borderLeftColor = entity.colour;
    box.appendChild(title);

    var last = entity.head.getLatLng();
    var rows = [
      ['topic', entity.topic],
      ['message', entity.messageId],
      ['lat', formatCoord(last.lat)],
      ['lon', formatCoord(last.lng)],
      ['points', entity.times.length],
      ['updates', entity.updates],
      ['seen', new Date(entity.seen).toLocaleTimeString()]
    ];
    var table = el('table');
    rows.forEach(function (row) {
      var tr = el('tr');
      tr.appendChild(el('th', null, row[0]));
      tr.appendChild(el('td', null, row[1]));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }

  function createEntity(topic, name, latlng) {
    var colour = colourFor(name);
    var line = L.polyline([], {
      color: colour,
      weight: TRAIL_WEIGHT,
      opacity: 0.85,
      interactive: false
    }).addTo(state.map);
    var head = L.circleMarker(latlng, {
      radius: HEAD_RADIUS,
      color: '#ffffff',
      weight: 2,
      fillColor: colour,
      fillOpacity: 1
    }).addTo(state.map);

    var entity = {
      key: entityKey(topic, name),
      topic: topic,
      name: name,
      colour: colour,
      line: line,
      head: head,
      times: [],                 /* one time per trail point (for the cap) */
      messageId: '',
      updates: 0,
      seen: 0,
      row: null
    };

    head.bindTooltip(el('span', 'gs-label', name), {
      permanent: state.entities.size < LABEL_LIMIT,
      direction: 'right',
      offset: [HEAD_RADIUS + 2, 0],
      className: 'gs-tooltip'
    });
    head.bindPopup(function () { return detailsElement(entity); });
    state.entities.set(entity.key, entity);
    return entity;
  }

  function removeEntity(entity) {
    state.map.removeLayer(entity.line);
    state.map.removeLayer(entity.head);
    state.entities.delete(entity.key);
    if (state.follow === entity) setFollow(null);
  }

  /* How many of the oldest of n trail points the caps drop. */
  function trailExcess(entity, n, now) {
    var excess = Math.max(0, n - state.trailPoints);
    if (state.trailMs) {
      var cutoff = now - state.trailMs;
      var times = entity.times;
      while (excess < times.length && times[excess] < cutoff) excess++;
    }
    return excess;
  }

  /* Extends the entity's trail in place with this draw's updates. */
  function applyUpdates(entity, updates, now) {
    var line = entity.line;
    var latlngs = line.getLatLngs();
    var last = updates[updates.length - 1];
    var i;

    for (i = 0; i < updates.length; i++) entity.times.push(updates[i].t);
    var excess = trailExcess(entity, entity.times.length, now);

    if (updates.length === 1 && excess === 0) {
      line.addLatLng(last.latlng);
    } else {
      for (i = 0; i < updates.length; i++) latlngs.push(updates[i].latlng);
      if (excess) {
        latlngs.splice(0, excess);
        entity.times.splice(0, excess);
      }
      line.setLatLngs(latlngs);          /* same layer; recomputes bounds */
    }

    entity.head.setLatLng(last.latlng);
    entity.messageId = last.messageId;
    entity.updates += updates.length;
    entity.seen = last.t;
    state.drawn += updates.length;
    if (entity.head.isPopupOpen()) {
      entity.head.setPopupContent(detailsElement(entity));
    }
  }

  /* trail_minutes: drop points that aged out although no update came. */
  function trimAged(now) {
    if (!state.trailMs) return;
    state.entities.forEach(function (entity) {
      var excess = trailExcess(entity, entity.times.length, now);
      if (!excess) return;
      var latlngs = entity.line.getLatLngs();
      latlngs.splice(0, excess);
      entity.times.splice(0, excess);
      entity.line.setLatLngs(latlngs);
    });
  }

  /* ---- drawing -------------------------------------------------------- */

  /* Draws come at most every FLUSH_MS, and further apart when a draw
   * (applying the updates, the canvas redraw in the next frame, its paint)
   * takes more than 1/DRAW_SHARE of that: the map stays responsive with
   * long trails and many entities. */
  function scheduleFlush() {
    if (state.paused || state.flushTimer || state.flushFrame) return;
    var interval = Math.max(FLUSH_MS, DRAW_SHARE * state.drawMs);
    var wait = Math.max(0, state.lastFlush + interval - Date.now());
    state.flushTimer = window.setTimeout(function () {
      state.flushTimer = 0;
      /* a hidden page gets no animation frames: keep the trails current
       * (and the queue short) all the same; Leaflet paints on return */
      if (document.hidden) {
        flush();
        return;
      }
      state.flushFrame = window.requestAnimationFrame(function () {
        state.flushFrame = 0;
        flush();
      });
    }, wait);
  }

  function flush() {
    if (state.paused || !state.queue.length) return;
    var queue = state.queue;
    var now = Date.now();
    var started = window.performance.now();
    var byEntity = new Map();
    state.queue = [];
    state.lastFlush = now;
    state.flushes++;

    for (var i = 0; i < queue.length; i++) {
      var u = queue[i];
      var stream = state.streams.get(u.topic);
      if (!stream) continue;                 /* topic removed meanwhile */
      var key = entityKey(u.topic, u.name);
      var entity = state.entities.get(key);
      if (!entity) {
        entity = createEntity(u.topic, u.name, u.latlng);
      }
      var list = byEntity.get(entity);
      if (list) list.push(u); else byEntity.set(entity, [u]);
    }
    byEntity.forEach(function (updates, entity) {
      applyUpdates(entity, updates, now);
    });

    if (state.follow && byEntity.has(state.follow)) {
      state.map.panTo(state.follow.head.getLatLng(), { animate: true, duration: 0.25 });
    } else if (autoFitting()) {
      fitToData();
    }
    scheduleList();
    /* the canvas redraws in the next frame: the one after it is painted */
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () {
        state.drawMs = window.performance.now() - started;
      });
    });
  }

  function setPaused(paused) {
    state.paused = paused;
    ui.pause.textContent = paused ? 'Resume' : 'Pause';
    ui.pause.setAttribute('aria-pressed', paused ? 'true' : 'false');
    document.body.classList.toggle('gs-is-paused', paused);
    if (!paused) {
      flush();
      renderList();
    }
    renderPaused();
  }

  function renderPaused() {
    if (!state.paused) {
      ui.paused.hidden = true;
      return;
    }
    var text = 'Paused: ' + state.queue.length + ' updates waiting';
    if (state.dropped) text += ', ' + state.dropped + ' dropped';
    ui.paused.textContent = text + '.';
    ui.paused.hidden = false;
  }

  /* ---- stream --------------------------------------------------------- */

  /* Returns {name, messageId, lat, lon, ts} or null for anything unusable. */
  function parseMessage(text) {
    var data;
    try {
      data = JSON.parse(text);
    } catch (e) {
      return null;
    }
    if (!data || typeof data !== 'object') return null;
    if (typeof data.name !== 'string' || data.name === '') return null;
    var lat = data.lat, lon = data.lon;
    if (typeof lat !== 'number' || typeof lon !== 'number' ||
        !isFinite(lat) || !isFinite(lon) ||
        lat < -90 || lat > 90 || lon < -180 || lon > 180) {
      return null;
    }
    return {
      name: data.name,
      messageId: (data.message_id === undefined || data.message_id === null)
        ? '' : String(data.message_id),
      lat: lat,
      lon: lon,
      ts: (typeof data.ts === 'number' && isFinite(data.ts) && data.ts > 0) ? data.ts : 0
    };
  }

  /* An event id is a cursor: "partition:next offset" for each partition of
   * the topic, after this event.  Returns Map partition -> offset, or null. */
  function parseCursor(id) {
    if (!id) return null;
    var cursor = new Map();
    var parts = String(id).split(',');
    for (var i = 0; i < parts.length; i++) {
      var m = /^(\d+):(\d+)$/.exec(parts[i]);
      if (!m) return null;
      cursor.set(m[1], Number(m[2]));
    }
    return cursor;
  }

  /* True when the event with this cursor is one not seen before on the
   * stream.  Within one connection the partition whose offset moved since
   * the previous cursor is the event's own: the event is new if that offset
   * is past what was seen.  When that is not clear (first event of a fresh
   * start, several partitions moved), it is new if any partition moved past
   * what was seen.  Events without a usable cursor count as new. */
  function acceptCursor(stream, id) {
    var cur = parseCursor(id);
    if (!cur) return true;
    var seen = stream.seen, prev = stream.prev, fresh = false;
    var moved = [];
    if (prev) {
      cur.forEach(function (off, p) {
        if (prev.get(p) !== off) moved.push(p);
      });
    }
    if (moved.length === 1) {
      var own = moved[0];
      fresh = !seen.has(own) || cur.get(own) > seen.get(own);
    } else {
      cur.forEach(function (off, p) {
        if (!seen.has(p) || off > seen.get(p)) fresh = true;
      });
    }
    stream.prev = cur;
    if (!fresh) return false;
    cur.forEach(function (off, p) {
      if (!seen.has(p) || off > seen.get(p)) seen.set(p, off);
    });
    stream.lastId = String(id);
    return true;
  }

  /* Every event, from a stream or injected through the hook, comes here. */
  function ingest(topic, id, text) {
    var stream = state.streams.get(topic);
    if (!stream) return false;
    if (id && !acceptCursor(stream, id)) {
      state.duplicates++;
      return false;
    }
    var msg = parseMessage(text);
    if (!msg) {
      state.ignored++;
      return false;
    }
    var now = Date.now();
    state.received++;
    if (!state.firstDataAt) state.firstDataAt = now;
    if (state.queue.length >= MAX_QUEUE) {
      /* paused too long: drop the oldest tenth at once (not one by one) */
      state.queue.splice(0, MAX_QUEUE / 10);
      state.dropped += MAX_QUEUE / 10;
    }
    state.queue.push({
      topic: topic,
      name: msg.name,
      messageId: msg.messageId,
      latlng: L.latLng(msg.lat, msg.lon),
      t: msg.ts || now
    });
    scheduleFlush();
    return true;
  }

  /* A topic's reading: its cursor, for de-duplication and resuming. */
  function createStream(topic) {
    return {
      topic: topic,
      status: 'connecting',
      lastId: '',                /* the last event id accepted (this topic's) */
      seen: new Map(),           /* partition -> highest next offset seen */
      prev: null,                /* cursor of the previous event */
      failingSince: 0
    };
  }

  /* All topics come over one connection (GET /consumer/a,b): a browser
   * opens at most six at a time to one server over HTTP/1.1, so one
   * EventSource per topic would leave a seventh topic waiting. */
  var conn = {
    source: null,
    url: '',
    connects: 0,
    retryMs: RECONNECT_MIN_MS,
    timer: 0,
    failingSince: 0
  };

  /* The first connection asks for recent history (since=); later ones,
   * which this page makes itself after an error, give the last event id
   * (EventSource cannot set Last-Event-ID on a request of its own).  With
   * several topics the id names each topic's cursor ("a=0:5;b=1:2"), and a
   * topic without one (added since) starts by since=. */
  function connUrl() {
    var topics = Array.from(state.streams.keys());
    var args = [], ids = [], unplaced = 0;
    state.streams.forEach(function (stream) {
      if (!stream.lastId) unplaced++;
      else ids.push(topics.length > 1 ? stream.topic + '=' + stream.lastId
                                      : stream.lastId);
    });
    if (ids.length) args.push('last_event_id=' + queryValue(ids.join(';')));
    if (unplaced && state.since) args.push('since=' + queryValue(state.since));
    if (state.viewport && state.bbox) args.push('bbox=' + state.bbox.join(','));
    return CONSUMER_PATH + topics.map(encodeURIComponent).join(',') +
      (args.length ? '?' + args.join('&') : '');
  }

  /* An event's topic: the server writes it first in the data. */
  function eventTopic(text) {
    var m = /^\{"topic":"([A-Za-z0-9._-]+)"/.exec(text);
    return m ? m[1] : '';
  }

  /* This topic's cursor in an event id of several topics ("a=0:5;b=1:2") */
  function topicCursor(id, topic) {
    if (!id || id.indexOf('=') < 0) return id;
    var parts = String(id).split(';');
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=');
      if (eq > 0 && parts[i].slice(0, eq) === topic) return parts[i].slice(eq + 1);
    }
    return '';
  }

  function setStatus(status) {
    state.streams.forEach(function (stream) { stream.status = status; });
    renderStatus();
  }

  function connect() {
    window.clearTimeout(conn.timer);
    conn.timer = 0;
    if (conn.source) conn.source.close();
    conn.source = null;
    if (!state.streams.size) return;

    state.streams.forEach(function (stream) {
      stream.prev = stream.lastId ? parseCursor(stream.lastId) : null;
      if (stream.status === 'live') stream.status = 'connecting';
    });
    conn.url = connUrl();
    var several = state.streams.size > 1;
    var only = several ? '' : state.streams.keys().next().value;
    var source = new EventSource(conn.url);
    conn.source = source;
    conn.connects++;

    source.onopen = function () {
      if (conn.source !== source) return;
      conn.retryMs = RECONNECT_MIN_MS;
      conn.failingSince = 0;
      state.streams.forEach(function (stream) { stream.failingSince = 0; });
      setStatus('live');
    };
    source.onmessage = function (event) {
      if (conn.source !== source) return;
      var topic = several ? eventTopic(event.data) : only;
      ingest(topic, topicCursor(event.lastEventId, topic), event.data);
    };
    /* the server could not replay everything since the cursor or time */
    source.addEventListener('gap', function () {
      if (conn.source !== source) return;
      state.gaps++;
      ui.gap.textContent = 'Some earlier positions of ' +
        Array.from(state.streams.keys()).join(', ') +
        ' were no longer available; trails may have holes.';
      ui.gap.hidden = false;
    });
    source.onerror = function () {
      if (conn.source !== source) return;
      /* Reconnect here rather than let the browser do it, so that the
       * new request carries last_event_id. */
      source.close();
      conn.source = null;
      if (!conn.failingSince) conn.failingSince = Date.now();
      state.streams.forEach(function (stream) {
        stream.failingSince = conn.failingSince;
      });
      scheduleReconnect();
      setStatus('reconnecting');
    };
  }

  function scheduleReconnect() {
    if (conn.timer) return;
    var delay = conn.retryMs * (0.8 + Math.random() * 0.4);
    conn.timer = window.setTimeout(function () {
      conn.timer = 0;
      connect();
    }, delay);
    conn.retryMs = Math.min(conn.retryMs * 2, RECONNECT_MAX_MS);
  }

  /* ---- topics --------------------------------------------------------- */

  /* Each change of topics reconnects once, with every topic's cursor. */
  function addTopics(topics) {
    var added = 0;
    topics.forEach(function (topic) {
      if (state.streams.has(topic)) return;
      state.streams.set(topic, createStream(topic));
      added++;
    });
    if (!added) return;
    connect();
    topicsChanged();
  }

  function addTopic(topic) {
    addTopics([topic]);
  }

  function removeTopic(topic) {
    if (!state.streams.has(topic)) return;
    state.streams.delete(topic);
    state.entities.forEach(function (entity) {
      if (entity.topic === topic) removeEntity(entity);
    });
    state.queue = state.queue.filter(function (u) { return u.topic !== topic; });
    connect();
    topicsChanged();
  }

  function topicsChanged() {
    var topics = Array.from(state.streams.keys());
    document.title = 'geostream: ' + (topics.length ? topics.join(', ') : 'no topic');
    document.body.classList.toggle('gs-multi-topic', topics.length > 1);

    /* keep the page's address in step, so a reload shows the same */
    var params = new URLSearchParams(window.location.search);
    params.set('topic', topics.join(','));
    window.history.replaceState(null, '',
      window.location.pathname + '?' + params.toString().replace(/%2C/gi, ','));

    renderTopics();
    renderStatus();
    renderList();
  }

  function renderTopics() {
    var items = [];
    state.streams.forEach(function (stream) {
      var li = el('li', 'gs-topic');
      li.setAttribute('data-status', stream.status);
      li.appendChild(el('span', 'gs-topic-name', stream.topic));
      var remove = el('button', 'gs-topic-remove', '\u00d7');
      remove.type = 'button';
      remove.title = 'Stop showing ' + stream.topic;
      remove.setAttribute('aria-label', 'remove topic ' + stream.topic);
      remove.addEventListener('click', function () { removeTopic(stream.topic); });
      li.appendChild(remove);
      items.push(li);
    });
    ui.topics.replaceChildren.apply(ui.topics, items);
  }

  function onTopicSubmit(event) {
    event.preventDefault();
    var value = ui.topicInput.value.trim();
    ui.topicError.hidden = true;
    if (!value) return;
    var topics = splitTopics(value);
    if (!topics.length || topics.length !== value.split(',').length) {
      ui.topicError.textContent =
        'A topic is 1 to 249 characters from a-z, A-Z, 0-9, ".", "_" and "-".';
      ui.topicError.hidden = false;
      return;
    }
    addTopics(topics);
    ui.topicInput.value = '';
  }

  /* ---- viewport subscription ------------------------------------------ */

  function clampLat(v) {
    return Math.max(-90, Math.min(90, v));
  }

  function round5(v) {
    return Math.round(v * 1e5) / 1e5;
  }

  /* The visible area with a margin, as [west, south, east, north] in
   * -180..180 / -90..90 (west > east when it crosses the antimeridian). */
  function viewBbox() {
    var b = state.map.getBounds().pad(BBOX_PAD);
    var west = b.getWest(), east = b.getEast();
    if (east - west >= 360) {
      west = -180;
      east = 180;
    } else {
      west = L.Util.wrapNum(west, [-180, 180], true);
      east = L.Util.wrapNum(east, [-180, 180], true);
    }
    return [round5(west), round5(clampLat(b.getSouth())),
            round5(east), round5(clampLat(b.getNorth()))];
  }

  function bboxCovers(outer, inner) {
    if (!outer) return false;
    if (outer[0] > outer[2] || inner[0] > inner[2]) {
      return outer[0] === inner[0] && outer[2] === inner[2] &&
             outer[1] <= inner[1] && outer[3] >= inner[3];
    }
    return outer[0] <= inner[0] && outer[2] >= inner[2] &&
           outer[1] <= inner[1] && outer[3] >= inner[3];
  }

  function bboxArea(b) {
    var width = b[2] >= b[0] ? b[2] - b[0] : 360 - b[0] + b[2];
    return width * (b[3] - b[1]);
  }

  /* Resubscribe when the view leaves the subscribed area, or when that
   * area is much larger than needed (after zooming in). */
  function scheduleBboxCheck() {
    if (!state.viewport) return;
    window.clearTimeout(state.bboxTimer);
    state.bboxTimer = window.setTimeout(function () {
      state.bboxTimer = 0;
      var view = state.map.getBounds();
      var visible = [view.getWest(), clampLat(view.getSouth()),
                     view.getEast(), clampLat(view.getNorth())];
      if (visible[2] - visible[0] < 360) {
        visible[0] = L.Util.wrapNum(visible[0], [-180, 180], true);
        visible[2] = L.Util.wrapNum(visible[2], [-180, 180], true);
      } else {
        visible[0] = -180;
        visible[2] = 180;
      }
      var next = viewBbox();
      if (bboxCovers(state.bbox, visible) &&
          bboxArea(state.bbox) <= 4 * bboxArea(next)) return;
      state.bbox = next;
      connect();
    }, BBOX_DEBOUNCE_MS);
  }

  function setViewport(on) {
    state.viewport = on;
    ui.viewport.checked = on;
    state.bbox = on ? viewBbox() : null;
    connect();
  }

  /* ---- entity list ---------------------------------------------------- */

  function setFollow(entity) {
    if (state.follow === entity) return;
    var before = state.follow;
    state.follow = entity;
    if (before && before.row) updateRow(before, Date.now());
    if (entity) {
      state.userMoved = true;
      state.map.panTo(entity.head.getLatLng(), { animate: true, duration: 0.25 });
      if (entity.row) updateRow(entity, Date.now());
    }
  }

  function zoomTo(entity) {
    state.userMoved = true;
    setFollow(null);
    var bounds = L.latLngBounds([entity.head.getLatLng()]);
    if (entity.times.length) bounds.extend(entity.line.getBounds());
    fitBounds(bounds);
    entity.head.openTooltip();
  }

  function buildRow(entity) {
    var li = el('li', 'gs-row');
    var main = el('button', 'gs-row-main');
    main.type = 'button';
    var swatch = el('span', 'gs-swatch');
    swatch.style.backgroundColor = entity.colour;
    var name = el('span', 'gs-row-name', entity.name);
    name.title = entity.name;
    var topic = el('span', 'gs-row-topic', entity.topic);
    var meta = el('span', 'gs-row-meta');
    main.appendChild(swatch);
    main.appendChild(name);
    main.appendChild(topic);
    main.appendChild(meta);
    main.title = 'Zoom to this trail';
    main.addEventListener('click', function () { zoomTo(entity); });

    var follow = el('button', 'gs-follow', 'follow');
    follow.type = 'button';
    follow.addEventListener('click', function () {
      setFollow(state.follow === entity ? null : entity);
    });
    li.appendChild(main);
    li.appendChild(follow);
    entity.row = { li: li, meta: meta, follow: follow, text: '' };
    return entity.row;
  }

  function updateRow(entity, now) {
    var row = entity.row || buildRow(entity);
    var n = entity.times.length;
    var text = n + (n === 1 ? ' point' : ' points') + ' \u00b7 ' +
      (entity.seen ? formatAge(now - entity.seen) : 'never');
    if (row.text !== text) {
      row.meta.textContent = text;
      row.text = text;
      row.meta.title = entity.seen ? 'last seen ' + new Date(entity.seen).toLocaleString() : '';
    }
    var following = state.follow === entity;
    if (row.li.classList.contains('gs-following') !== following) {
      row.li.classList.toggle('gs-following', following);
      row.follow.setAttribute('aria-pressed', following ? 'true' : 'false');
      row.follow.textContent = following ? 'following' : 'follow';
    }
    return row;
  }

  /* names in natural order: veh-2 before veh-10 */
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

  function compareEntities(a, b) {
    return collator.compare(a.name, b.name) || collator.compare(a.topic, b.topic) ||
      (a.key < b.key ? -1 : (a.key > b.key ? 1 : 0));
  }

  function scheduleList() {
    if (state.listTimer) return;
    state.listTimer = window.setTimeout(function () {
      state.listTimer = 0;
      renderList();
    }, 250);
  }

  /* Rows are kept per entity and only reordered when the order changed,
   * so a click never lands on a row that is being replaced. */
  function renderList() {
    var now = Date.now();
    var query = ui.search.value.trim().toLowerCase();
    var matches = [];
    state.entities.forEach(function (entity) {
      if (!query || entity.name.toLowerCase().indexOf(query) >= 0 ||
          (state.streams.size > 1 && entity.topic.toLowerCase().indexOf(query) >= 0)) {
        matches.push(entity);
      }
    });
    matches.sort(compareEntities);
    var shown = matches.slice(0, LIST_LIMIT);
    var nodes = shown.map(function (entity) { return updateRow(entity, now).li; });

    var children = ui.list.children;
    var same = children.length === nodes.length;
    for (var i = 0; same && i < nodes.length; i++) same = children[i] === nodes[i];
    if (!same) ui.list.replaceChildren.apply(ui.list, nodes);

    ui.entityCount.textContent = String(state.entities.size);
    if (matches.length > shown.length) {
      ui.listMore.textContent = (matches.length - shown.length) +
        ' more: search to narrow the list.';
      ui.listMore.hidden = false;
    } else if (!matches.length && state.entities.size) {
      ui.listMore.textContent = 'No entity matches.';
      ui.listMore.hidden = false;
    } else if (!state.entities.size) {
      ui.listMore.textContent = 'Waiting for positions\u2026';
      ui.listMore.hidden = false;
    } else {
      ui.listMore.hidden = true;
    }
  }

  /* ---- status --------------------------------------------------------- */

  /* live: every stream is open; offline: the browser says so, or no
   * stream is open and each has been failing for OFFLINE_AFTER_MS;
   * reconnecting: some stream lost its connection; connecting: at start. */
  function overallStatus() {
    var now = Date.now();
    var all = 0, live = 0, failing = 0, longFailing = 0;
    state.streams.forEach(function (s) {
      all++;
      if (s.status === 'live') live++;
      if (s.status === 'reconnecting') failing++;
      if (s.failingSince && now - s.failingSince > OFFLINE_AFTER_MS) longFailing++;
    });
    if (!all) return 'idle';
    if (navigator.onLine === false) return 'offline';
    if (live === all) return 'live';
    if (!live && longFailing === all) return 'offline';
    return failing ? 'reconnecting' : 'connecting';
  }

  function renderStatus() {
    var status = overallStatus();
    if (status !== state.status) {
      state.status = status;
      ui.status.textContent = status;
      ui.status.setAttribute('data-status', status);
    }
    var items = ui.topics.children, i = 0;
    state.streams.forEach(function (stream) {
      if (items[i]) items[i].setAttribute('data-status', stream.status);
      i++;
    });
  }

  function updateRate(now) {
    var samples = state.rateSamples;
    samples.push([now, state.received]);
    while (samples.length > 2 && now - samples[0][0] > RATE_WINDOW_MS) samples.shift();
    var first = samples[0];
    var dt = (now - first[0]) / 1000;
    state.rate = dt > 0 ? (state.received - first[1]) / dt : 0;
    var r = state.rate;
    ui.rate.textContent = (r >= 100 ? Math.round(r) : r.toFixed(1)) + ' ev/s';
  }

  function tick() {
    var now = Date.now();
    updateRate(now);
    if (!state.paused) {
      trimAged(now);
      renderList();
    }
    renderStatus();
    renderPaused();
  }

  /* ---- test and benchmark hook ---------------------------------------- */

  /* window.geostream: read-only snapshots, plus ingest() which feeds an
   * event through the same path as a stream's message handler.
   *   entities  -> [{topic, name, colour, points, trail: [[lat, lon]...],
   *                  messageId, updates, seen}]  (fresh copies)
   *   streams   -> [{topic, status, url, lastId, connects}]
   *   status, rate, received, duplicates, gaps, ignored, drawn, queued, paused,
   *   trailPoints, trailMinutes, map (the Leaflet map)
   *   ingest(topic, id, dataText) -> true when accepted
   *   flush() draws what is queued now (unless paused) */
  function exposeHook() {
    var hook = {
      ingest: function (topic, id, text) { return ingest(String(topic), id, String(text)); },
      flush: flush
    };
    var getters = {
      entities: function () {
        var list = [];
        state.entities.forEach(function (e) {
          list.push(Object.freeze({
            topic: e.topic,
            name: e.name,
            colour: e.colour,
            points: e.times.length,
            trail: e.line.getLatLngs().map(function (ll) { return [ll.lat, ll.lng]; }),
            onMap: state.map.hasLayer(e.line) && state.map.hasLayer(e.head),
            messageId: e.messageId,
            updates: e.updates,
            seen: e.seen
          }));
        });
        return list;
      },
      streams: function () {
        return Array.from(state.streams.values()).map(function (s) {
          return Object.freeze({ topic: s.topic, status: s.status, url: conn.url,
                                 lastId: s.lastId, connects: conn.connects });
        });
      },
      status: function () { return state.status; },
      rate: function () { return state.rate; },
      received: function () { return state.received; },
      duplicates: function () { return state.duplicates; },
      gaps: function () { return state.gaps; },
      ignored: function () { return state.ignored; },
      drawn: function () { return state.drawn; },
      queued: function () { return state.queue.length; },
      paused: function () { return state.paused; },
      following: function () { return state.follow ? state.follow.name : null; },
      trailPoints: function () { return state.trailPoints; },
      trailMinutes: function () { return state.trailMs / 60000; },
      map: function () { return state.map; }
    };
    Object.keys(getters).forEach(function (key) {
      Object.defineProperty(hook, key, { get: getters[key], enumerable: true });
    });
    window.geostream = Object.freeze(hook);
  }

  /* ---- start ---------------------------------------------------------- */

  function bindUi() {
    ['status', 'rate', 'collapse', 'topics', 'topic-form', 'topic-input', 'topic-error',
     'fit', 'pause', 'viewport', 'paused', 'gap', 'entity-count', 'search', 'list', 'list-more',
     'tile-note'].forEach(function (id) {
      var key = id.replace(/-([a-z])/g, function (m, c) { return c.toUpperCase(); });
      ui[key] = document.getElementById('gs-' + id);
    });
    ui.panel = document.getElementById('panel');
  }

  function start() {
    var container = document.getElementById('map');
    bindUi();
    if (typeof window.L === 'undefined') {
      ui.status.textContent = 'error';
      ui.status.setAttribute('data-status', 'error');
      showTileNote('Leaflet did not load from /leaflet/ (run npm ci in html/).');
      return;
    }
    var config = readConfig(container);
    state.trailPoints = config.trailPoints;
    state.trailMs = config.trailMs;
    state.since = config.since;

    state.map = createMap(container);
    addTiles(state.map, config);

    ui.fit.addEventListener('click', function () {
      state.userMoved = true;
      setFollow(null);
      fitToData();
    });
    ui.pause.addEventListener('click', function () { setPaused(!state.paused); });
    ui.viewport.addEventListener('change', function () { setViewport(ui.viewport.checked); });
    ui.search.addEventListener('input', renderList);
    ui.topicForm.addEventListener('submit', onTopicSubmit);
    ui.collapse.addEventListener('click', function () {
      var collapsed = document.body.classList.toggle('gs-collapsed');
      ui.collapse.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
      ui.collapse.title = collapsed ? 'Show the panel' : 'Hide the panel';
      ui.collapse.textContent = collapsed ? '\u203a' : '\u2039';
      state.map.invalidateSize();
    });
    window.addEventListener('online', function () {
      if (!conn.source) connect();
      renderStatus();
    });
    window.addEventListener('offline', renderStatus);

    exposeHook();
    state.viewport = config.viewport;
    ui.viewport.checked = config.viewport;
    if (config.viewport) state.bbox = viewBbox();
    addTopics(config.topics);
    window.setInterval(tick, 1000);
    tick();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
