// jifang dashboard: the little JavaScript it needs (vendored, no CDN). No inline scripts: CSP script-src 'self'.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    // footage: play the granted MP4 segments one after the other
    var player = document.getElementById("player");
    if (player && player.dataset.segments) {
      var urls = JSON.parse(player.dataset.segments);
      var index = 0;
      var next = function () {
        if (index >= urls.length) { return; }
        player.src = urls[index++];
        player.play().catch(function () { /* autoplay may be refused; controls remain */ });
      };
      player.addEventListener("ended", next);
      player.addEventListener("error", next);
      next();
    }
    // live view: reload the camera's latest snapshot every few seconds (no streaming, no transcoding)
    var live = document.getElementById("live");
    if (live && live.dataset.live) {
      var every = parseInt(live.dataset.interval, 10) || 5000;
      window.setInterval(function () {
        if (document.hidden) { return; }
        live.src = live.dataset.live + "?t=" + Date.now();
      }, every);
    }
  });
})();
