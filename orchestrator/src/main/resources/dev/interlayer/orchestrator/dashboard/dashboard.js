// The dashboard's one script: reads /api/fleet (the orchestrator's Dashboard.Read) every 2 s and fills the tables.
"use strict";

function cell(row, text, cls) {
  const td = document.createElement("td");
  if (text instanceof Node) {
    td.appendChild(text);
  } else {
    td.textContent = text === undefined || text === null ? "" : String(text);
  }
  if (cls) {
    td.className = cls;
  }
  row.appendChild(td);
  return td;
}

function withReason(text, reason, cls) {
  const span = document.createElement("span");
  span.textContent = text;
  span.className = cls || text;
  const wrap = document.createElement("span");
  wrap.appendChild(span);
  if (reason) {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = reason;
    wrap.appendChild(why);
  }
  return wrap;
}

function when(ms) {
  const n = Number(ms || 0);
  return n === 0 ? "never" : new Date(n).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function fill(id, rows, empty, columns) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = cell(tr, empty, "empty");
    td.colSpan = columns;
    return;
  }
  rows.forEach(r => body.appendChild(r));
}

function render(fleet) {
  const agents = fleet.agents || [];
  const deployments = fleet.deployments || [];
  const rollouts = fleet.rollouts || [];
  const connected = agents.filter(a => a.connected).length;
  document.getElementById("summary").textContent = "revision " + (fleet.revision || 0) + " · " + agents.length + " agent(s), "
      + connected + " connected · " + deployments.length + " live deployment(s) · "
      + (fleet.leader ? "leader " + fleet.leader : "no orchestrator leads now (rollouts wait)");

  fill("agents", agents.map(a => {
    const tr = document.createElement("tr");
    tr.dataset.agent = a.name;
    cell(tr, a.name);
    cell(tr, a.connected ? "yes" : "no", a.connected ? "yes" : "no");
    cell(tr, when(a.lastSeenUnixMs));
    cell(tr, (a.desiredRevision || 0) + " / " + (a.appliedRevision || 0), "num");
    cell(tr, withReason(a.ack || "NEVER", a.ackReason));
    cell(tr, withReason(a.integrity || "UNCHECKED", a.integrityReason));
    const labels = document.createElement("span");
    (a.labels || []).forEach(l => {
      const s = document.createElement("span");
      s.className = "label";
      s.textContent = l.key + (l.value === undefined ? "" : "=" + l.value);
      labels.appendChild(s);
    });
    cell(tr, labels);
    cell(tr, a.connections || 0, "num");
    cell(tr, a.replica || "");
    cell(tr, a.connected ? a.address : "");
    return tr;
  }), "no agent has enrolled yet: make a token with interlayer fleet token NAME", 10);

  const modules = [];
  agents.forEach(a => (a.modules || []).forEach(m => {
    const tr = document.createElement("tr");
    tr.dataset.agent = a.name;
    tr.dataset.module = m.name + "@" + m.version;
    cell(tr, a.name);
    cell(tr, m.name);
    cell(tr, m.version);
    cell(tr, m.state, m.state);
    cell(tr, m.priority || 0, "num");
    cell(tr, m.source);
    cell(tr, m.live || 0, "num");
    cell(tr, m.faults || 0, "num");
    modules.push(tr);
  }));
  fill("modules", modules, "no agent reports a module", 8);

  fill("deployments", deployments.map(d => {
    const tr = document.createElement("tr");
    cell(tr, d.module.name);
    cell(tr, d.module.version);
    const t = d.target || {};
    cell(tr, (t.kind || "ALL").toLowerCase() + (t.value ? "=" + t.value : ""));
    cell(tr, d.revision || 0, "num");
    cell(tr, when(d.createdUnixMs));
    return tr;
  }), "nothing is deployed: interlayer fleet deploy MODULE@VERSION --to all", 5);

  fill("rollouts", rollouts.map(r => {
    const tr = document.createElement("tr");
    tr.dataset.rollout = r.id;
    cell(tr, r.id, "num");
    cell(tr, r.module.name + "@" + r.module.version + ((r.previous || []).length ? " (from " + r.previous.join(", ") + ")" : ""));
    cell(tr, withReason(r.phase, r.reason));
    const progress = document.createElement("span");
    const bar = document.createElement("progress");
    bar.max = r.total || 0;
    bar.value = r.applied || 0;
    progress.appendChild(bar);
    progress.appendChild(document.createTextNode((r.applied || 0) + "/" + (r.total || 0) + " applied"));
    cell(tr, progress);
    cell(tr, (r.faults || 0) + " (" + (r.maxFaults || 0) + ")", "num");
    const target = t => t ? (t.kind || "ALL").toLowerCase() + (t.value ? "=" + t.value : "") : "its live deployments";
    cell(tr, target(r.canary) + ", then " + target(r.target));
    cell(tr, (r.bakeSeconds || 0) + " s" + (Number(r.bakeUntilUnixMs || 0) > 0 ? " until " + when(r.bakeUntilUnixMs) : ""));
    cell(tr, when(r.createdUnixMs) + (r.createdBy ? " by " + r.createdBy : ""));
    return tr;
  }), "no rollout: interlayer fleet rollout MODULE@VERSION --canary TARGET", 8);

  document.getElementById("updated").textContent = "updated " + when(Date.now());
}

async function refresh() {
  const problem = document.getElementById("problem");
  try {
    const r = await fetch("/api/fleet", {cache: "no-store"});
    const text = await r.text();
    if (!r.ok) {
      throw new Error(text.trim() || r.status + " " + r.statusText);
    }
    render(JSON.parse(text));
    problem.hidden = true;
  } catch (e) {
    problem.textContent = "cannot read the fleet: " + e.message;
    problem.hidden = false;
  }
}

refresh();
setInterval(refresh, 2000);
