(function () {
  var box = document.getElementById("progress");
  if (!box || box.dataset.status !== "building") return;
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.status !== "building") { window.location.reload(); return; }
        document.getElementById("stage").textContent = d.stage;
        document.getElementById("count").textContent = d.processed + "/" + d.total;
        var bar = document.getElementById("bar"); bar.max = d.total || 1; bar.value = d.processed;
        setTimeout(poll, 1500);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();

// The publish form asks first (CSP allows no inline handler).
(function () {
  var form = document.querySelector("form[data-confirm]");
  if (!form) return;
  form.addEventListener("submit", function (e) {
    if (!window.confirm(form.dataset.confirm)) e.preventDefault();
  });
})();
