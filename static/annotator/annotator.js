// The contrast form's keyboard: factor keys toggle checkboxes (from catalog.factors shortcuts,
// rendered as data-shortcut), n = nothing differs, j = justification, x = skip reason,
// z = zoom the sample, Esc = leave a text field / close the zoom, Ctrl+Enter = submit and next.
(function () {
  "use strict";
  const form = document.getElementById("answer-form");
  if (!form) return;
  const started = performance.now();
  const nothing = document.getElementById("id_nothing_differs");
  const justification = document.getElementById("id_justification");
  const timeField = form.querySelector("input[name=time_on_task_ms]");
  const skipReason = document.getElementById("id_reason");
  const boxes = {};
  form.querySelectorAll("input[data-shortcut]").forEach((b) => { boxes[b.dataset.shortcut.toLowerCase()] = b; });
  const zoom = document.getElementById("zoom");
  const zoomImg = zoom.querySelector("img");
  let scale = 1;

  const typing = (el) => el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text"));
  // Ticking a factor and "nothing differs" exclude each other; the server checks it too.
  Object.values(boxes).forEach((b) => b.addEventListener("change", () => { if (b.checked) nothing.checked = false; }));
  nothing.addEventListener("change", () => { if (nothing.checked) Object.values(boxes).forEach((b) => { b.checked = false; }); });

  function stamp() { if (timeField) timeField.value = Math.round(performance.now() - started); }
  form.addEventListener("submit", stamp);
  function submit() { stamp(); if (form.requestSubmit) form.requestSubmit(); else form.submit(); }

  function openZoom(src) { zoomImg.src = src; scale = 1; zoomImg.style.transform = ""; zoom.hidden = false; }
  function closeZoom() { zoom.hidden = true; }
  function setScale(s) { scale = Math.min(8, Math.max(0.25, s)); zoomImg.style.transform = "scale(" + scale + ")"; }
  document.querySelectorAll(".zoomable").forEach((b) => b.addEventListener("click", () => openZoom(b.dataset.full)));
  zoom.addEventListener("click", closeZoom);
  zoom.addEventListener("wheel", (e) => { e.preventDefault(); setScale(scale * (e.deltaY < 0 ? 1.15 : 1 / 1.15)); }, { passive: false });

  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); submit(); return; }
    if (e.key === "Escape") {
      if (!zoom.hidden) closeZoom(); else if (document.activeElement) document.activeElement.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(document.activeElement)) return;
    if (!zoom.hidden && (e.key === "+" || e.key === "=")) { setScale(scale * 1.25); return; }
    if (!zoom.hidden && e.key === "-") { setScale(scale / 1.25); return; }
    const k = e.key.toLowerCase();
    if (boxes[k] && !e.shiftKey) {  // Shift + a factor key marks the main factor (main_factor.js)
      e.preventDefault();
      boxes[k].checked = !boxes[k].checked;
      if (boxes[k].checked) nothing.checked = false;
    } else if (k === "n") {
      e.preventDefault();
      nothing.checked = !nothing.checked;
      if (nothing.checked) Object.values(boxes).forEach((b) => { b.checked = false; });
    } else if (k === "j") {
      e.preventDefault(); justification.focus();
    } else if (k === "x" && skipReason) {
      e.preventDefault(); skipReason.focus();
    } else if (k === "z") {
      e.preventDefault();
      if (zoom.hidden) openZoom(document.getElementById("sample-zoom").dataset.full); else closeZoom();
    }
  });
  // Put the first invalid field under the cursor after a refused submit.
  const firstError = document.querySelector(".errorlist");
  if (firstError && firstError.id === "justification-error") justification.focus();
})();
