// The Library page: a search's moments play in place (the card's still becomes a player of that stretch, stopped
// at its end), and deleting a video asks first. Without JavaScript the links open the stored result at the moment.
(function () {
  "use strict";

  function playInPlace(card) {
    const start = Number(card.dataset.start), end = Number(card.dataset.end);
    let video = card.querySelector("video");
    if (!video) {
      video = document.createElement("video");
      video.controls = true;
      video.playsInline = true;
      video.preload = "auto";
      video.className = "moment-player";
      video.src = `${card.dataset.video}#t=${start.toFixed(2)},${end.toFixed(2)}`;
      video.addEventListener("timeupdate", () => {  // the fragment's end stops it too; this also after a seek back
        if (video.currentTime >= end && !video.paused) video.pause();
      });
      video.addEventListener("error", () => {
        const note = document.createElement("p");
        note.className = "meta";
        note.textContent = "This video's format does not play in the browser; open it to download it.";
        video.replaceWith(note);
      });
      card.querySelector("a.play").replaceWith(video);
    } else if (video.currentTime >= end || video.currentTime < start) {
      video.currentTime = start;
    }
    video.play().catch(() => {});  // a browser that blocks it leaves the controls to the person
  }

  document.querySelectorAll(".moment-card[data-video] a.play").forEach((link) => {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      playInPlace(link.closest(".moment-card"));
    });
  });

  document.querySelectorAll(".delete-form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      const name = form.closest(".video-card").querySelector(".title").textContent;
      if (!window.confirm(`Delete ${name} from the library: its analysis, moments and video?`)) event.preventDefault();
    });
  });
})();
