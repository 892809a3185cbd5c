// handtrack live viewer: draws the hands of the WebSocket stream of tracker.sinks.websocket.
//
// Each message is one JSON object, a line of the JSON Lines export (tracker/sinks/export.py):
//   {"timestamp": s, "frame_index": n, "hands": [{"id", "handedness", "view", "joints_2d": 21 x [u, v] px,
//    "joints_3d": 21 x [x, y, z] mm (camera frame, OpenCV axes: x right, y down, z forward) or null,
//    "confidence", "joints_world": 21 x [x, y, z] mm (rigs only), ...}]}
// A number may be null (a joint not known).
//
// 2D panel: joints_2d in image pixels. The image size is not in the message; when a frame carries
// "image_size" ([w, h], or one [w, h] per view) it is used, otherwise the panel shows the smallest
// common camera resolution (640x480, 1280x720, ...) that holds every 2D joint seen so far.
// 3D panel: joints_world when the stream has them (rigs), else joints_3d; orbit with the mouse or a
// finger, wheel to zoom, double-click to reset.
// Vanilla JS + canvas 2D; nothing outside this file and index.html.
"use strict";

// Bones of the 21-joint MediaPipe hand as [parent, child], in the order of tracker.core.joints.EDGES
// (a test parses this list and compares it with EDGES).
const BONES = [
  [0, 1], [1, 2], [2, 3], [3, 4],
  [0, 5], [5, 6], [6, 7], [7, 8],
  [0, 9], [9, 10], [10, 11], [11, 12],
  [0, 13], [13, 14], [14, 15], [15, 16],
  [0, 17], [17, 18], [18, 19], [19, 20],
];

// Bone colour by finger (thumb, index, middle, ring, pinky), as tracker.view.colors.FINGER_COLORS.
const FINGER_COLORS = ["#ff8c1a", "#ff409e", "#4da6ff", "#a86bff", "#2ee6d6"];
// Joint and label colour by hand.
const HAND_COLORS = { left: "#ffdb59", right: "#8cf2ff", unknown: "#f2f2f2" };
const COMMON_SIZES = [[320, 240], [640, 480], [848, 480], [960, 540], [1280, 720], [1280, 800],
  [1280, 1024], [1920, 1080], [1920, 1200], [2560, 1440], [3840, 2160]];

const $ = (id) => document.getElementById(id);
const view2d = $("view2d");
const view3d = $("view3d");

const state = {
  frame: null,        // the latest message
  received: 0,        // messages received since the page loaded
  arrivals: [],       // arrival times (ms) within the last second, for the fps
  seen: [0, 0],       // largest u, v seen (px), for the inferred image size
  dirty: true,
  orbit: { yaw: 0, pitch: 0, zoom: 1 },
  center: null,       // smoothed orbit centre (mm)
  retryMs: 500,
  gestures: {},       // track id -> {label, until (ms)}: the last completed gesture, shown 1.5 s
};

// --- connection ---------------------------------------------------------------------------------
function streamUrl() {
  const given = new URLSearchParams(location.search).get("ws");
  if (given) return given;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/`;
}

function setState(text, connected) {
  const el = $("state");
  el.textContent = text;
  el.className = connected ? "connected" : "disconnected";
}

function connect() {
  let ws;
  try {
    ws = new WebSocket(streamUrl());
  } catch (err) {
    setState(`cannot connect (${err.message})`, false);
    return;
  }
  ws.onopen = () => {
    state.retryMs = 500;
    setState(`connected to ${streamUrl()}`, true);
  };
  ws.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    state.frame = frame;
    (frame.hands || []).forEach((hand) => {
      if (hand.gesture) state.gestures[hand.id] = { label: hand.gesture.label, until: performance.now() + 1500 };
    });
    state.received += 1;
    state.arrivals.push(performance.now());
    state.dirty = true;
    $("frames").textContent = String(state.received);
    if (performance.now() - lastDraw > 30) drawNow();  // at most ~30 draws/s; the rest on the next animation frame
    else requestDraw();
  };
  ws.onclose = () => {
    setState(`disconnected, reconnecting in ${(state.retryMs / 1000).toFixed(1)} s`, false);
    setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 5000);
  };
}

function updateStatus() {
  const now = performance.now();
  while (state.arrivals.length && now - state.arrivals[0] > 1000) state.arrivals.shift();
  $("fps").textContent = state.arrivals.length.toFixed(1);
  const f = state.frame;
  if (f) {
    $("index").textContent = `${f.frame_index} (t = ${Number(f.timestamp).toFixed(3)} s)`;
    $("hands").textContent = String((f.hands || []).length);
  }
}
setInterval(updateStatus, 500);

// --- drawing helpers ------------------------------------------------------------------------------
function fit(canvas) {
  // Match the canvas buffer to its size on screen (device pixels); returns the 2D context.
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

const finite = (p) => p && p.every((v) => typeof v === "number" && isFinite(v));

function drawHand(ctx, points, color, label, lineWidth) {
  // points: 21 screen [x, y] or null; draws bones (finger colours), joints (hand colour), label.
  let bones = 0;
  ctx.lineWidth = lineWidth;
  ctx.lineCap = "round";
  BONES.forEach(([a, b]) => {
    const p = points[a], q = points[b];
    if (!p || !q) return;
    ctx.strokeStyle = FINGER_COLORS[Math.floor((b - 1) / 4)];
    ctx.beginPath();
    ctx.moveTo(p[0], p[1]);
    ctx.lineTo(q[0], q[1]);
    ctx.stroke();
    bones += 1;
  });
  ctx.fillStyle = color;
  points.forEach((p) => {
    if (!p) return;
    ctx.beginPath();
    ctx.arc(p[0], p[1], lineWidth * 1.1, 0, 2 * Math.PI);
    ctx.fill();
  });
  if (points[0]) {
    ctx.font = `${Math.round(12 * (window.devicePixelRatio || 1))}px system-ui, sans-serif`;
    ctx.fillText(label, points[0][0] + 8, points[0][1] + 16);
  }
  return bones;
}

function handLabel(hand) {
  // "R #3", then pinch / grab (--grip) and a gesture completed in the last 1.5 s (--gestures)
  const side = hand.handedness === "left" ? "L" : hand.handedness === "right" ? "R" : "?";
  let text = `${side} #${hand.id}` + (hand.view > 0 ? ` (view ${hand.view})` : "");
  if (hand.grip) text += (hand.grip.pinch ? " pinch" : "") + (hand.grip.grab ? " grab" : "");
  const recent = state.gestures[hand.id];
  if (recent && performance.now() < recent.until) text += `  > ${recent.label}`;
  return text;
}

// --- 2D panel ---------------------------------------------------------------------------------------
function imageSize(frame, hand) {
  const given = frame.image_size;
  if (Array.isArray(given) && given.length) {
    if (Array.isArray(given[0])) return given[Math.max(0, hand.view)] || given[0];
    return given;
  }
  const [u, v] = state.seen;
  const size = COMMON_SIZES.find(([w, h]) => w >= u && h >= v);
  return size || [Math.ceil(u / 64) * 64, Math.ceil(v / 64) * 64];
}

function draw2d(frame) {
  const ctx = fit(view2d);
  const W = view2d.width, H = view2d.height;
  let bones = 0;
  const hands = frame ? frame.hands || [] : [];
  hands.forEach((hand) => (hand.joints_2d || []).forEach((p) => {
    if (finite(p)) state.seen = [Math.max(state.seen[0], p[0]), Math.max(state.seen[1], p[1])];
  }));
  let size = [640, 480];
  hands.forEach((hand) => {
    size = imageSize(frame, hand);
    const s = Math.min(W / size[0], H / size[1]);
    const ox = (W - size[0] * s) / 2, oy = (H - size[1] * s) / 2;
    ctx.strokeStyle = "#30343c";
    ctx.lineWidth = 1;
    ctx.strokeRect(ox + 0.5, oy + 0.5, size[0] * s - 1, size[1] * s - 1);
    const pts = (hand.joints_2d || []).map((p) => (finite(p) ? [ox + p[0] * s, oy + p[1] * s] : null));
    bones += drawHand(ctx, pts, HAND_COLORS[hand.handedness] || HAND_COLORS.unknown, handLabel(hand),
      Math.max(2, Math.min(W, H) / 160));
  });
  $("caption2d").textContent = `image (px), ${size[0]}x${size[1]}` +
    (frame && frame.image_size ? "" : " (inferred from the joints seen)");
  return bones;
}

// --- 3D panel ---------------------------------------------------------------------------------------
function joints3d(hand) {
  return hand.joints_world || hand.joints_3d || null;
}

function project(p, c, W, H) {
  // p, c: mm; orbit about c (yaw about the vertical y axis, then pitch), perspective from 1 m.
  const { yaw, pitch, zoom } = state.orbit;
  const x = p[0] - c[0], y = p[1] - c[1], z = p[2] - c[2];
  const x1 = Math.cos(yaw) * x - Math.sin(yaw) * z;
  const z1 = Math.sin(yaw) * x + Math.cos(yaw) * z;
  const y2 = Math.cos(pitch) * y - Math.sin(pitch) * z1;
  const z2 = Math.sin(pitch) * y + Math.cos(pitch) * z1;
  const D = 1000;
  const f = (Math.min(W, H) * 0.8 * D / 300) * zoom;  // 300 mm span the panel at the centre
  const d = Math.max(D + z2, 50);
  return [W / 2 + (x1 * f) / d, H / 2 + (y2 * f) / d];
}

function draw3d(frame) {
  const ctx = fit(view3d);
  const W = view3d.width, H = view3d.height;
  const hands = frame ? frame.hands || [] : [];
  const pts = [];
  hands.forEach((hand) => (joints3d(hand) || []).forEach((p) => { if (finite(p)) pts.push(p); }));
  if (pts.length) {
    const mean = [0, 1, 2].map((k) => pts.reduce((s, p) => s + p[k], 0) / pts.length);
    state.center = state.center ? state.center.map((v, k) => v + 0.2 * (mean[k] - v)) : mean;
  }
  const c = state.center || [0, 0, 500];
  const world = hands.some((h) => h.joints_world);
  $("caption3d").textContent = `3D (mm, ${world ? "rig world" : "camera"} frame): drag to orbit, ` +
    "wheel to zoom, double-click to reset";
  // A 400 mm grid (50 mm cells) in the x-z plane 150 mm below the centre, and axes at the centre.
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#2c3038";
  for (let k = -4; k <= 4; k++) {
    const a = project([c[0] + k * 50, c[1] + 150, c[2] - 200], c, W, H);
    const b = project([c[0] + k * 50, c[1] + 150, c[2] + 200], c, W, H);
    const e = project([c[0] - 200, c[1] + 150, c[2] + k * 50], c, W, H);
    const g = project([c[0] + 200, c[1] + 150, c[2] + k * 50], c, W, H);
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]);
    ctx.moveTo(e[0], e[1]); ctx.lineTo(g[0], g[1]);
    ctx.stroke();
  }
  const o = project(c, c, W, H);
  [["#f24040", [50, 0, 0]], ["#4dd94d", [0, 50, 0]], ["#4d73ff", [0, 0, 50]]].forEach(([color, d]) => {
    const q = project([c[0] + d[0], c[1] + d[1], c[2] + d[2]], c, W, H);
    ctx.strokeStyle = color;
    ctx.beginPath(); ctx.moveTo(o[0], o[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
  });
  let bones = 0;
  hands.forEach((hand) => {
    const j = joints3d(hand);
    if (!j) return;
    const screen = j.map((p) => (finite(p) ? project(p, c, W, H) : null));
    bones += drawHand(ctx, screen, HAND_COLORS[hand.handedness] || HAND_COLORS.unknown, handLabel(hand),
      Math.max(2, Math.min(W, H) / 160));
  });
  return bones;
}

// --- render loop and orbit control ------------------------------------------------------------------
let drawPending = false;
let lastDraw = -Infinity;
function drawNow() {
  state.dirty = false;
  lastDraw = performance.now();
  const bones = draw2d(state.frame) + draw3d(state.frame);
  $("drawn").textContent = String(bones);
  updateStatus();
}

function requestDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    if (state.dirty) drawNow();
  });
}

function redraw() {
  state.dirty = true;
  requestDraw();
}

let drag = null;
view3d.addEventListener("pointerdown", (e) => {
  drag = { x: e.clientX, y: e.clientY, yaw: state.orbit.yaw, pitch: state.orbit.pitch };
  view3d.setPointerCapture(e.pointerId);
  view3d.style.cursor = "grabbing";
});
view3d.addEventListener("pointermove", (e) => {
  if (!drag) return;
  state.orbit.yaw = drag.yaw + (e.clientX - drag.x) * 0.01;
  state.orbit.pitch = Math.max(-1.5, Math.min(1.5, drag.pitch - (e.clientY - drag.y) * 0.01));
  redraw();
});
const endDrag = () => { drag = null; view3d.style.cursor = "grab"; };
view3d.addEventListener("pointerup", endDrag);
view3d.addEventListener("pointercancel", endDrag);
view3d.addEventListener("wheel", (e) => {
  e.preventDefault();
  state.orbit.zoom = Math.max(0.1, Math.min(20, state.orbit.zoom * Math.exp(-e.deltaY * 0.001)));
  redraw();
}, { passive: false });
view3d.addEventListener("dblclick", () => { state.orbit = { yaw: 0, pitch: 0, zoom: 1 }; redraw(); });
window.addEventListener("resize", redraw);

$("info").textContent = "joints: MediaPipe order, 21 per hand";
redraw();
connect();
