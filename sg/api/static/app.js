// The servicegroup status page: one table kept live by GET /v1/events.
//
// The stream is read with fetch() rather than EventSource, because EventSource cannot
// send an Authorization header: the token would have to travel in the URL, where
// proxies' access logs, browser history and Referer headers keep it. fetch() sends
// the header, sees a 401 (EventSource only sees "error") and lets this page decide
// when to reconnect. The Server-Sent Events format is parsed below (a few lines).
"use strict";

(() => {
  const TOKEN_KEY = "sg-api-token";
  const EVENTS_URL = "v1/events";           // relative: works behind a path prefix
  const STALL_MS = 45000;                   // 3 x the server's 15 s keep-alive
  const MAX_BACKOFF_MS = 15000;
  const STATES = ["up", "down", "unknown"];

  /** uuid -> {row, received (ms), tr} */
  const services = new Map();
  const $ = (id) => document.getElementById(id);
  let controller = null;
  let backoff = 1000;
  let renderPending = false;

  // -- connection ---------------------------------------------------------------------

  function setConn(state, text) {
    const el = $("conn");
    el.dataset.conn = state;
    el.textContent = text || state;
  }

  function storedToken() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function connect() {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    const headers = { Accept: "text/event-stream" };
    const token = storedToken();
    if (token) headers.Authorization = "Bearer " + token;
    $("forget-token").hidden = !token;
    setConn("connecting");
    let response;
    try {
      response = await fetch(EVENTS_URL, { headers, signal: mine.signal, cache: "no-store" });
    } catch (err) {
      if (mine === controller) retry();
      return;
    }
    if (response.status === 401) {
      askToken(token ? "The token was refused: enter another." : "This server needs a token to read.");
      return;
    }
    if (!response.ok || !response.body) {
      setConn("reconnecting", "error " + response.status + ", retrying");
      retry();
      return;
    }
    setConn("live");
    backoff = 1000;
    try {
      await readEvents(response.body, mine, dispatch);
    } catch (err) {
      // aborted (stalled, token changed) or the connection broke: reconnect below
    }
    if (mine === controller) retry();
  }

  function retry() {
    setConn("reconnecting", "reconnecting in " + Math.round(backoff / 1000) + " s");
    const wait = backoff;
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    setTimeout(connect, wait);
  }

  function askToken(why) {
    setConn("token", "token needed");
    $("token-why").textContent = why;
    $("token-form").hidden = false;
    $("token").focus();
  }

  // Server-Sent Events: "field: value" lines, a blank line ends an event, ":" a comment.
  async function readEvents(body, mine, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let stall = setTimeout(() => mine.abort(), STALL_MS);
    let buffer = "";
    let event = "message";
    let data = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(stall);
        stall = setTimeout(() => mine.abort(), STALL_MS);
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          let line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            if (data.length) onEvent(event, data.join("\n"));
            event = "message";
            data = [];
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? "" : line.slice(colon + 1);
            if (val.startsWith(" ")) val = val.slice(1);
            if (field === "event") event = val;
            else if (field === "data") data.push(val);
          }
        }
      }
    } finally {
      clearTimeout(stall);
    }
  }

  function dispatch(event, text) {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      return;
    }
    const now = Date.now();
    if (event === "snapshot") {
      services.clear();
      for (const row of doc.services) services.set(row.uuid, { row, received: now, changed: false });
    } else if (event === "change") {
      services.set(doc.service.uuid, { row: doc.service, received: now, changed: true });
    } else if (event === "removed") {
      services.delete(doc.service.uuid);
    } else {
      return;
    }
    scheduleRender();
  }

  // -- rendering ----------------------------------------------------------------------

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    setTimeout(() => {
      renderPending = false;
      render();
    }, 0);
  }

  function formatAge(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    const s = Math.max(0, seconds);
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.floor(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " m " + (Math.floor(s) % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + (Math.floor(s / 60) % 60) + " m";
    return Math.floor(s / 86400) + " d " + (Math.floor(s / 3600) % 24) + " h";
  }

  // An up service beats all the time, so its age stays below the report interval;
  // only the age at the last event is known. A down or unknown one is not refreshed:
  // its age grows with the clock until its next change arrives.
  function currentAge(entry) {
    const age = entry.row.age;
    if (age === null || age === undefined || entry.row.state === "up") return age;
    return age + (Date.now() - entry.received) / 1000;
  }

  function cell(tr, text, className, title) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function flag(td, text, className, title) {
    const span = document.createElement("span");
    span.className = "flag " + className;
    span.textContent = text;
    if (title) span.title = title;
    td.appendChild(span);
  }

  function buildRow(entry) {
    const r = entry.row;
    const tr = document.createElement("tr");
    tr.dataset.uuid = r.uuid;
    tr.dataset.host = r.host;
    tr.dataset.binary = r.binary;
    tr.dataset.topic = r.topic;
    tr.dataset.state = r.state;
    if (entry.changed) tr.className = "changed";
    cell(tr, r.host, "host");
    cell(tr, r.binary, "binary");
    cell(tr, r.topic, "topic");
    cell(tr, r.state, "state state-" + r.state);
    cell(tr, r.reason, "reason", r.check_failure || "");
    entry.ageCell = cell(tr, formatAge(currentAge(entry)), "age", r.updated_at ? "updated " + r.updated_at : "");
    const flags = cell(tr, "", "flags");
    if (r.status === "disabled") flag(flags, "disabled", "disabled", r.disabled_reason || "no reason given");
    if (r.forced_down) flag(flags, "forced down", "forced", "forced down by an operator");
    cell(tr, String(r.version), "version");
    entry.changed = false;
    entry.tr = tr;
    return tr;
  }

  function render() {
    const topicSelect = $("filter-topic");
    const topic = topicSelect.value;
    const state = $("filter-state").value;
    const entries = [...services.values()].sort((a, b) =>
      a.row.topic.localeCompare(b.row.topic) || a.row.binary.localeCompare(b.row.binary) ||
      a.row.host.localeCompare(b.row.host));

    // Topic choices follow the services; a chosen topic stays while it has any.
    const topics = [...new Set(entries.map((e) => e.row.topic))];
    if (topic && !topics.includes(topic)) topics.push(topic);
    const options = [new Option("all", "")].concat(topics.sort().map((t) => new Option(t, t)));
    topicSelect.replaceChildren(...options);
    topicSelect.value = topic;

    // Counts per state over the chosen topic; the state filter narrows the table only.
    const inTopic = entries.filter((e) => !topic || e.row.topic === topic);
    $("count-all").textContent = String(inTopic.length);
    for (const s of STATES) $("count-" + s).textContent = String(inTopic.filter((e) => e.row.state === s).length);
    for (const button of document.querySelectorAll(".count")) {
      button.setAttribute("aria-pressed", String(button.dataset.state === state));
    }

    const shown = inTopic.filter((e) => !state || e.row.state === state);
    $("services").tBodies[0].replaceChildren(...shown.map(buildRow));
    $("empty").hidden = shown.length > 0;
  }

  function tickAges() {
    for (const entry of services.values()) {
      if (entry.ageCell && entry.row.state !== "up") entry.ageCell.textContent = formatAge(currentAge(entry));
    }
  }

  // -- wiring -------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = $("token").value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      $("token-form").hidden = true;
      backoff = 1000;
      connect();
    });
    $("forget-token").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      connect();
    });
    $("filter-topic").addEventListener("change", render);
    $("filter-state").addEventListener("change", render);
    for (const button of document.querySelectorAll(".count")) {
      button.addEventListener("click", () => {
        $("filter-state").value = button.dataset.state;
        render();
      });
    }
    setInterval(tickAges, 1000);
    render();
    connect();
  });
})();
