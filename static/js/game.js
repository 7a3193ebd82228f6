// A result of any length: its moments grouped by action (filtered, seeking the player, a Reel per action), a canvas
// timeline that zooms and pans over thousands of windows, and the window-by-window table, folded and paged.
// Shared with app.js as window.Results. Every label reaches the page through textContent or attributes, never as HTML.
"use strict";

window.Results = (function () {
  const PAGE_ROWS = 100;
  const MIN_VIEW_S = 10;  // the closest zoom

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const percent = (p) => `${(p * 100).toFixed(1)}%`;
  function clock(s) {  // 75.3 -> "1:15.3", 3725 -> "1:02:05"
    const sign = s < 0 ? "-" : "";
    s = Math.abs(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), rest = s % 60;
    const sec = h ? String(Math.floor(rest)).padStart(2, "0") : rest.toFixed(1).padStart(4, "0");
    return h ? `${sign}${h}:${String(m).padStart(2, "0")}:${sec}` : `${sign}${m}:${sec}`;
  }
  const hues = new Map();
  function hue(label) {
    if (!hues.has(label)) {
      let h = 0;
      for (const ch of label) h = (h * 31 + ch.codePointAt(0)) % 360;
      hues.set(label, h);
    }
    return hues.get(label);
  }
  const colour = (label) => `hsl(${hue(label)} 65% 45%)`;

  function duration(result) {
    const clips = result.clips;
    return result.video.duration_s || (clips.length ? clips[clips.length - 1].end_s : 1);
  }

  // The moments that pass the filter, grouped by action, the group with the most time first.
  function groups(segments, filter) {
    const byLabel = new Map();
    for (const s of segments) {
      if (s.confidence < filter.min || (filter.label && s.label !== filter.label)) continue;
      if (!byLabel.has(s.label)) byLabel.set(s.label, { label: s.label, moments: [], total: 0 });
      const group = byLabel.get(s.label);
      group.moments.push(s);
      group.total += s.end_s - s.start_s;
    }
    return [...byLabel.values()].sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
  }

  function seek(video, time) {
    video.currentTime = time;
  }

  function momentsPanel(result, video, downloads, filter, changed) {
    const segments = result.segments || [];
    const labels = groups(segments, { min: 0, label: null }).map((g) => g.label);
    const action = el("select", { id: "moment-action", "aria-label": "Show the moments of" },
      el("option", { value: "", text: `All actions (${labels.length})` }),
      ...labels.map((label) => el("option", { value: label, text: label })));
    const minimum = el("input", { id: "moment-min", type: "range", min: "0", max: "95", step: "5", value: "0",
                                  "aria-label": "Minimum confidence" });
    const shown = el("output", { for: "moment-min", text: "0%" });
    const list = el("ul", { id: "moments", class: "moments" });
    const summary = el("p", { id: "moments-summary", class: "meta" });

    function draw() {
      const found = groups(segments, filter);
      const count = found.reduce((n, g) => n + g.moments.length, 0);
      summary.textContent = count ? `${count} moment${count > 1 ? "s" : ""} of ${found.length} action${found.length > 1 ? "s" : ""}`
        : (segments.length ? "No moments at this confidence." : "No moments found in this video.");
      list.replaceChildren(...found.map((group) => {
        const head = el("div", { class: "moment-head" },
          el("span", { class: "swatch", style: `background:${colour(group.label)}` }),
          el("span", { class: "label", text: group.label }),
          el("span", { class: "meta", text: ` ${group.moments.length} × · ${clock(group.total)} in all` }));
        if (downloads && downloads.highlights) {
          head.append(el("a", { class: "reel", download: "", text: "Reel",
                                title: `Download a video of every moment of ${group.label}`,
                                href: `${downloads.highlights}?label=${encodeURIComponent(group.label)}` }));
        }
        const items = group.moments.map((s) => {
          const button = el("button", { type: "button", class: "moment", "data-start": String(s.start_s),
                                        text: `${clock(s.start_s)}–${clock(s.end_s)} · ${percent(s.confidence)}` });
          button.addEventListener("click", () => seek(video, s.start_s));
          return el("li", {}, button);
        });
        return el("li", { class: "moment-group", "data-label": group.label }, head, el("ol", {}, ...items));
      }));
    }
    action.addEventListener("change", () => { filter.label = action.value || null; draw(); changed(); });
    minimum.addEventListener("input", () => {
      filter.min = Number(minimum.value) / 100;
      shown.textContent = `${minimum.value}%`;
      draw();
      changed();
    });
    draw();
    return el("section", { class: "moments-section" }, el("h2", { text: "Moments" }),
      el("div", { class: "moment-filters" }, el("label", {}, document.createTextNode("Action "), action),
        el("label", {}, document.createTextNode("Confidence at least "), minimum, shown)), summary, list);
  }

  // Lanes for segments that overlap in time (greedy, by start): at most `max`, extra ones share the last.
  function lanes(segments, max) {
    const ends = [];
    return segments.map((s) => {
      let lane = ends.findIndex((end) => end <= s.start_s);
      if (lane < 0) lane = ends.length < max ? ends.length : max - 1;
      ends[lane] = Math.max(ends[lane] || 0, s.end_s);
      return lane;
    });
  }

  function timeline(result, video, filter) {
    const total = duration(result);
    const clips = result.clips;
    const starts = Float64Array.from(clips, (c) => c.start_s);
    const canvas = el("canvas", { id: "timeline", tabindex: "0", role: "img", class: "timeline-canvas",
      "aria-label": "Timeline: moments above, each window's top action below. Drag or use the arrow keys to pan, " +
                    "the wheel or + and − to zoom, click to seek." });
    const tip = el("div", { class: "timeline-tip", hidden: "" });
    const from = el("span", { id: "view-from" }), to = el("span", { id: "view-to" });
    const view = { start: 0, end: total };
    let shownSegments = [], laneOf = [], laneCount = 1, pending = false;

    function setView(start, end) {
      const span = Math.min(total, Math.max(Math.min(MIN_VIEW_S, total), end - start));
      start = Math.max(0, Math.min(start, total - span));
      view.start = start;
      view.end = start + span;
      canvas.dataset.viewStart = view.start.toFixed(2);
      canvas.dataset.viewEnd = view.end.toFixed(2);
      from.textContent = clock(view.start);
      to.textContent = clock(view.end);
      redraw();
    }
    function zoom(factor, at) {
      const centre = at === undefined ? (view.start + view.end) / 2 : at;
      const share = (centre - view.start) / (view.end - view.start);
      const span = (view.end - view.start) * factor;
      setView(centre - share * span, centre - share * span + span);
    }
    const timeAt = (x) => view.start + (x / canvas.clientWidth) * (view.end - view.start);
    function windowAt(time) {  // the window shown at `time`: the last one started by then (they tile the video)
      let lo = 0, hi = starts.length - 1;
      if (hi < 0 || time < starts[0]) return hi < 0 ? -1 : 0;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= time) lo = mid; else hi = mid - 1;
      }
      return lo;
    }
    function refilter() {
      shownSegments = (result.segments || []).filter((s) => s.confidence >= filter.min && (!filter.label || s.label === filter.label));
      laneOf = lanes(shownSegments, 3);
      laneCount = Math.max(1, ...laneOf.map((l) => l + 1));
      canvas.dataset.segments = String(shownSegments.length);
      redraw();
    }
    function redraw() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(draw);
    }
    function draw() {
      pending = false;
      const ratio = window.devicePixelRatio || 1, width = canvas.clientWidth, height = canvas.clientHeight;
      if (!width) return;
      if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
      if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
      const g = canvas.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);
      const top = height * 0.55, scale = width / (view.end - view.start), x = (t) => (t - view.start) * scale;
      // the window strip: one colour per pixel column (its window's top action), runs drawn as one rectangle
      let runStart = 0, runColour = null;
      for (let px = 0; px <= width; px++) {
        const index = px < width ? windowAt(timeAt(px + 0.5)) : -1;
        const c = index >= 0 && px < width ? colour(clips[index].actions[0].label) : null;
        if (c !== runColour) {
          if (runColour) { g.fillStyle = runColour; g.fillRect(runStart, top + 2, px - runStart, height - top - 2); }
          runStart = px;
          runColour = c;
        }
      }
      // the moments, in lanes above the strip
      const laneHeight = (top - 2) / laneCount;
      shownSegments.forEach((s, i) => {
        if (s.end_s < view.start || s.start_s > view.end) return;
        const x0 = Math.max(0, x(s.start_s)), x1 = Math.min(width, x(s.end_s));
        g.fillStyle = colour(s.label);
        g.fillRect(x0, laneOf[i] * laneHeight + 1, Math.max(2, x1 - x0), laneHeight - 2);
      });
      const playhead = x(video.currentTime || 0);
      if (playhead >= 0 && playhead <= width) {
        g.fillStyle = "#111";
        g.fillRect(Math.min(width - 2, playhead - 1), 0, 2, height);
      }
    }
    function describe(px, py) {
      const time = timeAt(px);
      const top = canvas.clientHeight * 0.55, laneHeight = (top - 2) / laneCount;
      if (py < top) {
        const lane = Math.floor(py / laneHeight);
        const s = shownSegments.find((seg, i) => laneOf[i] === lane && seg.start_s <= time && time <= seg.end_s);
        if (s) return `${s.label} ${percent(s.confidence)}: ${clock(s.start_s)}–${clock(s.end_s)}`;
      }
      const index = windowAt(time);
      if (index < 0) return clock(time);
      const top1 = clips[index].actions[0];
      return `${clock(time)} · window ${index + 1}: ${top1.label} ${percent(top1.confidence)}`;
    }

    let drag = null;
    canvas.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, start: view.start, end: view.end, moved: false };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener("pointermove", (e) => {
      const box = canvas.getBoundingClientRect();
      if (drag) {
        const dx = e.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          const shift = (dx / box.width) * (drag.end - drag.start);
          setView(drag.start - shift, drag.end - shift);
        }
      }
      tip.textContent = describe(e.clientX - box.left, e.clientY - box.top);
      tip.style.left = `${Math.min(box.width - 10, Math.max(0, e.clientX - box.left))}px`;
      tip.hidden = false;
    });
    canvas.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) seek(video, timeAt(e.clientX - canvas.getBoundingClientRect().left));
      drag = null;
    });
    canvas.addEventListener("pointerleave", () => { tip.hidden = true; });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const box = canvas.getBoundingClientRect();
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        const shift = ((e.shiftKey ? e.deltaY : e.deltaX) / box.width) * (view.end - view.start);
        setView(view.start + shift, view.end + shift);
      } else {
        zoom(e.deltaY > 0 ? 1.25 : 0.8, timeAt(e.clientX - box.left));
      }
    }, { passive: false });
    canvas.addEventListener("keydown", (e) => {
      const step = (view.end - view.start) / 5;
      if (e.key === "ArrowLeft") setView(view.start - step, view.end - step);
      else if (e.key === "ArrowRight") setView(view.start + step, view.end + step);
      else if (e.key === "+" || e.key === "=") zoom(0.5, video.currentTime);
      else if (e.key === "-") zoom(2, video.currentTime);
      else return;
      e.preventDefault();
    });
    video.addEventListener("timeupdate", () => {
      const t = video.currentTime;  // keep the playhead in sight while it plays
      if (t > view.end || t < view.start) setView(t - (view.end - view.start) / 10, t + (view.end - view.start) * 0.9);
      else redraw();
    });
    video.addEventListener("seeked", redraw);
    new ResizeObserver(redraw).observe(canvas);

    const button = (id, text, label, act) => {
      const b = el("button", { type: "button", id, class: "small", text, "aria-label": label });
      b.addEventListener("click", act);
      return b;
    };
    const tools = el("div", { class: "timeline-tools" },
      button("zoom-in", "+", "Zoom in", () => zoom(0.5, Math.min(view.end, Math.max(view.start, video.currentTime)))),
      button("zoom-out", "−", "Zoom out", () => zoom(2)),
      button("zoom-reset", "Whole video", "Show the whole video", () => setView(0, total)),
      el("span", { class: "meta" }, from, document.createTextNode(" – "), to));
    setView(0, total);
    refilter();
    const section = el("section", { class: "timeline-section" }, el("h2", { text: "Timeline" }), tools,
      el("div", { class: "timeline-wrap" }, canvas, tip));
    return { section, refilter };
  }

  // Window by window, folded away; rows are made a page at a time when opened.
  function windowTable(result) {
    const clips = result.clips, pages = Math.max(1, Math.ceil(clips.length / PAGE_ROWS));
    const rows = el("tbody"), where = el("span", { id: "clips-page", class: "meta" });
    const prev = el("button", { type: "button", class: "small", id: "clips-prev", text: "‹ Previous" });
    const next = el("button", { type: "button", class: "small", id: "clips-next", text: "Next ›" });
    let page = 0;
    function show(p) {
      page = Math.max(0, Math.min(pages - 1, p));
      rows.replaceChildren(...clips.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS).map((clip) => el("tr", {},
        el("td", { text: `${clip.index + 1}` }),
        el("td", { text: `${clock(clip.start_s)}–${clock(clip.end_s)}` }),
        el("td", { text: clip.actions.map((a) => `${a.label} (${percent(a.confidence)})`).join(", ") }))));
      where.textContent = `page ${page + 1} of ${pages}`;
      prev.disabled = page === 0;
      next.disabled = page === pages - 1;
    }
    prev.addEventListener("click", () => show(page - 1));
    next.addEventListener("click", () => show(page + 1));
    const details = el("details", { class: "clips", id: "clips-details" },
      el("summary", { text: `Window by window (${clips.length} windows)` }),
      el("div", { class: "pager" }, prev, where, next),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "#" }), el("th", { text: "Time" }),
        el("th", { text: "Top actions" }))), rows));
    details.addEventListener("toggle", () => { if (details.open && !rows.children.length) show(0); });
    return details;
  }

  // The moments, the timeline and the table of `result`, for `video`: the callers place them.
  function parts(result, video, downloads) {
    const filter = { min: 0, label: null };
    let line = null;
    const moments = momentsPanel(result, video, downloads, filter, () => line.refilter());
    line = timeline(result, video, filter);
    return { moments, timeline: line.section, table: windowTable(result) };
  }

  return { el, percent, clock, parts };
})();
