/* fsmio inspector page: a view of a running fsmio program (or of a trace file).
 *
 * Theory of operation
 * -------------------
 * One WebSocket, /feed, carries JSON messages (the contract: INSPECTOR-PROTOCOL, summarised
 * in docs/inspector.md).  The server sends `hello`, a `tree` snapshot, then coalesced deltas:
 * `added` / `removed` gobjs, `states` (every state change of every gobj, never filtered),
 * `events` (the dispatches, filtered in the server by this page's `filter`), `counters`
 * once a second and `detail` for the selected gobj once a second.  The page keeps a model
 * (`nodes`: id -> gobj; `live`: the last events received) and draws from it; it never
 * builds HTML from data: every text goes through textContent, so a gobj name or a `ret`
 * that holds markup is shown as text.
 *
 * Time travel: "Pause" asks the server for its retained ring buffer (`history`).  While
 * paused the slider picks an index in those items: the event table shows the items up to
 * it and the tree and the diagram show each gobj's state at that point, worked out from
 * the items (the `next_state` of its last transition at or before the index, else the
 * `state` of its first one after it, else its live state).  Live messages keep updating
 * the model underneath; "Live" draws it again.  A replay (`fsmio inspect trace.jsonl`,
 * hello.mode == "replay") is the same thing without a live side: it opens paused on the
 * file's events.  While paused, Play moves the slider at the pace of the recording.
 *
 * Control: a token in the URL fragment (#token=..., never sent in a request line) is sent
 * as `auth`; once the server says ok, the selected gobj shows a form to post one of its
 * FSM's input events with a JSON kw, and a trace_mach toggle.  Without it they stay hidden
 * and the server refuses them anyway.
 *
 * Bounds: at most MAX_ROWS event rows in the DOM and MAX_LIVE events kept in memory; live
 * rows are drawn every RENDER_MS at most, whatever the feed's rate; the feed reconnects
 * with a doubling delay (0.5 s .. 10 s) when it closes in live mode.
 *
 * DOM contract (what the tests and a person's scripts may rely on):
 *   #status                text "connecting" | "open" | "closed" | "replay" (class the same)
 *   #mode                  text "read-only" | "control" | "replay"; [data-authed]
 *   #app                   the GAplic's name and pid
 *   #tree li.gobj          [data-id][data-name][data-gclass][data-state]; nested ul.children;
 *                          li.selected is the selected one; .row holds .name .gclass .state
 *   #filter-tree           text filter of the tree (name, gclass or state, substring)
 *   #detail                [data-id] of the selected gobj; #detail-name, #detail-state,
 *                          #config / #stats tbody tr[data-key] (#config-private: the
 *                          attributes named with a leading "_"), #subscriptions / #subscribed
 *                          li a[data-id]
 *   #diagram svg           the gclass card; g.state[data-state].current is the state shown,
 *                          .flash marks the last transition's row and target for a moment;
 *                          #diagram[data-gclass-key]
 *   #events tr.event       [data-seq][data-event][data-dst][data-src][data-state][data-next]
 *   #filter-gclass, #filter-gobj, #filter-state, #filter-event   comma-separated names,
 *                          applied on Enter / the "filter" button (form #event-filters)
 *   #replay-info           (replay) the trace file's event count and time span
 *   #counters [data-counter=NAME]  events_per_s, gobjs, connections, bytes_in, bytes_out,
 *                          queue, loop_lag_ms, viewers, dropped, viewer_dropped
 *   #pause                 "Pause" / "Live"; #scrub range input; #play, #speed (while paused)
 *   #send-form             #send-event select, #send-kw textarea; #send-result[data-ok]
 *   #trace-toggle          checkbox: trace_mach of the selected gobj
 *   document.body          [data-mode] = "live" | "replay"; [data-paused] when paused
 */
"use strict";

(function () {
  const MAX_ROWS = 500;          // event rows in the DOM
  const MAX_LIVE = 5000;         // live events kept in memory (for redraws after a pause)
  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const FLASH_MS = 1200;
  const RENDER_MS = 250;         // live rows are drawn at most this often (a busy feed)

  const $ = (sel) => document.querySelector(sel);

  // ---------------------------------------------------------------- the model
  const nodes = new Map();       // id -> {node: NODE, li: HTMLLIElement, children: Set<id>}
  let live = [];                 // EV, oldest first (bounded by MAX_LIVE)
  let hello = null;
  let ws = null;
  let authed = false;
  let selectedId = null;
  let selectedWho = "";          // its name and gclass: is the same id the same gobj after a reconnection?
  let detailEventsKey = "";      // the select's options were built for this gobj+events
  let paused = false;
  let history = [];              // the items of the last `history`
  let historyComplete = true;
  let cursor = -1;               // index in `history` shown while paused
  let scrubStates = new Map();   // id -> state at the cursor (see computeScrubStates)
  let playTimer = null;
  let reconnectDelay = RECONNECT_MIN_MS;
  let viewerDropped = 0;
  let pendingRows = [];          // live events received but not drawn yet (<= MAX_ROWS)
  let renderTimer = null;
  let filter = {gclass: [], gobj: [], state: [], event: []};
  const token = tokenFromHash();

  // ---------------------------------------------------------------- small helpers
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function tokenFromHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    return params.get("token") || "";
  }

  function formatTime(t) {
    if (typeof t !== "number") return "";
    const d = new Date(t * 1000);
    const pad = (n, w) => String(n).padStart(w, "0");
    return pad(d.getHours(), 2) + ":" + pad(d.getMinutes(), 2) + ":" + pad(d.getSeconds(), 2) +
      "." + pad(d.getMilliseconds(), 3);
  }

  function formatBytes(n) {
    if (typeof n !== "number") return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function splitNames(text) {
    return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }

  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  function setStatus(text) {
    const status = $("#status");
    status.textContent = text;
    status.className = text;
  }

  // ---------------------------------------------------------------- the feed
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + location.host + "/feed");
    setStatus("connecting");
    ws.addEventListener("open", () => {
      reconnectDelay = RECONNECT_MIN_MS;
      setStatus("open");
    });
    ws.addEventListener("message", (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch (err) {
        console.warn("inspector: a feed message that is not JSON", err);
        return;
      }
      if (data && typeof data === "object") handle(data);
    });
    ws.addEventListener("close", () => {
      ws = null;
      if (hello && hello.mode === "replay") {
        setStatus("replay");   // everything was delivered; the file needs no live feed
        return;
      }
      setStatus("closed");
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    });
  }

  const handlers = {
    hello: onHello,
    tree: onTree,
    added: (m) => { for (const n of m.nodes || []) addNode(n); applyTreeFilter(); },
    removed: (m) => { for (const id of m.ids || []) removeNode(id); },
    states: onStates,
    events: onEvents,
    counters: onCounters,
    detail: onDetail,
    history: onHistory,
    auth: onAuth,
    result: onResult,
    error: (m) => console.warn("inspector: the server said:", m.message),
  };

  function handle(message) {
    if (typeof message.type === "string" && Object.hasOwn(handlers, message.type)) {
      handlers[message.type](message);
    }
  }

  function onHello(m) {
    hello = m;
    document.body.dataset.mode = m.mode;
    // In a replay the pid would be the replaying process's, not the recorded program's.
    const pid = m.mode === "live" && m.pid ? " (pid " + m.pid + ")" : "";
    $("#app").textContent = (m.app || "") + pid;
    if (m.version !== 1) console.warn("inspector: feed version", m.version, "(this page knows 1)");
    authed = false;
    if (m.mode === "replay") {
      setStatus("replay");
      $("#pause").hidden = true;
      $("#play").hidden = false;
      $("#speed").hidden = false;
    } else {
      // (Re)connected: the server knows nothing yet of this viewer's filter and token
      // (the selection is sent again once the tree says whether that gobj still exists).
      if (filterIsSet()) send(Object.assign({type: "filter"}, filter));
      if (token) send({type: "auth", token: token});
      if (paused) send({type: "history"});
    }
    showMode();
  }

  function showMode() {
    const mode = $("#mode");
    let text = "read-only";
    let title = "read-only: this page can watch, not act";
    if (hello && hello.mode === "replay") {
      text = "replay";
      title = "replaying a trace file: nothing is running";
    } else if (authed) {
      text = "control";
      title = "control: this page can send input events and toggle trace_mach";
    } else if (hello && !hello.control) {
      title = "read-only: the program was started without a control token";
    } else if (token) {
      title = "read-only: the token in the URL was not accepted";
    } else {
      title = "read-only: open the page with #token=... to send events";
    }
    mode.textContent = text;
    mode.className = text === "control" ? "control" : "readonly";
    mode.title = title;
    mode.dataset.authed = authed ? "true" : "false";
    $("#control").hidden = !authed;
  }

  function onAuth(m) {
    authed = Boolean(m.ok);
    showMode();
    if (!authed) showResult(false, "the token was refused");
  }

  function onResult(m) {
    const what = m.request === "trace" ? "trace_mach" : m.request;
    showResult(m.ok, what + ": " + (m.message || (m.ok ? "done" : "refused")) +
      (m.ret !== null && m.ret !== undefined ? " → " + m.ret : ""));
  }

  function showResult(ok, text) {
    const out = $("#send-result");
    out.textContent = text;
    out.dataset.ok = ok ? "true" : "false";
  }

  // ---------------------------------------------------------------- the tree
  function onTree(m) {
    nodes.clear();
    $("#tree").replaceChildren();
    for (const n of m.nodes || []) addNode(n);
    applyTreeFilter();
    if (selectedId !== null) {
      const entry = nodes.get(selectedId);
      const same = entry && entry.node.name + " " + entry.node.gclass === selectedWho;
      if (same) send({type: "select", id: selectedId});
      else select(null);
    }
    markSelected();
  }

  function addNode(n) {
    if (typeof n.id !== "number" || nodes.has(n.id)) return;
    const li = el("li", "gobj");
    li.dataset.id = String(n.id);
    li.dataset.name = n.name || "";
    li.dataset.gclass = n.gclass || "";
    li.setAttribute("role", "treeitem");
    const parent = n.parent !== null && n.parent !== undefined ? nodes.get(n.parent) : null;
    // A replay names gobjs by their dotted path: under its parent, the last part is enough.
    let label = n.name || "(anonymous)";
    if (parent && parent.node.name && label.startsWith(parent.node.name + ".")) {
      label = label.slice(parent.node.name.length + 1);
    }
    const row = el("div", "row");
    row.title = n.name;
    row.append(el("span", "name", label), el("span", "gclass", n.gclass));
    const badge = el("span", "state badge");
    row.append(badge);
    row.addEventListener("click", () => select(n.id));
    li.append(row, el("ul", "children"));
    const entry = {node: n, li: li, children: new Set()};
    nodes.set(n.id, entry);
    if (parent) {
      parent.children.add(n.id);
      parent.li.querySelector(":scope > ul.children").append(li);
    } else {
      $("#tree").append(li);
    }
    showNodeState(n.id);
  }

  function removeNode(id) {
    const entry = nodes.get(id);
    if (!entry) return;
    for (const child of Array.from(entry.children)) removeNode(child);
    const parent = nodes.get(entry.node.parent);
    if (parent) parent.children.delete(id);
    entry.li.remove();
    nodes.delete(id);
    if (selectedId === id) select(null);
  }

  function onStates(m) {
    for (const change of m.changes || []) {
      const entry = nodes.get(change[0]);
      if (!entry) continue;
      entry.node.state = change[1];
      showNodeState(change[0]);
    }
    if ($("#filter-tree").value.trim()) applyTreeFilter();   // it may filter by state
  }

  // The state to show for a gobj: its live state, or while paused its state at the cursor.
  function shownState(id) {
    const entry = nodes.get(id);
    const liveState = entry ? entry.node.state : null;
    if (paused && scrubStates.has(id)) return scrubStates.get(id);
    return liveState;
  }

  // Each gobj's state at the cursor, from the history: the state after its last transition
  // at or before the cursor, else the state before its first one after it.
  function computeScrubStates() {
    scrubStates = new Map();
    if (cursor < 0) return;
    for (let i = 0; i <= cursor && i < history.length; i += 1) {
      const ev = history[i];
      scrubStates.set(ev.dst, ev.next_state || ev.state);
    }
    for (let i = cursor + 1; i < history.length; i += 1) {
      const ev = history[i];
      if (!scrubStates.has(ev.dst) && ev.state) scrubStates.set(ev.dst, ev.state);
    }
  }

  function showNodeState(id) {
    const entry = nodes.get(id);
    if (!entry) return;
    const state = shownState(id);
    entry.li.dataset.state = state || "";
    const badge = entry.li.querySelector(":scope > .row > .state");
    badge.textContent = state || "";
    if (id === selectedId) showSelectedState();
  }

  function showAllStates() {
    for (const id of nodes.keys()) showNodeState(id);
  }

  function applyTreeFilter() {
    const needle = $("#filter-tree").value.trim().toLowerCase();
    // A gobj stays visible when it or one of its descendants matches, so the path to
    // every match is kept.
    const visit = (li) => {
      let any = false;
      for (const child of li.querySelectorAll(":scope > ul.children > li.gobj")) {
        if (visit(child)) any = true;
      }
      const text = (li.dataset.name + " " + li.dataset.gclass + " " + li.dataset.state).toLowerCase();
      const keep = !needle || any || text.includes(needle);
      li.hidden = !keep;
      return keep;
    };
    for (const li of $("#tree").querySelectorAll(":scope > li.gobj")) visit(li);
  }

  // ---------------------------------------------------------------- selection and detail
  function select(id) {
    if (id !== null && !nodes.has(id)) return;
    selectedId = id;
    detailEventsKey = "";
    send({type: "select", id: id});
    markSelected();
    const box = $("#detail");
    $("#no-selection").hidden = id !== null;
    box.hidden = id === null;
    if (id === null) {
      delete box.dataset.id;
      return;
    }
    box.dataset.id = String(id);
    const entry = nodes.get(id);
    selectedWho = entry.node.name + " " + entry.node.gclass;
    $("#detail-name").textContent = entry.node.name;
    $("#detail-gclass").textContent = entry.node.gclass;
    for (const sel of ["#config tbody", "#config-private tbody", "#stats tbody", "#subscriptions", "#subscribed"]) {
      $(sel).replaceChildren();
    }
    $("#send-result").textContent = "";
    showDiagram(entry.node.gclass_key);
  }

  function markSelected() {
    for (const li of $("#tree").querySelectorAll("li.gobj.selected")) li.classList.remove("selected");
    const entry = selectedId !== null ? nodes.get(selectedId) : null;
    if (entry) entry.li.classList.add("selected");
  }

  function onDetail(m) {
    if (m.id !== selectedId) return;
    // Parameters first; the gobj's private attributes (a leading "_") folded away.
    const config = m.config || {};
    const isPrivate = (k) => k.startsWith("_");
    const pick = (keep) => Object.fromEntries(Object.entries(config).filter(([k]) => keep(k)));
    const showValue = (k, v) => typeof v === "string" ? v : JSON.stringify(v);
    fillTable("#config tbody", pick((k) => !isPrivate(k)), showValue);
    fillTable("#config-private tbody", pick(isPrivate), showValue);
    $("#config-private-count").textContent = String(Object.keys(config).filter(isPrivate).length);
    fillTable("#stats tbody", m.stats || {}, (k, v) => {
      return typeof v === "number" && k.includes("bytes") ? formatBytes(v) + " (" + v + ")" : String(v);
    });
    fillLinks("#subscriptions", m.subscriptions || [], "subscriber", "subscriber_name");
    fillLinks("#subscribed", m.subscribed || [], "publisher", "publisher_name");
    const key = m.id + ":" + (m.input_events || []).join(",");
    if (key !== detailEventsKey) {
      detailEventsKey = key;
      const choice = $("#send-event");
      choice.replaceChildren();
      for (const name of m.input_events || []) {
        const option = el("option", "", name);
        option.value = name;
        choice.append(option);
      }
    }
    const toggle = $("#trace-toggle");
    if (document.activeElement !== toggle) toggle.checked = Boolean(m.trace_mach);
    if (m.gclass_key && $("#diagram").dataset.gclassKey !== m.gclass_key) showDiagram(m.gclass_key);
  }

  function fillTable(selector, values, show) {
    const body = $(selector);
    const rows = [];
    for (const key of Object.keys(values).sort()) {
      const tr = el("tr");
      tr.dataset.key = key;
      tr.append(el("th", "", key), el("td", "", show(key, values[key])));
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = el("tr", "none");
      tr.append(el("td", "", "none"));
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  }

  function fillLinks(selector, items, idField, nameField) {
    const list = $(selector);
    const rows = [];
    for (const item of items) {
      const li = el("li");
      const target = item[idField];
      const link = el(target !== null && nodes.has(target) ? "a" : "span", "", item[nameField]);
      if (link.tagName === "A") {
        link.href = "#";
        link.dataset.id = String(target);
        link.addEventListener("click", (e) => { e.preventDefault(); select(target); });
      }
      li.append(el("span", "event-name", item.event === null ? "(all events)" : item.event), link);
      rows.push(li);
    }
    if (rows.length === 0) rows.push(el("li", "none", "none"));
    list.replaceChildren(...rows);
  }

  // ---------------------------------------------------------------- the diagram
  const svgCache = new Map();    // gclass_key -> Promise<string>

  function showDiagram(key) {
    const box = $("#diagram");
    box.dataset.gclassKey = key || "";
    box.replaceChildren();
    if (!key) return;
    if (!svgCache.has(key)) {
      svgCache.set(key, fetch("/diagram/" + encodeURIComponent(key) + ".svg").then((r) => {
        if (r.status === 404) throw new Error("the server does not know this gclass");
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }));
    }
    svgCache.get(key).then((text) => {
      if (box.dataset.gclassKey !== key) return;   // another gobj was selected meanwhile
      const doc = new DOMParser().parseFromString(text, "image/svg+xml");
      const svg = doc.documentElement;
      if (svg.nodeName !== "svg") throw new Error("not an SVG document");
      for (const script of svg.querySelectorAll("script")) script.remove();
      box.replaceChildren(document.importNode(svg, true));
      showSelectedState();
    }).catch((err) => {
      svgCache.delete(key);
      box.replaceChildren(el("p", "error", "no diagram of " + key + ": " + err.message));
    });
  }

  function showSelectedState() {
    if (selectedId === null) return;
    const state = shownState(selectedId);
    $("#detail-state").textContent = state || "";
    for (const g of $("#diagram").querySelectorAll("g.state.current")) g.classList.remove("current");
    if (!state) return;
    for (const g of $("#diagram").querySelectorAll("g.state")) {
      if (g.getAttribute("data-state") === state) g.classList.add("current");
    }
  }

  function flashTransition(ev) {
    const box = $("#diagram");
    const targets = [];
    for (const g of box.querySelectorAll("g.row")) {
      if (g.getAttribute("data-state") === ev.state && g.getAttribute("data-event") === ev.event) {
        targets.push(g);
      }
    }
    const next = ev.next_state || ev.state;
    for (const g of box.querySelectorAll("g.state")) {
      if (g.getAttribute("data-state") === next) targets.push(g);
    }
    for (const g of targets) {
      g.classList.remove("flash");
      void g.getBoundingClientRect();      // restart the animation
      g.classList.add("flash");
      setTimeout(() => g.classList.remove("flash"), FLASH_MS);
    }
  }

  // ---------------------------------------------------------------- events
  function onEvents(m) {
    if (typeof m.dropped === "number" && m.dropped > 0) {
      viewerDropped += m.dropped;
      setCounter("viewer_dropped", String(viewerDropped), true);
    }
    const items = (m.items || []).filter(passesFilter);
    if (items.length === 0) return;
    live.push(...items);
    if (live.length > MAX_LIVE) live = live.slice(live.length - MAX_LIVE);
    if (paused) return;
    pendingRows.push(...items);
    if (pendingRows.length > MAX_ROWS) pendingRows = pendingRows.slice(-MAX_ROWS);
    if (renderTimer === null) renderTimer = setTimeout(drawPendingRows, RENDER_MS);
  }

  // Drawing 500 rows for each message of a busy feed would keep the page from doing
  // anything else: what came in the last RENDER_MS is drawn at once.
  function drawPendingRows() {
    renderTimer = null;
    const items = pendingRows;
    pendingRows = [];
    if (paused || items.length === 0) return;
    appendRows(items);
    for (let i = items.length - 1; i >= 0; i -= 1) {
      if (items[i].dst === selectedId) { flashTransition(items[i]); break; }
    }
  }

  // The server filters already; this drops what arrived before a new filter took effect
  // and what the table still shows from before it.
  function passesFilter(ev) {
    const has = (list, ...values) => list.length === 0 || values.some((v) => list.includes(v));
    return has(filter.gclass, ev.gclass) && has(filter.gobj, ev.dst_name, ev.src_name) &&
      has(filter.state, ev.state, ev.next_state) && has(filter.event, ev.event);
  }

  function eventRow(ev) {
    const tr = el("tr", "event" + (ev.error ? " failed" : ""));
    tr.dataset.seq = String(ev.seq);
    tr.dataset.event = ev.event;
    tr.dataset.dst = String(ev.dst);
    tr.dataset.src = ev.src === null || ev.src === undefined ? "" : String(ev.src);
    tr.dataset.state = ev.state || "";
    tr.dataset.next = ev.next_state || "";
    const transition = (ev.state || "") + (ev.next_state && ev.next_state !== ev.state ? " → " + ev.next_state : "");
    const ret = ev.error ? "raised " + ev.error : ev.ret;
    const eventCell = el("td", "ev", ev.event);
    eventCell.style.paddingLeft = (0.3 + Math.min(ev.depth || 0, 10) * 0.8) + "em";
    tr.append(
      el("td", "time", formatTime(ev.t)),
      el("td", "src", ev.src_name || ""),
      el("td", "dst", ev.dst_name),
      eventCell,
      el("td", "transition", transition),
      el("td", "ret", ret),
    );
    tr.title = ev.gclass + " #" + ev.seq;
    return tr;
  }

  function appendRows(items) {
    const body = $("#events tbody");
    const scroller = $("#events-scroll");
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 30;
    const fragment = document.createDocumentFragment();
    for (const ev of items.slice(-MAX_ROWS)) fragment.append(eventRow(ev));
    body.append(fragment);
    while (body.rows.length > MAX_ROWS) body.deleteRow(0);
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  }

  function redrawRows(items) {
    pendingRows = [];
    $("#events tbody").replaceChildren();
    appendRows(items);
    const scroller = $("#events-scroll");
    scroller.scrollTop = scroller.scrollHeight;
  }

  function filterIsSet() {
    return Object.values(filter).some((list) => list.length > 0);
  }

  function applyEventFilter() {
    filter = {
      gclass: splitNames($("#filter-gclass").value),
      gobj: splitNames($("#filter-gobj").value),
      state: splitNames($("#filter-state").value),
      event: splitNames($("#filter-event").value),
    };
    send(Object.assign({type: "filter"}, filter));
    live = live.filter(passesFilter);
    if (paused) {
      if (hello && hello.mode === "replay") {
        showCursor();
      } else {
        send({type: "history"});       // the server filters the ring buffer again
      }
    } else {
      redrawRows(live);
    }
  }

  // ---------------------------------------------------------------- counters
  function setCounter(name, text, warn) {
    const b = document.querySelector('#counters [data-counter="' + name + '"]');
    if (!b) return;
    b.textContent = text;
    if (warn !== undefined) b.closest(".counter").classList.toggle("warn", warn);
  }

  function onCounters(m) {
    setCounter("events_per_s", typeof m.events_per_s === "number" ? m.events_per_s.toFixed(1) : "–");
    setCounter("gobjs", String(m.gobjs));
    setCounter("connections", String(m.connections));
    setCounter("bytes_in", formatBytes(m.bytes_in));
    setCounter("bytes_out", formatBytes(m.bytes_out));
    setCounter("queue", String(m.queue));
    setCounter("loop_lag_ms", typeof m.loop_lag_ms === "number" ? m.loop_lag_ms.toFixed(1) : "–");
    setCounter("viewers", String(m.viewers));
    setCounter("dropped", String(m.dropped), m.dropped > 0 || viewerDropped > 0);
  }

  // ---------------------------------------------------------------- time travel
  function pause() {
    paused = true;
    document.body.dataset.paused = "true";
    $("#pause").textContent = "Live";
    $("#play").hidden = false;
    $("#speed").hidden = false;
    if (hello && hello.mode === "live") send({type: "history"});
  }

  function resume() {
    stopPlaying();
    paused = false;
    delete document.body.dataset.paused;
    cursor = -1;
    scrubStates = new Map();
    $("#pause").textContent = "Pause";
    $("#play").hidden = true;
    $("#speed").hidden = true;
    $("#scrub").disabled = true;
    $("#scrub-label").textContent = "";
    redrawRows(live);
    showAllStates();
  }

  function onHistory(m) {
    history = (m.items || []).filter(passesFilter);
    historyComplete = m.complete !== false;
    if (hello && hello.mode === "replay" && history.length > 0) {
      const seconds = history[history.length - 1].t - history[0].t;
      $("#replay-info").textContent = "trace file: " + history.length + " events over " +
        seconds.toFixed(3) + " s, from " + formatTime(history[0].t);
    }
    if (!paused) {
      if (hello && hello.mode === "live") return;  // a late reply after "Live"
      paused = true;
      document.body.dataset.paused = "true";
    }
    const scrub = $("#scrub");
    scrub.max = String(Math.max(history.length - 1, 0));
    scrub.disabled = history.length === 0;
    cursor = history.length - 1;
    scrub.value = String(Math.max(cursor, 0));
    showCursor();
  }

  function showCursor() {
    const shown = history.slice(0, cursor + 1).filter(passesFilter);
    redrawRows(shown);
    computeScrubStates();
    const at = history[cursor];
    let label = (cursor + 1) + " / " + history.length;
    if (at) label += " · " + formatTime(at.t);
    if (!historyComplete) label += " (older events were dropped)";
    $("#scrub-label").textContent = label;
    showAllStates();
    if (at && at.dst === selectedId) flashTransition(at);
  }

  function step() {
    if (cursor >= history.length - 1) { stopPlaying(); return; }
    const speed = Number($("#speed").value) || 1;
    const now = history[cursor] ? history[cursor].t : history[0].t;
    // Advance over what happened in the next 50 ms of recorded time (at this speed);
    // a pause longer than one second in the recording is skipped.
    let target = cursor + 1;
    const horizon = Math.min(history[target].t, now + 1) + 0.05 * speed;
    while (target + 1 < history.length && history[target + 1].t <= horizon) target += 1;
    cursor = target;
    $("#scrub").value = String(cursor);
    showCursor();
    playTimer = setTimeout(step, 50);
  }

  function play() {
    if (playTimer !== null) { stopPlaying(); return; }
    if (history.length === 0) return;
    if (cursor >= history.length - 1) cursor = -1;
    $("#play").textContent = "Stop";
    step();
  }

  function stopPlaying() {
    if (playTimer !== null) clearTimeout(playTimer);
    playTimer = null;
    $("#play").textContent = "Play";
  }

  // ---------------------------------------------------------------- control
  function sendEvent(e) {
    e.preventDefault();
    if (selectedId === null) return;
    const text = $("#send-kw").value.trim();
    let kw = {};
    if (text) {
      try {
        kw = JSON.parse(text);
      } catch (err) {
        showResult(false, "kw is not JSON: " + err.message);
        return;
      }
      if (kw === null || typeof kw !== "object" || Array.isArray(kw)) {
        showResult(false, "kw must be a JSON object such as {\"data\": \"hello\"}");
        return;
      }
    }
    const event = $("#send-event").value;
    if (!event) {
      showResult(false, "this gobj declares no input event");
      return;
    }
    showResult(true, "sending " + event + "…");
    send({type: "send_event", id: selectedId, event: event, kw: kw});
  }

  // ---------------------------------------------------------------- wiring
  function start() {
    $("#filter-tree").addEventListener("input", applyTreeFilter);
    $("#event-filters").addEventListener("submit", (e) => { e.preventDefault(); applyEventFilter(); });
    $("#pause").addEventListener("click", () => (paused ? resume() : pause()));
    $("#play").addEventListener("click", play);
    $("#scrub").addEventListener("input", () => {
      stopPlaying();
      cursor = Number($("#scrub").value);
      showCursor();
    });
    $("#send-form").addEventListener("submit", sendEvent);
    $("#events tbody").addEventListener("click", (e) => {
      const row = e.target instanceof Element ? e.target.closest("tr.event") : null;
      if (row) select(Number(row.dataset.dst));
    });
    $("#diagram").addEventListener("click", () => $("#diagram").classList.toggle("actual-size"));
    $("#trace-toggle").addEventListener("change", () => {
      if (selectedId !== null) send({type: "trace", id: selectedId, on: $("#trace-toggle").checked});
    });
    window.addEventListener("hashchange", () => location.reload());
    connect();
  }

  start();
})();
