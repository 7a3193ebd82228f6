// Live page: camera frames (short side 256, JPEG) to the API's WebSocket at the model's frame rate, and the
// ranking of every window back. Frames are dropped here, never queued, when the connection or the encoder
// falls behind. Labels reach the page through textContent only.
"use strict";

(function () {
  const SHORT_SIDE = 256;
  const JPEG_QUALITY = 0.8;
  const MAX_BUFFERED_BYTES = 256 * 1024; // more than this unsent: drop frames until it drains
  const HISTORY = 40;

  const $ = (id) => document.getElementById(id);
  const root = $("live");
  const camera = $("camera");
  const startButton = $("live-start");
  const stopButton = $("live-stop");
  const status = $("live-status");
  const error = $("live-error");
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");

  let stream = null;
  let socket = null;
  let timer = null;
  let encoding = false;
  let framesSent = 0;
  let framesDropped = 0;
  let windows = 0;
  const sentAt = new Map(); // frame number (1-based, as the server counts) -> when it was captured

  const percent = (p) => `${(p * 100).toFixed(1)}%`;
  function colour(label) {
    let h = 0;
    for (const ch of label) h = (h * 31 + ch.codePointAt(0)) % 360;
    return `hsl(${h} 65% 45%)`;
  }

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function setRunning(running) {
    startButton.hidden = running;
    stopButton.hidden = !running;
    startButton.disabled = false;
  }

  async function start() {
    error.hidden = true;
    startButton.disabled = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      startButton.disabled = false;
      return showError("This browser gives no camera to this page: open it over HTTPS or on localhost.");
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 25 } }, audio: false,
      });
    } catch (e) {
      startButton.disabled = false;
      return showError(`No camera: ${e.message || e.name}. Allow the camera for this page and try again.`);
    }
    camera.srcObject = stream;
    await camera.play().catch(() => {});
    status.textContent = "Connecting to the recognition service…";
    let session;
    try {
      const response = await fetch(root.dataset.sessionUrl, { method: "POST", headers: { "X-CSRF-Token": root.dataset.csrf } });
      session = await response.json();
      if (!response.ok) throw new Error(session.error || `HTTP ${response.status}`);
    } catch (e) {
      stop();
      return showError(`Live recognition is not available: ${e.message}`);
    }
    connect(session);
  }

  function connect(session) {
    framesSent = framesDropped = windows = 0;
    sentAt.clear();
    const picked = document.getElementById("live-sport");
    const sport = picked && picked.value ? `&sport=${encodeURIComponent(picked.value)}` : "";
    socket = new WebSocket(`${session.websocket_url}?token=${encodeURIComponent(session.token)}${sport}`);
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "ready") begin(message);
      else if (message.type === "window") show(message);
    });
    socket.addEventListener("close", (event) => {
      const wasOurs = socket === null;
      stop();
      if (!wasOurs && event.code !== 1000) {
        showError(`Live recognition stopped: ${event.reason || "the connection was lost"} (code ${event.code}).`);
      }
    });
    setRunning(true);
  }

  function begin(ready) {
    $("live-head").textContent = `(${ready.head})`;
    status.textContent = `Live: ${ready.clip_len}-frame windows every ${(ready.hop / ready.fps).toFixed(1)} s; ` +
      `the first after ${(ready.clip_len / ready.fps).toFixed(1)} s.`;
    timer = setInterval(sendFrame, 1000 / ready.fps);
  }

  function sendFrame() {
    if (!socket || socket.readyState !== WebSocket.OPEN || camera.readyState < 2 || !camera.videoWidth) return;
    if (encoding || socket.bufferedAmount > MAX_BUFFERED_BYTES) { // behind: drop this frame
      framesDropped += 1;
      return;
    }
    const scale = SHORT_SIDE / Math.min(camera.videoWidth, camera.videoHeight);
    canvas.width = Math.round(camera.videoWidth * scale);
    canvas.height = Math.round(camera.videoHeight * scale);
    context.drawImage(camera, 0, 0, canvas.width, canvas.height);
    const capturedAt = performance.now();
    encoding = true;
    canvas.toBlob((blob) => {
      encoding = false;
      if (!blob || !socket || socket.readyState !== WebSocket.OPEN) return;
      framesSent += 1;
      sentAt.set(framesSent, capturedAt);
      sentAt.delete(framesSent - 1000);
      socket.send(blob);
    }, "image/jpeg", JPEG_QUALITY);
  }

  function show(message) {
    windows += 1;
    const captured = sentAt.get(message.end_frame);
    const lag = captured === undefined ? null : performance.now() - captured;
    const list = $("live-actions");
    list.replaceChildren(...message.actions.map((action) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = action.label;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = percent(action.confidence);
      bar.append(fill);
      const confidence = document.createElement("span");
      confidence.className = "confidence";
      confidence.textContent = percent(action.confidence);
      item.append(label, bar, confidence);
      return item;
    }));
    $("live-lag").textContent = lag === null ? "–" :
      `${(lag / 1000).toFixed(2)} s from camera to label (the model: ${(message.inference_ms / 1000).toFixed(2)} s)`;
    $("live-lag").dataset.ms = lag === null ? "" : String(Math.round(lag));
    $("live-windows").textContent = String(windows);
    $("live-dropped").textContent = `${framesDropped} frames, ${message.dropped_windows} windows`;

    const top = message.actions[0];
    const cell = document.createElement("span");
    cell.className = "cell";
    cell.setAttribute("role", "listitem");
    cell.title = `${message.start_s.toFixed(1)}–${message.end_s.toFixed(1)} s: ${top.label} (${percent(top.confidence)})`;
    cell.style.background = colour(top.label);
    const history = $("live-history");
    history.append(cell);
    while (history.children.length > HISTORY) history.firstChild.remove();
  }

  function stop() {
    clearInterval(timer);
    timer = null;
    const open = socket;
    socket = null;
    if (open && open.readyState <= WebSocket.OPEN) open.close(1000, "stopped by the user");
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    camera.srcObject = null;
    status.textContent = "Camera off.";
    setRunning(false);
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  window.addEventListener("pagehide", stop);
})();
