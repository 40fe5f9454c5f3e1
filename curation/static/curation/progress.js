// Poll the run's progress JSON every second while it is pending or running; reload when it
// finishes so the page shows the statistics and figures rendered on the server.
(function () {
  const box = document.getElementById("progress");
  if (!box) return;
  const active = (s) => s === "pending" || s === "running";
  if (!active(box.dataset.status)) return;
  async function tick() {
    try {
      const r = await fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (r.ok) {
        const p = await r.json();
        document.getElementById("st").textContent = p.status;
        document.getElementById("st").className = "badge st-" + p.status;
        document.getElementById("counts").textContent = p.processed + " / " + p.total + " images";
        document.getElementById("chunks").textContent = p.chunks.done + " / " + p.chunks.total;
        document.getElementById("fill").style.width = Math.round(100 * p.progress) + "%";
        if (p.error) { const e = document.getElementById("err"); e.textContent = p.error; e.hidden = false; }
        if (!active(p.status)) { window.location.reload(); return; }
      }
    } catch (e) { /* transient network error: try again next tick */ }
    setTimeout(tick, 1000);
  }
  setTimeout(tick, 1000);
})();
