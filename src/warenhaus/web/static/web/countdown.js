/* Countdowns of the flash-deal pages: <span data-countdown="SECONDS"> counts down from what the
   server computed (its clock is the base, not the visitor's); data-reload reloads the page at
   zero (a deal that just started). A countdown (or the hidden box around it) is shown only when this runs; without
   JavaScript the page shows the time of day instead. */
(function () {
  if (window.whCountdown) { window.whCountdown(); return; }
  function fmt(s) {
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }
  function tick() {
    var t = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (!el.dataset.deadline) el.dataset.deadline = String(t + 1000 * parseInt(el.dataset.countdown, 10));
      var left = Math.max(0, Math.round((parseInt(el.dataset.deadline, 10) - t) / 1000));
      el.textContent = fmt(left);
      for (var box = el; box; box = box.parentElement && box.parentElement.closest("[hidden]")) box.hidden = false;
      if (left === 0 && el.dataset.reload !== undefined && !el.dataset.reloaded) {
        el.dataset.reloaded = "1";
        setTimeout(function () { window.location.reload(); }, 1000);
      }
    });
  }
  window.whCountdown = tick;
  tick();
  setInterval(tick, 1000);
})();
