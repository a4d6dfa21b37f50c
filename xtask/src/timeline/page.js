// The timeline page's script: reads the data embedded in the page and draws the run on one
// canvas — a lane per node (role and term, commit index, down intervals, fault bands), an
// arrow per message, client operations, the failing check — with zoom, pan and filters.
// It times itself from its first line to the end of its first complete drawing and writes
// the figure to <body data-drawn-ms>, where a headless browser reads it.
"use strict";
(function () {
  const T0 = performance.now();
  const D = JSON.parse(document.getElementById("timeline-data").textContent);
  const PARSED = performance.now();
  const LANE_H = 34, AXIS_H = 24, GUTTER = 118;
  const canvas = document.getElementById("canvas");
  const stage = document.getElementById("stage");
  const ctx = canvas.getContext("2d");
  const M = D.msgs;
  const NM = M.id.length;
  const END = Math.max(D.end, 1);

  // What is shown.
  const view = { t0: 0, t1: END };
  const hidden = new Set();
  const show = {
    req: true, reply: true, delivered: true, dropped: true, held: true, dup: true, inflight: true,
    roles: true, commits: true, bands: true, ticks: true, ops: true,
  };
  let rowOf = [], rows = 0, W = 800, H = 200;
  let hover = null;

  const ROLE_COLORS = { leader: "#bfe8bf", candidate: "#ffe3a0", follower: "#eceff4" };
  function roleColor(name) {
    if (ROLE_COLORS[name]) return ROLE_COLORS[name];
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
    return "hsl(" + h + ",55%,85%)";
  }
  const MSG_STYLES = {
    req: { color: "#2f62d0", dash: [] },
    reply: { color: "#1f9d8b", dash: [] },
    dropped: { color: "#d62828", dash: [4, 3] },
    held: { color: "#ef8a17", dash: [6, 3] },
    dup: { color: "#9b5de5", dash: [] },
    inflight: { color: "#8a919c", dash: [2, 3] },
  };
  const BAND_COLORS = {
    partition: "rgba(150, 90, 220, 0.13)", unreliable: "#f1c40f", long_delays: "#e67e22",
    long_reordering: "#16a085", disconnect: "#d9534f", cut: "#c2185b", clog: "#8e44ad", down: "rgba(40,44,52,0.55)",
  };
  const TICK_STYLE = {
    timer: ["#a0a7b3", 4], persist: ["#4a74c9", 5], fail: ["#d62828", 7], fs: ["#6c7a89", 5],
    note: ["#222", 9], fault: ["#e67e22", 12], exit: ["#222", 12], crash: ["#000", 14], restart: ["#2a9d3a", 14],
  };

  // Per message: fate (0 delivered, 1 dropped, 2 in flight) | reply << 2 | held << 3 | dup << 4 | reason << 5.
  const fate = (i) => M.flags[i] & 3;
  const isReply = (i) => (M.flags[i] >> 2) & 1;
  const isHeld = (i) => (M.flags[i] >> 3) & 1;
  const isDup = (i) => (M.flags[i] >> 4) & 1;
  const reason = (i) => D.reasons[M.flags[i] >> 5];
  function fateOf(i) {
    if (isDup(i)) return "dup";
    if (fate(i) === 1) return "dropped";
    if (fate(i) === 2) return "inflight";
    if (isHeld(i)) return "held";
    return isReply(i) ? "reply" : "req";
  }
  function msgShown(i) {
    if (rowOf[M.from[i]] < 0 || rowOf[M.to[i]] < 0) return false;
    if (isReply(i) ? !show.reply : !show.req) return false;
    const f = fateOf(i);
    if (f === "req" || f === "reply") return show.delivered;
    return show[f];
  }

  // ---- layout and coordinates ----
  function layout() {
    let r = 0;
    rowOf = D.lanes.map((_, i) => (hidden.has(i) ? -1 : r++));
    rows = r;
  }
  function resize() {
    W = Math.max(stage.clientWidth, 400);
    H = AXIS_H + rows * LANE_H + 2;
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = W + "px";
    canvas.style.height = H + "px";
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  const span = () => view.t1 - view.t0;
  const X = (t) => GUTTER + ((t - view.t0) * (W - GUTTER)) / span();
  const tAt = (px) => view.t0 + ((px - GUTTER) * span()) / (W - GUTTER);
  const Y = (lane) => AXIS_H + rowOf[lane] * LANE_H;
  const fmt = (us) => (us / 1e6).toFixed(6) + "s";

  // ---- drawing ----
  function draw() {
    ctx.clearRect(0, 0, W, H);
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, 0, W - GUTTER, H);
    ctx.clip();
    drawLanes();
    if (show.bands) drawBands();
    if (show.commits) drawCommits();
    if (show.ticks) drawTicks();
    if (show.ops) drawOps();
    drawMessages();
    drawCheck();
    drawHover();
    ctx.restore();
    drawAxis();
    drawGutter();
    placeMarks();
  }

  function drawLanes() {
    D.lanes.forEach((lane, i) => {
      if (rowOf[i] < 0) return;
      const y = Y(i);
      ctx.fillStyle = rowOf[i] % 2 ? "#fafbfd" : "#ffffff";
      ctx.fillRect(GUTTER, y, W - GUTTER, LANE_H);
      const roles = D.roles[i];
      if (!show.roles || !roles) return;
      for (let k = 0; k < roles.length; k++) {
        const [t, r, term] = roles[k];
        const t1 = k + 1 < roles.length ? roles[k + 1][0] : END;
        if (t1 < view.t0 || t > view.t1) continue;
        const x0 = Math.max(X(t), GUTTER - 2), x1 = Math.min(X(t1), W + 2);
        const name = D.role_names[r];
        ctx.fillStyle = roleColor(name);
        ctx.fillRect(x0, y + 2, Math.max(x1 - x0, 1), LANE_H - 4);
        if (x1 - x0 > 54) {
          ctx.fillStyle = "#2b3340";
          ctx.font = "10px sans-serif";
          ctx.fillText(name + " · term " + term, x0 + 3, y + 11);
        }
      }
    });
  }

  function drawBands() {
    const world = D.lanes.findIndex((l) => l.kind === "world");
    for (const b of D.bands) {
      if (b.t1 < view.t0 || b.t0 > view.t1) continue;
      const x0 = Math.max(X(b.t0), GUTTER - 2), x1 = Math.min(X(b.t1), W + 2);
      const w = Math.max(x1 - x0, 2);
      if (b.lane === null) {
        if (b.kind === "partition") {
          ctx.fillStyle = BAND_COLORS.partition;
          ctx.fillRect(x0, AXIS_H, w, rows * LANE_H);
          ctx.fillStyle = "#6b3fb0";
          ctx.font = "10px sans-serif";
          if (w > 40) ctx.fillText(b.label, x0 + 3, AXIS_H + rows * LANE_H - 4);
        } else if (world >= 0 && rowOf[world] >= 0) {
          // Network modes: a strip along the bottom of the world lane.
          const off = { unreliable: 0, long_delays: 1, long_reordering: 2 }[b.kind] || 0;
          ctx.fillStyle = BAND_COLORS[b.kind] || "#999";
          ctx.fillRect(x0, Y(world) + LANE_H - 4 - off * 4, w, 3);
        }
        continue;
      }
      if (rowOf[b.lane] < 0) continue;
      const y = Y(b.lane);
      ctx.fillStyle = BAND_COLORS[b.kind] || "#999";
      if (b.kind === "down") {
        ctx.fillRect(x0, y + 1, w, LANE_H - 2);
        if (w > 30) {
          ctx.fillStyle = "#fff";
          ctx.font = "10px sans-serif";
          ctx.fillText("down", x0 + 3, y + 19);
        }
      } else {
        ctx.fillRect(x0, y + LANE_H - 6, w, 4);
        if (w > 70) {
          ctx.font = "9px sans-serif";
          ctx.fillText(b.label, x0 + 2, y + LANE_H - 8);
        }
      }
    }
  }

  let maxCommit = 0;
  for (const k in D.commits) for (const [, c] of D.commits[k]) maxCommit = Math.max(maxCommit, c);
  function drawCommits() {
    if (!maxCommit) return;
    ctx.font = "9px sans-serif";
    ctx.strokeStyle = "#1e7a34";
    ctx.fillStyle = "#1e7a34";
    ctx.lineWidth = 1;
    for (const k in D.commits) {
      const lane = +k;
      if (rowOf[lane] < 0) continue;
      const pts = D.commits[k], y = Y(lane);
      // A staircase in the lane's lower part, scaled to the largest commit index of the run.
      const yc = (c) => y + LANE_H - 3 - (c / maxCommit) * (LANE_H - 16);
      let c = 0, j = 0;
      while (j < pts.length && pts[j][0] < view.t0) c = pts[j++][1];
      ctx.beginPath();
      ctx.moveTo(GUTTER - 2, yc(c));
      let lastLabel = -1e9;
      if (c > 0) {
        ctx.fillText("c" + c, GUTTER + 2, Math.max(yc(c) - 2, y + 9));
        lastLabel = GUTTER;
      }
      for (; j < pts.length; j++) {
        const [t, next] = pts[j];
        const x = X(t);
        if (x > W + 2) break;
        ctx.lineTo(x, yc(c));
        ctx.lineTo(x, yc(next));
        c = next;
        if (x - lastLabel > 34) {
          ctx.fillText("c" + c, x + 2, Math.max(yc(c) - 2, y + 9));
          lastLabel = x;
        }
      }
      ctx.lineTo(Math.min(X(END), W + 2), yc(c));
      ctx.stroke();
    }
  }

  function drawTicks() {
    const T = D.ticks, n = T.t.length;
    const dense = n > 20000 && span() > END / 4;
    for (let i = 0; i < n; i++) {
      const t = T.t[i];
      if (t < view.t0 || t > view.t1) continue;
      const lane = T.lane[i];
      if (rowOf[lane] < 0) continue;
      const kind = D.tick_kinds[T.kind[i]];
      if (dense && (kind === "timer" || kind === "persist")) continue;
      const [color, h] = TICK_STYLE[kind] || ["#555", 6];
      const x = X(t), y = Y(lane);
      ctx.fillStyle = color;
      ctx.fillRect(x - 0.5, y + LANE_H - 3 - h, kind === "crash" || kind === "restart" ? 2 : 1, h);
    }
  }

  function drawOps() {
    ctx.font = "10px sans-serif";
    for (const op of D.ops) {
      if (rowOf[op.lane] < 0) continue;
      const t1 = op.t1 === null ? END : op.t1;
      if (t1 < view.t0 || op.t0 > view.t1) continue;
      const x0 = X(op.t0), x1 = Math.max(X(t1), x0 + 2), y = Y(op.lane);
      ctx.fillStyle = op.failed ? "#ffc9c9" : op.t1 === null ? "#eeeeee" : "#d9e6ff";
      ctx.strokeStyle = op.failed ? "#d62828" : "#5b7fc7";
      ctx.lineWidth = op.failed ? 2 : 1;
      ctx.fillRect(x0, y + 6, x1 - x0, LANE_H - 12);
      if (x1 - x0 > 4) ctx.strokeRect(x0, y + 6, x1 - x0, LANE_H - 12);
      if (x1 - x0 > 60) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(x0, y, x1 - x0 - 2, LANE_H);
        ctx.clip();
        ctx.fillStyle = "#1d2330";
        ctx.fillText(op.call + (op.result ? " → " + op.result : ""), x0 + 3, y + 19);
        ctx.restore();
      }
    }
  }

  // Where a message's arrow starts and ends. A message lost the instant it was sent (an
  // unreachable peer, a request lost) never left: a short stub towards its receiver.
  function ends(i) {
    const x0 = X(M.t0[i]), y0 = Y(M.from[i]) + LANE_H / 2, y1 = Y(M.to[i]) + LANE_H / 2;
    if (fate(i) === 1 && M.dt[i] === 0) return [x0, y0, x0 + 6, y0 + Math.sign(y1 - y0) * Math.min(LANE_H * 0.6, Math.abs(y1 - y0) * 0.4)];
    return [x0, y0, X(M.t0[i] + M.dt[i]), y1];
  }

  function drawMessages() {
    // Batched by style: one path per style keeps 50 000 arrows fast.
    const paths = {};
    for (const k in MSG_STYLES) paths[k] = [];
    let visible = 0;
    for (let i = 0; i < NM; i++) {
      const t0 = M.t0[i], t1 = t0 + M.dt[i];
      if (t1 < view.t0 || t0 > view.t1) continue;
      if (!msgShown(i)) continue;
      paths[fateOf(i)].push(i);
      visible++;
    }
    const detail = visible < 4000;
    // Dense views fade the arrows so the lanes (roles, commit index) stay readable under them.
    ctx.lineWidth = visible > 8000 ? 0.6 : 1;
    ctx.globalAlpha = Math.max(0.08, Math.min(0.9, 2500 / Math.max(visible, 1)));
    for (const k in paths) {
      const list = paths[k];
      if (!list.length) continue;
      const st = MSG_STYLES[k];
      ctx.strokeStyle = st.color;
      ctx.setLineDash(detail ? st.dash : []);
      ctx.beginPath();
      for (const i of list) {
        const [x0, y0, x1, y1] = ends(i);
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
      }
      ctx.stroke();
      if (!detail) continue;
      ctx.setLineDash([]);
      ctx.beginPath();
      for (const i of list) {
        const [x0, y0, x1, y1] = ends(i);
        if (k === "dropped") {
          ctx.moveTo(x1 - 3, y1 - 3); ctx.lineTo(x1 + 3, y1 + 3);
          ctx.moveTo(x1 - 3, y1 + 3); ctx.lineTo(x1 + 3, y1 - 3);
        } else if (k !== "inflight") {
          const a = Math.atan2(y1 - y0, x1 - x0);
          ctx.moveTo(x1, y1); ctx.lineTo(x1 - 6 * Math.cos(a - 0.4), y1 - 6 * Math.sin(a - 0.4));
          ctx.moveTo(x1, y1); ctx.lineTo(x1 - 6 * Math.cos(a + 0.4), y1 - 6 * Math.sin(a + 0.4));
        }
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1;
    drawn.messages = visible;
  }

  function drawCheck() {
    const c = D.check;
    if (!c) return;
    const x = X(c.t);
    ctx.fillStyle = "rgba(214, 40, 40, 0.08)";
    ctx.fillRect(x, AXIS_H, W - x, rows * LANE_H);
    ctx.strokeStyle = "#d62828";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, H);
    ctx.stroke();
    if (c.step && rowOf[c.step.lane] >= 0) {
      ctx.beginPath();
      ctx.arc(X(c.step.t), Y(c.step.lane) + LANE_H / 2, 7, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.lineWidth = 1;
  }

  function drawHover() {
    if (!hover || hover.msg === undefined) return;
    const i = hover.msg;
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    const [x0, y0, x1, y1] = ends(i);
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  function niceStep(us) {
    const p = Math.pow(10, Math.floor(Math.log10(us)));
    for (const m of [1, 2, 5, 10]) if (p * m >= us) return p * m;
    return p * 10;
  }
  function drawAxis() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(GUTTER, 0, W - GUTTER, AXIS_H);
    ctx.strokeStyle = "#c5ccd6";
    ctx.beginPath();
    ctx.moveTo(GUTTER, AXIS_H - 0.5);
    ctx.lineTo(W, AXIS_H - 0.5);
    ctx.stroke();
    const step = niceStep((span() * 90) / (W - GUTTER));
    ctx.fillStyle = "#4a5364";
    ctx.font = "10px sans-serif";
    const digits = Math.max(0, Math.min(6, 6 - Math.floor(Math.log10(step))));
    for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      const x = X(t);
      ctx.fillRect(x, AXIS_H - 5, 1, 5);
      ctx.fillText((t / 1e6).toFixed(digits) + "s", x + 2, AXIS_H - 8);
    }
    if (D.check) {
      const x = X(D.check.t);
      if (x >= GUTTER && x <= W) {
        ctx.fillStyle = "#d62828";
        ctx.fillRect(x - 1, 0, 2, AXIS_H);
      }
    }
  }

  function drawGutter() {
    ctx.fillStyle = "#f4f6f9";
    ctx.fillRect(0, 0, GUTTER, H);
    ctx.fillStyle = "#1d2330";
    ctx.font = "12px sans-serif";
    D.lanes.forEach((lane, i) => {
      if (rowOf[i] < 0) return;
      ctx.fillStyle = lane.kind === "client" ? "#2456c4" : lane.kind === "world" ? "#6b7280" : "#1d2330";
      ctx.fillText(lane.name, 8, Y(i) + 19);
    });
    ctx.strokeStyle = "#dde2ea";
    ctx.beginPath();
    ctx.moveTo(GUTTER - 0.5, 0);
    ctx.lineTo(GUTTER - 0.5, H);
    ctx.stroke();
  }

  // ---- DOM marks (for people and for tests) ----
  let failureMark = null, stepMark = null;
  function placeMarks() {
    const c = D.check;
    if (!c) return;
    if (!failureMark) {
      failureMark = document.createElement("div");
      failureMark.id = "failure-mark";
      failureMark.className = "failure-mark";
      failureMark.dataset.tUs = c.t;
      failureMark.title = c.text;
      const label = document.createElement("span");
      label.textContent = "✗ " + (c.text.length > 90 ? c.text.slice(0, 90) + "…" : c.text);
      failureMark.appendChild(label);
      stage.appendChild(failureMark);
      if (c.step) {
        stepMark = document.createElement("div");
        stepMark.id = "step-mark";
        stepMark.className = "step-mark";
        stepMark.title = "the violating step: " + c.step.kind + " " + c.step.text;
        stage.appendChild(stepMark);
      }
    }
    const x = X(c.t);
    failureMark.style.left = x - 1 + "px";
    failureMark.style.height = H + "px";
    failureMark.style.display = x >= GUTTER && x <= W ? "" : "none";
    const label = failureMark.firstChild;
    label.style.left = x > W - 320 ? "auto" : "4px";
    label.style.right = x > W - 320 ? "4px" : "auto";
    if (stepMark) {
      const sx = X(c.step.t), ok = rowOf[c.step.lane] >= 0 && sx >= GUTTER && sx <= W;
      stepMark.style.display = ok ? "" : "none";
      if (ok) {
        stepMark.style.left = sx + "px";
        stepMark.style.top = Y(c.step.lane) + LANE_H / 2 + "px";
      }
    }
  }

  // ---- header, failure panel, controls, legend ----
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "onclick" || k === "onchange") e[k] = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const k of kids) e.append(k);
    return e;
  }
  function buildMeta() {
    const meta = document.getElementById("meta");
    for (const line of D.header) meta.append(el("div", {}, line));
    meta.append(el("div", {}, "replay: ", el("code", {}, D.reproduce)));
    meta.append(el("div", {}, D.events + " events · " + NM + " messages · " + D.ops.length + " client operations · " + fmt(D.end) + " simulated"));
  }
  function laneName(i) { return D.lanes[i] ? D.lanes[i].name : "?"; }
  function buildFailure() {
    const c = D.check;
    if (!c) return;
    const box = document.getElementById("failure");
    box.hidden = false;
    box.append(el("h2", {}, "✗ " + c.text));
    if (c.step) {
      const s = c.step;
      box.append(el("div", { id: "violating-step" }, "The violating step (ringed on the timeline): ",
        el("code", {}, fmt(s.t) + " " + laneName(s.lane) + " " + s.kind + " " + s.text)));
    }
    box.append(el("div", {}, "The check fired at " + fmt(c.t) + " (the red line)."));
    if (c.lead_up.length) {
      const table = el("table", {});
      c.lead_up.forEach((s, k) => {
        const tr = el("tr", { class: k === c.lead_up.length - 1 ? "step" : "" },
          el("td", {}, fmt(s.t)), el("td", {}, laneName(s.lane)), el("td", {}, s.kind), el("td", {}, s.text));
        table.append(tr);
      });
      box.append(el("details", { open: "" }, el("summary", {}, "what led to it"), table));
    }
    box.append(el("button", { id: "go-to-failure", onclick: goToFailure }, "Zoom to the failure (g)"));
  }
  function checkbox(label, get, set) {
    const input = el("input", { type: "checkbox" });
    input.checked = get();
    input.onchange = () => { set(input.checked); layout(); resize(); draw(); };
    return el("label", {}, input, " " + label);
  }
  function buildControls() {
    const nav = document.getElementById("controls");
    nav.append(el("fieldset", {}, el("legend", {}, "Zoom"),
      el("button", { onclick: () => zoom(1 / 1.6) }, "+"), " ",
      el("button", { onclick: () => zoom(1.6) }, "−"), " ",
      el("button", { onclick: fit }, "fit (f)"),
      D.check ? " " : "", D.check ? el("button", { onclick: goToFailure }, "failure (g)") : ""));
    const nodes = el("fieldset", { id: "node-filter" }, el("legend", {}, "Lanes"));
    D.lanes.forEach((lane, i) => nodes.append(checkbox(lane.name, () => !hidden.has(i), (v) => (v ? hidden.delete(i) : hidden.add(i)))));
    nav.append(nodes);
    const kinds = el("fieldset", { id: "kind-filter" }, el("legend", {}, "Messages"));
    for (const [k, label] of [["req", "requests"], ["reply", "replies"], ["delivered", "delivered"], ["dropped", "dropped"],
      ["held", "held by a clog"], ["dup", "duplicated"], ["inflight", "in flight at the end"]]) {
      kinds.append(checkbox(label, () => show[k], (v) => (show[k] = v)));
    }
    nav.append(kinds);
    const layers = el("fieldset", {}, el("legend", {}, "Show"));
    for (const [k, label] of [["roles", "roles and terms"], ["commits", "commit index"], ["bands", "faults and down time"],
      ["ticks", "timers, saves, notes"], ["ops", "client operations"]]) {
      layers.append(checkbox(label, () => show[k], (v) => (show[k] = v)));
    }
    nav.append(layers);
  }
  function buildLegend() {
    const f = document.getElementById("legend");
    const sw = (c, t) => [el("span", { class: "sw", style: "background:" + c }), t];
    const ln = (c, dash, t) => [el("span", { class: "ln", style: "border-top-color:" + c + ";border-top-style:" + (dash ? "dashed" : "solid") }), t];
    f.append("Lanes: ", ...sw(ROLE_COLORS.leader, "leader"), ...sw(ROLE_COLORS.candidate, "candidate"), ...sw(ROLE_COLORS.follower, "follower"),
      ...sw(BAND_COLORS.down, "down"), ...sw("#1e7a34", "commit index (c<N>)"), ...sw(BAND_COLORS.partition, "partition"),
      ...sw(BAND_COLORS.disconnect, "disconnected"), ...sw(BAND_COLORS.clog, "clogged"), ...sw(BAND_COLORS.cut, "cut"),
      ...sw(BAND_COLORS.unreliable, "unreliable network"), ...sw(BAND_COLORS.long_delays, "long delays"),
      ...sw(BAND_COLORS.long_reordering, "long reordering"));
    f.append(el("br"), "Messages: ", ...ln(MSG_STYLES.req.color, false, "request"), ...ln(MSG_STYLES.reply.color, false, "reply"),
      ...ln(MSG_STYLES.dropped.color, true, "dropped (×)"), ...ln(MSG_STYLES.held.color, true, "held by a clog"),
      ...ln(MSG_STYLES.dup.color, false, "duplicate"), ...ln(MSG_STYLES.inflight.color, true, "in flight at the end"),
      " · client operations: boxes from call to return, red when the linearizability checker could not place them");
    f.append(el("br"), el("span", { id: "self-timing" }, ""));
  }

  // ---- interaction ----
  function setView(t0, t1) {
    const minSpan = 5;
    if (t1 - t0 < minSpan) { const m = (t0 + t1) / 2; t0 = m - minSpan / 2; t1 = m + minSpan / 2; }
    const pad = END * 0.05;
    if (t1 - t0 > END + 2 * pad) { t0 = -pad; t1 = END + pad; }
    view.t0 = t0; view.t1 = t1;
    schedule();
  }
  function zoom(f, px) {
    const at = px === undefined ? (view.t0 + view.t1) / 2 : tAt(px);
    setView(at - (at - view.t0) * f, at + (view.t1 - at) * f);
  }
  function fit() { setView(0, END); }
  function goToFailure() {
    const c = D.check;
    if (!c) return;
    const w = Math.max(2000, c.t - c.context_t0);
    setView(c.t - w, c.t + w * 0.25);
  }
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoom(Math.exp(e.deltaY * 0.0015), Math.max(e.clientX - r.left, GUTTER));
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, t0: view.t0, t1: view.t1 }; canvas.classList.add("dragging"); });
  window.addEventListener("mouseup", () => { drag = null; canvas.classList.remove("dragging"); });
  window.addEventListener("mousemove", (e) => {
    if (drag) {
      const dt = ((e.clientX - drag.x) * (drag.t1 - drag.t0)) / (W - GUTTER);
      setView(drag.t0 - dt, drag.t1 - dt);
      return;
    }
    const r = canvas.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    if (mx < GUTTER || mx > W || my < AXIS_H || my > H) return;
    inspect(mx, my);
  });
  canvas.addEventListener("dblclick", (e) => { const r = canvas.getBoundingClientRect(); zoom(1 / 2.5, e.clientX - r.left); });
  window.addEventListener("keydown", (e) => {
    if (e.target && e.target.tagName === "INPUT") return;
    if (e.key === "+" || e.key === "=") zoom(1 / 1.6);
    else if (e.key === "-") zoom(1.6);
    else if (e.key === "f") fit();
    else if (e.key === "g") goToFailure();
  });
  window.addEventListener("resize", () => { resize(); draw(); });

  function distToSegment(px, py, x0, y0, x1, y1) {
    const dx = x1 - x0, dy = y1 - y0, l = dx * dx + dy * dy;
    const u = l ? Math.max(0, Math.min(1, ((px - x0) * dx + (py - y0) * dy) / l)) : 0;
    const ex = x0 + u * dx - px, ey = y0 + u * dy - py;
    return Math.sqrt(ex * ex + ey * ey);
  }
  function inspect(mx, my) {
    const t = tAt(mx);
    const row = Math.floor((my - AXIS_H) / LANE_H);
    const lane = rowOf.indexOf(row);
    const out = document.getElementById("inspector");
    let best = null, bestD = 5;
    for (let i = 0; i < NM; i++) {
      const t0 = M.t0[i], t1 = t0 + M.dt[i];
      if (t1 < view.t0 || t0 > view.t1 || !msgShown(i)) continue;
      const [x0, y0, x1, y1] = ends(i);
      const d = distToSegment(mx, my, x0, y0, x1, y1);
      if (d < bestD) { bestD = d; best = i; }
    }
    let text = "";
    if (best !== null) {
      const i = best, f = fateOf(i);
      const end = fate(i) === 1 ? "dropped at " + fmt(M.t0[i] + M.dt[i]) + ": " + reason(i)
        : fate(i) === 2 ? "still in flight at the end" : "delivered at " + fmt(M.t0[i] + M.dt[i]);
      text = "#" + M.id[i] + " " + laneName(M.from[i]) + " → " + laneName(M.to[i]) + " " + (isReply(i) ? "reply" : "request") +
        " call=" + M.call[i] + (M.bytes[i] ? " " + M.bytes[i] + "B" : "") + " · sent " + fmt(M.t0[i]) + ", " + end +
        (isHeld(i) ? " · held by a clog" : "") + (f === "dup" ? " · a duplicate delivery" : "");
      hover = { msg: best };
    } else {
      hover = null;
      const op = lane >= 0 && show.ops ? D.ops.find((o) => o.lane === lane && o.t0 <= t && (o.t1 === null ? END : o.t1) >= t) : null;
      if (op) {
        text = laneName(op.lane) + ": " + op.call + " → " + (op.result === null ? "(never returned)" : op.result) +
          " · " + fmt(op.t0) + " – " + (op.t1 === null ? "end" : fmt(op.t1)) + (op.failed ? " · NOT LINEARIZABLE here" : "");
      } else if (lane >= 0) {
        const T = D.ticks;
        let bt = -1, bd = 6;
        for (let i = 0; i < T.t.length; i++) {
          if (T.lane[i] !== lane) continue;
          const d = Math.abs(X(T.t[i]) - mx);
          if (d < bd) { bd = d; bt = i; }
        }
        const roles = D.roles[lane];
        let role = "";
        if (roles) for (const [rt, r, term] of roles) if (rt <= t) role = D.role_names[r] + " in term " + term;
        let commit = "";
        if (D.commits[lane]) for (const [ct, c] of D.commits[lane]) if (ct <= t) commit = "commit index " + c;
        text = laneName(lane) + " at " + fmt(Math.max(0, t)) + (role ? " · " + role : "") + (commit ? " · " + commit : "");
        if (bt >= 0) text = fmt(T.t[bt]) + " " + laneName(lane) + " " + D.tick_kinds[T.kind[bt]] + " " + T.text[bt] + " · " + text;
      }
    }
    out.textContent = text || "\u00a0";
    schedule();
  }

  // ---- first drawing, timed ----
  const drawn = { messages: 0 };
  buildMeta();
  buildFailure();
  buildControls();
  buildLegend();
  layout();
  resize();
  // A failing run opens on its failure, a passing one on the whole run.
  if (D.check) {
    const w = Math.max(2000, D.check.t - D.check.context_t0);
    view.t0 = D.check.t - w;
    view.t1 = D.check.t + w * 0.25;
  }
  document.body.dataset.view = D.check ? "failure" : "whole run";
  draw();
  const ms = performance.now() - T0;
  document.body.dataset.drawnMs = ms.toFixed(1);
  document.body.dataset.parseMs = (PARSED - T0).toFixed(1);
  document.body.dataset.events = D.events;
  document.body.dataset.messages = NM;
  document.body.dataset.drawnMessages = drawn.messages;
  document.getElementById("self-timing").textContent =
    "Drawn in " + ms.toFixed(1) + " ms (from the script's first line to the end of the first complete drawing).";
})();
