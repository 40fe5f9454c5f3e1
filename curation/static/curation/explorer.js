// The gallery's total: counting every match on the final answers ranks every candidate image,
// so the page comes first and the count follows from count.json.
(function () {
  var el = document.getElementById("count");
  if (!el || !el.dataset.url) return;
  fetch(el.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (r) { return r.json(); })
    .then(function (d) {
      if (typeof d.count !== "number") { el.textContent = "count unavailable"; return; }
      el.innerHTML = "";
      var b = document.createElement("strong");
      b.textContent = d.count.toLocaleString("en");
      el.appendChild(b);
      el.appendChild(document.createTextNode(d.count === 1 ? " image" : " images"));
    })
    .catch(function () { el.textContent = "count unavailable"; });
})();
