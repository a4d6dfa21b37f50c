// Draws the history page from the embedded JSON (checkers/src/html): rows of operation
// boxes, annotation bands, and the selected linearization with its states; a link jumps to
// the first operation that could not be linearized.
'use strict';
(function () {
  const data = JSON.parse(document.getElementById('history-data').textContent);
  const app = document.getElementById('app');
  const SVG = 'http://www.w3.org/2000/svg';
  const css = getComputedStyle(document.documentElement);
  const ROW = parseFloat(css.getPropertyValue('--row')) || 46;
  const LABEL = parseFloat(css.getPropertyValue('--label')) || 120;
  const PALETTE = ['#e3d7ff', '#ffe0b3', '#c9f2e9', '#ffd6e7', '#d9f2c2', '#d6e4ff', '#f5e6a8', '#e8d5c4'];
  const opById = new Map(data.ops.map((o) => [o.id, o]));
  const state = {
    unit: 24,
    part: data.initial ? data.initial[0] : -1,
    lin: data.initial ? data.initial[1] : -1,
    focus: null,
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(c);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function colour(label) {
    // The first word picks the colour, so "crash s1" and "crash s2" match.
    const word = label.split(/\s+/)[0] || label;
    let h = 7;
    for (const ch of word) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }

  function interval(o) {
    return o.ret === null ? '[' + o.call + ', never returned]' : '[' + o.call + ', ' + o.ret + ']';
  }

  function x(col) {
    return LABEL + col * state.unit;
  }

  // ---- header and controls ----
  const header = el('header');
  header.appendChild(el('h1', {}, [
    el('span', { class: 'verdict verdict-' + data.verdict.replace(/ /g, '-'), text: data.verdict }),
    document.createTextNode(data.title),
  ]));
  header.appendChild(el('div', { class: 'summary', text: data.summary }));
  if (data.notes.length) {
    header.appendChild(el('ul', { class: 'notes' }, data.notes.map((n) => el('li', { text: n }))));
  }
  let jump = null;
  if (data.first_failure !== null && opById.has(data.first_failure)) {
    const o = opById.get(data.first_failure);
    jump = el('a', { href: '#first-failure', id: 'jump-first-failure', text: 'Jump to the first operation that could not be linearized (#' + o.id + ', ' + o.text + ')' });
    header.appendChild(el('div', { class: 'jump' }, [jump]));
  }
  header.appendChild(el('div', { class: 'legend' }, [
    el('span', { class: 'k-ok', text: 'linearized' }),
    el('span', { class: 'k-partial', text: 'in a partial linearization' }),
    el('span', { class: 'k-failed', text: 'could not be linearized' }),
    el('span', { class: 'k-unlinearized', text: 'in no linearizable prefix' }),
    el('span', { class: 'k-unchecked', text: 'not searched to the end' }),
  ]));
  app.appendChild(header);

  const partSelect = el('select', { id: 'part-select' });
  partSelect.appendChild(el('option', { value: '-1', text: 'all partitions' }));
  data.partitions.forEach((p, i) => {
    const name = p.label ? p.label : 'partition ' + i;
    partSelect.appendChild(el('option', { value: String(i), text: name + ': ' + p.outcome + ' (' + p.ops + ' ops)' }));
  });
  const linSelect = el('select', { id: 'lin-select' });
  const zoomOut = el('button', { type: 'button', text: '−' });
  const zoomIn = el('button', { type: 'button', text: '+' });
  app.appendChild(el('div', { class: 'controls' }, [
    el('label', { text: 'Partition ' }, [partSelect]),
    el('label', { text: 'Linearization ' }, [linSelect]),
    el('span', { text: 'Zoom' }),
    zoomOut,
    zoomIn,
  ]));

  const timeline = el('div', { class: 'timeline' });
  const canvas = el('div', { class: 'canvas' });
  timeline.appendChild(canvas);
  app.appendChild(timeline);
  const details = el('div', { class: 'details' });
  app.appendChild(details);

  function currentLin() {
    if (state.part < 0 || state.lin < 0) return null;
    const p = data.partitions[state.part];
    return p && p.lins[state.lin] ? p.lins[state.lin] : null;
  }

  function fillLinSelect() {
    linSelect.innerHTML = '';
    const p = data.partitions[state.part];
    if (!p || !p.lins.length) {
      linSelect.appendChild(el('option', { value: '-1', text: 'none' }));
      linSelect.disabled = true;
      return;
    }
    linSelect.disabled = false;
    p.lins.forEach((l, i) => {
      const what = p.outcome === 'linearizable' ? 'witness' : 'partial';
      linSelect.appendChild(el('option', { value: String(i), text: what + ' ' + i + ' (' + l.len + ' of ' + p.ops + ' ops)' }));
    });
    linSelect.value = String(state.lin);
  }

  // ---- drawing ----
  function draw() {
    canvas.innerHTML = '';
    const width = x(data.columns) + 40;
    const height = data.rows.length * ROW;
    canvas.style.width = width + 'px';
    canvas.style.height = height + 'px';
    // Labels stay in normal flow so that `position: sticky` keeps them in view.
    const labels = el('div', { class: 'labels' });
    data.rows.forEach((r, i) => {
      canvas.appendChild(el('div', { class: 'row-bg ' + r.kind, style: 'top:' + i * ROW + 'px;width:' + width + 'px' }));
      labels.appendChild(el('div', { class: 'row-label ' + r.kind, text: r.label, title: r.label }));
    });
    canvas.appendChild(labels);
    const firstClientRow = data.rows.findIndex((r) => r.kind === 'client');
    for (const a of data.annotations) {
      const left = x(a.x0);
      const w = Math.max(4, (a.x1 - a.x0) * state.unit);
      const c = a.background || colour(a.label);
      const tip = a.label + '\n' + 'from ' + a.start + ' to ' + a.end + (a.details ? '\n' + a.details : '');
      canvas.appendChild(el('div', {
        class: 'ann-band', title: tip, text: a.label,
        style: 'left:' + left + 'px;width:' + w + 'px;top:' + (a.row * ROW + 5) + 'px;background:' + c +
          (a.text_colour ? ';color:' + a.text_colour : ''),
      }));
      if (a.wide && firstClientRow >= 0) {
        canvas.appendChild(el('div', {
          class: 'ann-shade',
          style: 'left:' + left + 'px;width:' + w + 'px;top:' + firstClientRow * ROW + 'px;height:' + (height - firstClientRow * ROW) + 'px;background:' + c,
        }));
      }
    }
    const lin = currentLin();
    const inLin = new Set(lin ? lin.steps.map((s) => s.op) : []);
    let count = 0;
    for (const o of data.ops) {
      const cls = ['op-box', 'status-' + o.status];
      if (o.status === 'failed') cls.push('failed');
      if (o.ret === null) cls.push('pending');
      if (state.part >= 0 && o.part !== state.part) cls.push('dim');
      if (inLin.has(o.id)) cls.push('in-lin');
      if (state.focus === o.id) cls.push('selected');
      const p = data.partitions[o.part];
      const tip = '#' + o.id + ' client ' + o.client + '\n' + o.text + '\n' + 'call ' + o.call + ', ' +
        (o.ret === null ? 'never returned' : 'return ' + o.ret) + (o.meta ? '\n' + o.meta : '') + '\n' +
        (p.label ? p.label + ': ' : '') + p.outcome + (o.status === 'failed' ? '\ncould not be linearized' : '');
      const box = el('div', {
        class: cls.join(' '), 'data-op': String(o.id), title: tip,
        style: 'left:' + x(o.x0) + 'px;width:' + Math.max(6, (o.x1 - o.x0) * state.unit - 2) + 'px;top:' + (o.row * ROW + 5) + 'px',
      }, [el('div', { class: 'op-text', text: o.text }), el('div', { class: 'op-time', text: interval(o) })]);
      box.addEventListener('click', () => focus(o.id));
      canvas.appendChild(box);
      count++;
    }
    if (lin) drawLin(lin, width, height);
    document.body.setAttribute('data-rendered-ops', String(count));
  }

  function drawLin(lin, width, height) {
    const overlay = svg('svg', { class: 'overlay', width: String(width), height: String(height) });
    const pts = lin.steps.map((s) => [x(s.x), opById.get(s.op).row * ROW + ROW / 2]);
    if (pts.length > 1) {
      overlay.appendChild(svg('polyline', { class: 'lin-line', points: pts.map((p) => p.join(',')).join(' ') }));
    }
    lin.steps.forEach((s, i) => {
      const [px, py] = pts[i];
      const dot = svg('circle', { class: 'lin-point', cx: String(px), cy: String(py), r: '4' });
      dot.appendChild(svg('title', {}, 'step ' + (i + 1) + ': ' + opById.get(s.op).text + '\nstate after: ' + s.state));
      overlay.appendChild(dot);
      overlay.appendChild(svg('text', { class: 'lin-num', x: String(px + 5), y: String(py - 6) }, String(i + 1)));
    });
    const last = pts.length ? pts[pts.length - 1] : null;
    for (const b of lin.blocked) {
      const o = opById.get(b);
      if (!o) continue;
      const bx = x(o.x0) + Math.min(12, ((o.x1 - o.x0) * state.unit) / 2);
      const by = o.row * ROW + ROW / 2;
      if (last) overlay.appendChild(svg('path', { class: 'blocked-line', d: 'M' + last[0] + ',' + last[1] + ' L' + bx + ',' + by }));
      const mark = svg('text', { class: 'blocked-mark', x: String(bx - 5), y: String(by + 5) }, '✗');
      mark.appendChild(svg('title', {}, o.text + '\ncannot be linearized here: the model rejects it in state ' + lin.end_state));
      overlay.appendChild(mark);
    }
    canvas.appendChild(overlay);
  }

  function showDetails() {
    details.innerHTML = '';
    const lin = currentLin();
    if (!lin) {
      details.appendChild(el('p', { text: 'Click an operation to see the longest linearization (or linearizable prefix) that contains it.' }));
      return;
    }
    const p = data.partitions[state.part];
    const name = p.label ? p.label : 'partition ' + state.part;
    const what = p.outcome === 'linearizable' ? 'Linearization'
      : p.outcome === 'unfinished' ? 'Longest linearizable prefix found before the search stopped' : 'Longest linearizable prefix';
    details.appendChild(el('h2', { text: what + ' of ' + name + ': ' + lin.len + ' of ' + p.ops + ' operations, ' + p.steps + ' search steps' }));
    if (lin.steps.length < lin.len) {
      details.appendChild(el('p', { text: (lin.len - lin.steps.length) + ' step(s) fall outside the drawn window.' }));
    }
    const rows = [el('tr', {}, ['#', 'op', 'client', 'operation', 'interval', 'metadata', 'state after'].map((h) => el('th', { text: h })))];
    lin.steps.forEach((s, i) => {
      const o = opById.get(s.op);
      rows.push(el('tr', { class: state.focus === o.id ? 'focus' : '' }, [
        el('td', { text: String(i + 1) }), el('td', { text: '#' + o.id }), el('td', { text: String(o.client) }),
        el('td', { text: o.text }), el('td', { text: interval(o) }), el('td', { class: 'meta', text: o.meta || '' }),
        el('td', { class: 'state', text: s.state }),
      ]));
    });
    for (const b of lin.blocked) {
      const o = opById.get(b);
      if (!o) continue;
      rows.push(el('tr', { class: 'blocked' }, [
        el('td', { text: '✗' }), el('td', { text: '#' + o.id }), el('td', { text: String(o.client) }),
        el('td', { text: o.text }), el('td', { text: interval(o) }), el('td', { class: 'meta', text: o.meta || '' }),
        el('td', { class: 'state', text: 'rejected in state ' + lin.end_state }),
      ]));
    }
    details.appendChild(el('table', {}, rows));
  }

  // Brings operation `o` into view.
  function reveal(o) {
    timeline.scrollLeft = Math.max(0, x(o.x0) - timeline.clientWidth / 2);
    timeline.scrollTop = Math.max(0, o.row * ROW - timeline.clientHeight / 2);
  }

  function focus(id) {
    const o = opById.get(id);
    state.focus = id;
    state.part = o.part;
    state.lin = o.lin === null ? -1 : o.lin;
    partSelect.value = String(state.part);
    fillLinSelect();
    draw();
    showDetails();
  }

  partSelect.addEventListener('change', () => {
    state.part = Number(partSelect.value);
    const p = data.partitions[state.part];
    state.lin = p && p.lins.length ? 0 : -1;
    state.focus = null;
    fillLinSelect();
    draw();
    showDetails();
  });
  linSelect.addEventListener('change', () => {
    state.lin = Number(linSelect.value);
    draw();
    showDetails();
  });
  zoomIn.addEventListener('click', () => { state.unit = Math.min(120, state.unit * 1.5); draw(); });
  zoomOut.addEventListener('click', () => { state.unit = Math.max(2, state.unit / 1.5); draw(); });

  // Small histories fill the window; big ones start at a readable width and scroll.
  const fit = (timeline.clientWidth - LABEL - 40) / Math.max(1, data.columns);
  state.unit = Math.max(24, Math.min(160, fit));
  partSelect.value = String(state.part);
  fillLinSelect();
  draw();
  showDetails();
  // The jump link selects the first operation that could not be linearized and brings it
  // into view; so does opening the page at #first-failure, and opening it at all.
  if (jump) {
    const toFirst = (event) => {
      if (event) event.preventDefault();
      focus(data.first_failure);
      reveal(opById.get(data.first_failure));
    };
    jump.addEventListener('click', toFirst);
    if (window.location.hash === '#first-failure') toFirst(null);
    else reveal(opById.get(data.first_failure));
  }
})();
