// Upload page: drag-and-drop, upload and processing progress, results with a clickable timeline.
// Every label and file name reaches the page through textContent or attributes, never as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;
  const STILL_SELECTED = "Your video is still selected: press “Recognize actions” to send it again.";

  const { el, percent } = window.Results;  // static/js/game.js

  function downloadLinks(downloads) {
    if (!downloads) return null;
    const names = { video: "annotated video", json: "JSON", csv: "CSV", edl: "EDL (video editors)" };
    const paragraph = el("p", { class: "downloads" }, document.createTextNode("Download: "));
    Object.keys(names).filter((kind) => downloads[kind]).forEach((kind, i) => {
      if (i) paragraph.append(document.createTextNode(" · "));
      paragraph.append(el("a", { id: `download-${kind}`, href: downloads[kind], download: "", text: names[kind] }));
    });
    return paragraph;
  }

  function renderResult(root, result, videoUrl, filename, note, downloads) {
    root.replaceChildren();
    const video = el("video", { id: "player", src: videoUrl, controls: "", playsinline: "", preload: "metadata" });
    if (downloads && downloads.vtt) {  // the moments as the player's chapters
      video.append(el("track", { kind: "chapters", label: "Moments", srclang: "en", src: downloads.vtt, default: "" }));
    }
    const meta = `${result.video.width}×${result.video.height}, ${result.video.frames} frames at ${result.video.fps} fps ` +
      `(${result.video.duration_s} s); ${result.clips.length} clips in ${(result.timings_ms.total / 1000).toFixed(1)} s`;
    const actions = el("ol", { id: "actions" });
    for (const action of result.actions) {
      actions.append(el("li", {},
        el("span", { class: "label", text: action.label }),
        el("span", { class: "bar" }, el("span", { style: `width:${percent(action.confidence)}` })),
        el("span", { class: "confidence", text: percent(action.confidence) })));
    }
    const game = window.Results.parts(result, video, downloads);
    root.append(
      el("h1", { text: filename }),
      el("div", { class: "result" },
        el("section", { class: "player" }, video, note ? el("p", { class: "hint", text: note }) : null,
          downloadLinks(downloads), el("p", { class: "meta", text: meta }), game.timeline),
        el("div", { class: "side" }, game.moments,
          el("section", { class: "actions" },
            el("h2", {}, document.createTextNode("Actions "),
              el("small", { id: "ranked-by", text: `(${result.head}${result.sport ? `, ${result.sport}` : ""})` })), actions))),
      game.table);
    root.hidden = false;
  }

  // The server-rendered result page: its plain moments and table become the interactive ones, with the timeline.
  function enhanceResultPage() {
    const data = document.getElementById("result-data");
    const video = document.getElementById("player");
    const root = document.getElementById("result");
    if (!data || !video) return;
    const downloads = root.dataset.highlights ? { highlights: root.dataset.highlights } : null;
    const game = window.Results.parts(JSON.parse(data.textContent), video, downloads);
    document.getElementById("moments-static").replaceWith(game.moments);
    document.querySelector("#result .player").append(game.timeline);
    document.getElementById("clips-static").replaceWith(game.table);
  }

  function uploadPage(form) {
    const input = form.querySelector("#video");
    const dropzone = form.querySelector("#dropzone");
    const chosen = form.querySelector("#chosen");
    const submit = form.querySelector("#submit");
    const error = document.getElementById("error");
    const status = document.getElementById("status");
    const statusText = document.getElementById("status-text");
    const progress = document.getElementById("progress");
    const cancelButton = document.getElementById("cancel");
    const resultRoot = document.getElementById("result");
    const maxBytes = Number(form.dataset.maxBytes);
    const extensions = form.dataset.extensions.split(",");
    let file = null;

    let running = null;  // the job being followed, until it ends
    let uploading = null;  // the resumable upload under way, until it ends
    const csrf = () => form.querySelector("[name=csrf_token]").value;
    const sportPicker = form.querySelector("#sport");

    function showError(message) {
      running = null;
      uploading = null;
      cancelButton.hidden = true;
      error.textContent = message;
      error.hidden = false;
      status.hidden = true;
      submit.disabled = false;
      input.disabled = false;
    }

    function setStatus(text, value, state) {
      status.hidden = false;
      status.dataset.state = state;
      statusText.textContent = text;
      if (value === null) progress.removeAttribute("value");
      else progress.value = value;
    }

    function check(candidate) {
      const dot = candidate.name.lastIndexOf(".");
      const extension = dot >= 0 ? candidate.name.slice(dot).toLowerCase() : "";
      if (!extensions.includes(extension)) return `That file is not a supported video. Use one of: ${extensions.join(", ")}.`;
      if (candidate.size > maxBytes) return `That file is larger than the ${form.dataset.limitMb} MB limit.`;
      if (candidate.size === 0) return "That file is empty.";
      return null;
    }

    function choose(candidate) {
      error.hidden = true;
      file = candidate;
      chosen.textContent = candidate ? `${candidate.name} (${(candidate.size / 1048576).toFixed(1)} MB)` : "";
      const problem = candidate && check(candidate);
      if (problem) {
        file = null;
        showError(problem);
      }
    }

    input.addEventListener("change", () => choose(input.files[0] || null));
    for (const name of ["dragenter", "dragover"]) {
      dropzone.addEventListener(name, (event) => { event.preventDefault(); dropzone.classList.add("dragging"); });
    }
    for (const name of ["dragleave", "drop"]) {
      dropzone.addEventListener(name, () => dropzone.classList.remove("dragging"));
    }
    dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!file) return showError("Choose a video file first.");
      error.hidden = true;
      submit.disabled = true;
      input.disabled = true;
      resultRoot.hidden = true;
      if (file.size >= Number(form.dataset.resumableBytes) && window.tus && tus.isSupported) resumable(file);
      else throughPage(file);
    });

    // A clip: one request to the page's server, which keeps a copy for the player and the annotated video.
    function throughPage(chosen) {
      const body = new FormData();
      body.append("video", chosen, chosen.name);
      body.append("csrf_token", csrf());
      if (sportPicker && sportPicker.value) body.append("sport", sportPicker.value);
      const request = new XMLHttpRequest();
      request.open("POST", form.dataset.jobsUrl);
      request.responseType = "json";
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) setStatus(`Uploading… ${Math.round((e.loaded / e.total) * 100)}%`, (e.loaded / e.total) * 100, "uploading");
      });
      request.upload.addEventListener("load", () => setStatus("Preparing the video…", null, "preparing"));
      request.addEventListener("error", () => showError("The upload failed: the page's server could not be reached. Try again."));
      request.addEventListener("load", () => {
        const answer = request.response || {};
        const message = answer.error || `The upload failed (HTTP ${request.status}).`;
        if (request.status >= 500) return showError(`${message} ${STILL_SELECTED}`);
        if (request.status !== 202) return showError(message);
        poll(answer, 0);
      });
      setStatus("Uploading… 0%", 0, "uploading");
      request.send(body);
    }

    // A big file: straight to the recognition service in resumable pieces (tus), with a token from the page's
    // server that is renewed before it runs out. A cut connection is retried and the upload goes on from the
    // server's offset; after a reload, choosing the same file again resumes it too.
    function resumable(chosen) {
      let session = null;
      let sent = 0;
      const shown = () => Math.floor((sent / chosen.size) * 100);
      const fresh = () => {
        if (session && session.expiresAt - Date.now() > 60000) return Promise.resolve(session);
        return fetch(form.dataset.resumableUrl, { method: "POST", headers: { "X-CSRF-Token": csrf() } })
          .then((response) => response.json().then((body) => {
            if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
            session = { endpoint: body.endpoint, token: body.token, expiresAt: Date.now() + body.expires_in_s * 1000 };
            return session;
          }));
      };
      const failure = (err) => {
        const response = err.originalResponse;
        let detail = "";
        try { detail = response ? JSON.parse(response.getBody()).detail : ""; } catch (e) { detail = ""; }
        if (detail) return `The upload was refused: ${detail}`;
        return `The upload stopped at ${shown()}%: the recognition service could not be reached. ` +
          "Choose the same file again to resume from there.";
      };
      fresh().then((first) => {
        const upload = new tus.Upload(chosen, {
          endpoint: first.endpoint,
          chunkSize: 64 * 1048576,
          retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000],
          removeFingerprintOnSuccess: true,
          metadata: { filename: chosen.name, filetype: chosen.type || "application/octet-stream",
                      ...(sportPicker && sportPicker.value ? { sport: sportPicker.value } : {}) },
          onBeforeRequest: (req) => fresh().then((current) => req.setHeader("Upload-Token", current.token)),
          onProgress: (bytes, total) => {
            sent = bytes;
            setStatus(`Uploading… ${shown()}%`, (bytes / total) * 100, "uploading");
          },
          onShouldRetry: (err) => {
            const code = err.originalResponse ? err.originalResponse.getStatus() : 0;
            const retry = code === 0 || code === 409 || code === 423 || (code >= 500 && code !== 507);
            if (retry && uploading === upload) setStatus("Connection lost: resuming where it stopped…", (sent / chosen.size) * 100, "resuming");
            return retry;
          },
          onError: (err) => { if (uploading === upload) showError(failure(err)); },
          onSuccess: () => {
            if (uploading !== upload) return;
            uploading = null;
            follow(upload.url.split("/").pop(), chosen);
          },
        });
        uploading = upload;
        cancelButton.hidden = false;
        cancelButton.disabled = false;
        setStatus("Uploading… 0%", 0, "uploading");
        return upload.findPreviousUploads().then((previous) => {
          if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
          upload.start();
        });
      }).catch((err) => showError(`The upload could not start: ${err.message}`));
    }

    // The job the finished upload became (its id is the upload's): the page's server keeps it for the downloads,
    // and the player plays the file from this computer.
    function follow(jobId, chosen) {
      setStatus("Preparing the video…", null, "preparing");
      fetch(`${form.dataset.jobsUrl}/${encodeURIComponent(jobId)}`, { method: "PUT", headers: { "X-CSRF-Token": csrf() } })
        .then((response) => response.json().then((body) => {
          if (!response.ok) return showError(`${body.error || `Lost track of the job (HTTP ${response.status}).`} ${STILL_SELECTED}`);
          const playable = document.createElement("video").canPlayType(chosen.type || "") !== "";
          poll({ job_id: jobId, filename: chosen.name, video_url: URL.createObjectURL(chosen), downloads: body.downloads,
                 playback_note: playable ? null : "Your browser may not play this file type; the results are below." }, 0);
        }))
        .catch(() => showError(`Lost the connection while starting the recognition. ${STILL_SELECTED}`));
    }

    function left(seconds) {
      if (seconds === null || seconds === undefined) return "";
      if (seconds < 90) return `, about ${Math.max(1, Math.round(seconds))} s left`;
      return `, about ${Math.round(seconds / 60)} min left`;
    }

    cancelButton.addEventListener("click", () => {
      if (uploading) {
        uploading.abort(true).catch(() => {});  // true: the server deletes what it has
        return showError(`Upload cancelled. ${STILL_SELECTED}`);
      }
      if (!running) return;
      cancelButton.disabled = true;
      fetch(`${form.dataset.jobsUrl}/${encodeURIComponent(running.job_id)}/cancel`, {
        method: "POST", headers: { "X-CSRF-Token": csrf() },
      }).then((response) => response.json().then((body) => {
        if (!response.ok) showError(body.error || `Could not cancel (HTTP ${response.status}).`);
      })).catch(() => showError("Could not reach the page's server to cancel."));
    });

    function poll(job, failures) {
      running = job;
      cancelButton.hidden = false;
      cancelButton.disabled = false;
      fetch(`${form.dataset.jobsUrl}/${encodeURIComponent(job.job_id)}`)
        .then((response) => response.json().then((body) => ({ ok: response.ok, status: response.status, body })))
        .then(({ ok, status: code, body }) => {
          if (!ok) {
            if (code >= 500 && failures < 5) return setTimeout(() => poll(job, failures + 1), POLL_MS * 2 ** failures);
            if (code === 404) return showError(`The recognition service restarted and lost this job. ${STILL_SELECTED}`);
            return showError(`${body.error || `Lost track of the job (HTTP ${code}).`} ${STILL_SELECTED}`);
          }
          if (body.status === "cancelled") {
            showError(`Cancelled. ${STILL_SELECTED}`);
            return;
          }
          if (body.status === "done") {
            running = null;
            cancelButton.hidden = true;
            status.hidden = true;
            submit.disabled = false;
            input.disabled = false;
            renderResult(resultRoot, body.result, job.video_url, job.filename, job.playback_note, job.downloads);
            return;
          }
          if (body.status === "failed") {
            if (body.error.status_code >= 500) return showError(`The recognition did not finish: ${body.error.detail}. ${STILL_SELECTED}`);
            return showError(`The recognition service rejected the video: ${body.error.detail}`);
          }
          const { clips_done: done, clips_total: total, eta_s: eta } = body.progress;
          if (body.status === "queued") setStatus("Waiting for the model…", null, "queued");
          else setStatus(`Recognizing: clip ${done} of ${total || "?"}${left(eta)}`, total ? (done / total) * 100 : null, "processing");
          if (running === job) setTimeout(() => poll(job, 0), POLL_MS);
        })
        .catch(() => {
          if (failures < 5) return setTimeout(() => poll(job, failures + 1), POLL_MS * 2 ** failures);
          showError(`Lost the connection while waiting for the result. ${STILL_SELECTED}`);
        });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("upload-form");
    if (form) uploadPage(form);
    else enhanceResultPage();
  });
})();
