// The operator console: reads the live stream of snapshots with fetch (so the token goes in
// the Authorization header, never in a URL) and renders every value as text, never as HTML.
"use strict";

const TOKEN_KEY = "orderstream-console-token";
let stream = null;

function element(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

function row(cells) {
  const tr = element("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : element("td", cell));
  return tr;
}

function replaceRows(table, rows) {
  document.querySelector(`#${table} tbody`).replaceChildren(...rows);
}

function bearer() {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  return token.startsWith("Bearer ") ? token : `Bearer ${token}`;
}

function setState(text, failed) {
  const state = document.getElementById("state");
  state.textContent = text;
  state.classList.toggle("error", Boolean(failed));
}

async function problemOf(response) {
  const body = await response.json().catch(() => null);
  return body && (body.detail || body.title) ? `${response.status}: ${body.detail || body.title}` : `${response.status}`;
}

function render(snapshot) {
  if (snapshot.error) {
    setState(`Snapshot failed: ${snapshot.error}`, true);
    return;
  }
  setState(`Live, as of ${snapshot.at}`);
  const rates = snapshot.rates;
  document.getElementById("commands-rate").textContent = rates ? rates.commands_per_second.toFixed(1) : "–";
  document.getElementById("events-rate").textContent = rates ? rates.events_per_second.toFixed(1) : "–";
  document.getElementById("events-topic").textContent = snapshot.events_topic;

  replaceRows("projections", snapshot.projections.map((projection) => {
    const lag = element("td", projection.lag, { "data-lag-of": projection.name });
    lag.className = `number ${projection.lag > 0 ? "behind" : "caught-up"}`;
    const checkpoints = element("td", null, { class: "checkpoints" });
    for (const p of projection.partitions) {
      checkpoints.append(element("span", `p${p.partition}: ${p.next_offset ?? "–"} / ${p.log_end}`));
    }
    return row([projection.name, lag, element("td", projection.dead_letters, { class: "number" }), checkpoints]);
  }));

  const rebuild = document.getElementById("rebuild");
  const rebuilding = snapshot.projections.filter((projection) => projection.rebuilt);
  if (snapshot.rebuild === "none") {
    rebuild.replaceChildren(element("p", "No rebuild."));
  } else {
    const says = {
      starting: "A rebuild is starting.",
      running: `Rebuilding into schema ${snapshot.rebuild_schema}.`,
      interrupted: `Schema ${snapshot.rebuild_schema} is left from an interrupted rebuild; the next rebuild drops it.`,
    };
    const items = [element("p", says[snapshot.rebuild])];
    for (const projection of rebuilding) {
      const { done, total } = projection.rebuilt;
      const line = element("p", `${projection.name}: ${done} / ${total} events `);
      line.append(element("progress", null, { value: String(done), max: String(Math.max(total, 1)) }));
      items.push(line);
    }
    rebuild.replaceChildren(...items);
  }

  replaceRows("partitions", snapshot.partitions.map((p) =>
    row([p.partition, element("td", p.log_end, { class: "number" }), element("td", p.commands_log_end, { class: "number" }), p.owner ?? "unowned"])));

  const deciders = snapshot.deciders.map((decider) =>
    element("li", `${decider.instance} on ${decider.host}: partitions ${decider.partitions.join(", ") || "none"}`));
  document.getElementById("deciders").replaceChildren(...(deciders.length ? deciders : [element("li", "No decider in the group.")]));

  replaceRows("dead-letters", snapshot.dead_letters.map((d) =>
    row([d.id, d.projection, `${d.partition}@${d.offset}`, d.event_type ?? "–", d.error, d.dead_lettered_at])));
}

// Server-Sent Events over fetch: blocks separated by a blank line, `data:` lines joined.
async function follow(signal) {
  const response = await fetch("/console/api/stream", {
    headers: { Authorization: bearer(), Accept: "text/event-stream" },
    signal,
  });
  if (!response.ok) {
    throw new Error(await problemOf(response));
  }
  setState("Connected; waiting for the first snapshot.");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
      if (data) render(JSON.parse(data));
    }
  }
}

function connect() {
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  follow(controller.signal).then(
    () => retry(controller, "Stream ended"),
    (error) => retry(controller, error.message),
  );
}

function retry(controller, why) {
  if (controller.signal.aborted) return;
  setState(`Disconnected (${why}); retrying in 2 s.`, true);
  setTimeout(() => { if (stream === controller) connect(); }, 2000);
}

async function showOrder(orderId) {
  const timeline = document.getElementById("timeline");
  const response = await fetch(`/console/api/orders/${encodeURIComponent(orderId)}`, {
    headers: { Authorization: bearer() },
  });
  if (!response.ok) {
    timeline.replaceChildren(element("p", `Order not shown: ${await problemOf(response)}`));
    return;
  }
  const order = await response.json();
  const events = element("table");
  events.append(row(["#", "event", "at", "partition@offset", "command", "trace", "data"].map((h) => element("th", h))));
  for (const event of order.events) {
    const trace = element("td");
    if (event.trace_url) {
      trace.append(element("a", event.trace_id, { href: event.trace_url, target: "_blank", rel: "noopener" }));
    } else {
      trace.textContent = event.trace_id ?? "–";
    }
    const position = event.partition === null ? "–" : `${event.partition}@${event.offset}`;
    const data = element("td");
    data.append(element("pre", JSON.stringify(event.data, null, 1)));
    events.append(row([event.version, event.type, event.occurred_at, position, event.command_id ?? "–", trace, data]));
  }
  const reached = element("ul", null, { id: "reached" });
  for (const p of order.projections) {
    reached.append(element("li", `${p.projection}: ${p.reached ? "has applied the latest event" : "not yet"} (checkpoint ${p.next_offset})`));
  }
  timeline.replaceChildren(element("h3", `Order ${order.order_id}`), events, element("h3", "Projections"), reached);
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  connect();
});

document.getElementById("order-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showOrder(document.getElementById("order-id").value.trim());
});

if (sessionStorage.getItem(TOKEN_KEY)) connect();
